"""Projects: a legacy system being migrated, its status workflow and its dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.queries import inserted_id, pick_named, ref_bounds

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

COLUMNS = (
    "id",
    "name",
    "organization",
    "source_language",
    "target_language",
    "target_framework",
    "status",
    "created_at",
)

_SELECT = """
SELECT p.id, p.name, p.description, p.organization_id, o.slug AS organization,
       p.source_language::text AS source_language, p.target_language::text AS target_language,
       p.target_framework, p.status::text AS status, p.failed_from::text AS failed_from,
       creator.email AS created_by, p.created_at, p.updated_at
FROM projects p
JOIN organizations o ON o.id = p.organization_id
LEFT JOIN people creator ON creator.id = p.created_by
"""

# The dashboard's statistics in one round trip, computed from the data itself. The project's
# files and rules are each read once, grouped as finely as any figure needs (a CTE used more
# than once is computed once), and every figure is summed from those few groups: four passes
# over a big project's rules and three over its files cost 14,000 buffers at SCALE=large.
_STATISTICS = """
WITH files AS (
  SELECT language::text AS language, count(*) AS files, sum(line_count) AS lines,
         sum(code_lines) AS code, sum(comment_lines) AS comments, sum(blank_lines) AS blank
  FROM source_files WHERE project_id = %(id)s GROUP BY language
), rules AS (
  SELECT review_status::text AS status, category::text AS category, count(*) AS n,
         sum(confidence) AS confidence
  FROM business_rules WHERE project_id = %(id)s GROUP BY review_status, category
)
SELECT
  (SELECT coalesce(sum(files), 0)::bigint FROM files) AS files,
  (SELECT coalesce(sum(lines), 0)::bigint FROM files) AS lines,
  (SELECT coalesce(jsonb_object_agg(language, jsonb_build_object(
            'files', files, 'lines', lines, 'code_lines', code, 'comment_lines', comments,
            'blank_lines', blank) ORDER BY language), '{}')
     FROM files
  ) AS files_by_language,
  (SELECT coalesce(sum(n), 0)::bigint FROM rules) AS rules,
  (SELECT coalesce(jsonb_object_agg(status, n ORDER BY status), '{}')
     FROM (SELECT status, sum(n) AS n FROM rules GROUP BY status) AS s
  ) AS rules_by_status,
  (SELECT coalesce(jsonb_object_agg(category, n ORDER BY category), '{}')
     FROM (SELECT category, sum(n) AS n FROM rules GROUP BY category) AS c
  ) AS rules_by_category,
  (SELECT round(sum(confidence) / sum(n), 3) FROM rules) AS average_confidence,
  (SELECT count(*) FROM test_cases WHERE project_id = %(id)s) AS test_cases,
  (SELECT count(*) FROM generated_files WHERE project_id = %(id)s) AS generated_files,
  (SELECT coalesce(jsonb_object_agg(name, jsonb_build_object(
            'pattern', path_pattern, 'target', target_service, 'traffic', traffic_percentage,
            'shadow', shadow_mode, 'enabled', enabled) ORDER BY name), '{}')
     FROM routing_rules WHERE project_id = %(id)s
  ) AS routing
"""


def create(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    """Insert a project; without an organization it goes to the acting user's."""
    project_id = inserted_id(
        conn,
        """
        INSERT INTO projects (name, description, organization_id, source_language,
                              target_language, target_framework, created_by)
        VALUES (%(name)s, %(description)s,
                coalesce(%(organization_id)s, current_organization_id()),
                %(source_language)s, %(target_language)s, %(target_framework)s,
                current_user_id())
        RETURNING id
        """,
        values,
    )
    return get(conn, project_id)


def list_all(
    conn: Connection, *, organization_id: UUID | None, status: str | None
) -> list[dict[str, Any]]:
    return conn.execute(
        _SELECT
        + """
        WHERE (%(org)s::uuid IS NULL OR p.organization_id = %(org)s)
          AND (%(status)s::project_status IS NULL OR p.status = %(status)s)
        ORDER BY o.slug, p.name
        """,
        {"org": organization_id, "status": status},
    ).fetchall()


def names_starting_with(conn: Connection, prefix: str, limit: int = 100) -> list[str]:
    """Project names for shell completion (under --as: only the visible ones)."""
    rows = conn.execute(
        """
        SELECT DISTINCT name FROM projects
        WHERE starts_with(name, %s)
        ORDER BY name LIMIT %s
        """,
        (prefix, limit),
    ).fetchall()
    return [row["name"] for row in rows]


def get(conn: Connection, ref: str, organization_id: UUID | None = None) -> dict[str, Any]:
    """A project by name (names are unique within an organization) or id (or its start)."""
    # A name is found by projects_name_idx, an id by the primary key: two index probes.
    rows = conn.execute(
        _SELECT
        + """
        WHERE (p.name = %(ref)s OR p.id BETWEEN %(low)s AND %(high)s)
          AND (%(org)s::uuid IS NULL OR p.organization_id = %(org)s)
        ORDER BY p.name = %(ref)s DESC, p.id
        LIMIT 6
        """,
        {"ref": ref, "org": organization_id, **ref_bounds(ref)},
    ).fetchall()
    return pick_named(
        rows,
        ref,
        by="name",
        noun="project",
        missing=f"no project {ref!r}; see `migrationpilot projects list`",
        hint="use the id or --org",
        shown_by="organization",
    )


def resolve(
    conn: Connection, ref: str, org_ref: str | None, *, requires: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The project a user means by ``--project REF [--org ORG]``; with ``requires`` (a role
    and what it allows, as for ``db.connect.transaction``), one the acting user may change
    that way (see :func:`require_role`)."""
    from migrationpilot_cli.queries import organizations

    found = get(conn, ref, organizations.id_of(conn, org_ref))
    if requires is not None:
        require_role(conn, requires, project_ids=[found["id"]])
    return found


def require_role(
    conn: Connection,
    requires: tuple[str, str],
    *,
    project_ids: Sequence[UUID] = (),
    rule_ids: Sequence[UUID] = (),
) -> None:
    """Refuse, before any work (exit 1, the database's one line), unless the acting user has
    the role (``requires``: the role and what it allows) in each of the projects, and in the
    project of each of the rules: as a member, or as an admin (V0015). The triggers refuse the
    writes themselves the same way; asked first, the refusal also comes before a long import
    and when the command would change nothing. Operators are not asked."""
    role, action = requires
    conn.execute(
        """
        SELECT require_project_role(
            array(SELECT unnest(%(projects)s::uuid[])
                  UNION SELECT project_id FROM business_rules WHERE id = ANY(%(rules)s::uuid[])),
            %(role)s, %(action)s)
        """,
        {"projects": list(project_ids), "rules": list(rule_ids), "role": role, "action": action},
    )


def dashboard(conn: Connection, project: dict[str, Any]) -> dict[str, Any]:
    from migrationpilot_cli.queries import members

    statistics = conn.execute(_STATISTICS, {"id": project["id"]}).fetchone()
    assert statistics is not None
    return {**project, **statistics, "members": members.of_project(conn, project["id"])}


def set_status(conn: Connection, project_id: UUID, status: str) -> None:
    conn.execute("UPDATE projects SET status = %s WHERE id = %s", (status, project_id))
