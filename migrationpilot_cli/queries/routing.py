"""Routing rules of a project: reads, the duplicate-name check and the writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.errors import BadInput, OperationFailed
from migrationpilot_cli.queries import inserted_id, one, pick_named, ref_bounds
from migrationpilot_cli.routing import Rule

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

COLUMNS = (
    "id",
    "project",
    "name",
    "slug",
    "pattern",
    "target",
    "traffic",
    "shadow",
    "enabled",
    "created_at",
    "updated_at",
)
# A table is for scanning: the ids and times are in the machine formats.
TABLE_COLUMNS = tuple(c for c in COLUMNS if c not in ("id", "created_at", "updated_at"))
# What `set` may change: option value -> column. Identifiers only from here. Never the
# slug: the database keeps it for life (routing_rules_keep_slug).
CHANGEABLE = {
    "name": "name",
    "pattern": "path_pattern",
    "target": "target_service",
    "traffic": "traffic_percentage",
    "shadow": "shadow_mode",
    "enabled": "enabled",
}

_NAME_KEY = "routing_rules_organization_id_project_id_name_key"
_SPLIT_TOTAL = "routing_rules_split_total"

_SELECT = """
SELECT r.id, r.project_id, p.name AS project, r.organization_id, r.name, r.slug,
       r.path_pattern AS pattern, r.target_service AS target, r.traffic_percentage AS traffic,
       r.shadow_mode AS shadow, r.enabled, r.created_at, r.updated_at
FROM routing_rules r
JOIN projects p ON p.id = r.project_id
"""


def as_rule(row: dict[str, Any]) -> Rule:
    return Rule(
        name=row["name"],
        slug=row["slug"],
        pattern=row["pattern"],
        target=row["target"],
        traffic=row["traffic"],
        shadow=row["shadow"],
        enabled=row["enabled"],
        created_at=row["created_at"],
    )


def list_all(
    conn: Connection,
    *,
    project_id: UUID | None,
    enabled_only: bool,
    organization_id: UUID | None = None,
) -> list[dict[str, Any]]:
    """The rules, a project's together (projects by name)."""
    return conn.execute(
        _SELECT
        + """
        WHERE (%(project)s::uuid IS NULL OR r.project_id = %(project)s)
          AND (%(org)s::uuid IS NULL OR r.organization_id = %(org)s)
          AND (NOT %(enabled_only)s OR r.enabled)
        ORDER BY p.name, r.project_id, r.created_at, r.slug
        """,
        {"project": project_id, "org": organization_id, "enabled_only": enabled_only},
    ).fetchall()


def get(
    conn: Connection, project: dict[str, Any], ref: str, *, for_update: bool = False
) -> dict[str, Any]:
    """One rule by its name (in any case), its slug, or its id (the start a table shows, or
    the full uuid); a name wins over another rule's slug, and both over the start of an id.
    ``for_update`` locks it, so that the old values an audit row records are the ones the
    change replaced."""
    from migrationpilot_cli import refs

    params = {"org": project["organization_id"], "project": project["id"], "ref": ref}
    found = conn.execute(
        _SELECT
        + """
        WHERE r.organization_id = %(org)s AND r.project_id = %(project)s
          AND (lower(r.name) = lower(%(ref)s) OR r.slug = %(ref)s
               OR r.id BETWEEN %(low)s AND %(high)s)
        ORDER BY lower(r.name) = lower(%(ref)s) DESC, r.slug = %(ref)s DESC, r.id
        LIMIT 6
        """
        + (" FOR UPDATE OF r" if for_update else ""),
        params | ref_bounds(ref),
    ).fetchall()
    named = [row for row in found if row["name"].lower() == ref.lower() or row["slug"] == ref]
    if named and not refs.is_uuid(ref):
        return named[0]
    return pick_named(
        found,
        ref,
        by="name",
        noun="routing rule",
        missing=f"no routing rule {ref!r} in project {project['name']!r};"
        f" see `migrationpilot routing list --project {project['id']}`",
    )


def refuse_duplicate_name(
    conn: Connection, project: dict[str, Any], name: str, *, other_than: UUID | None = None
) -> None:
    """Exit 2 when another rule of the project already has this name, in any case."""
    clash = conn.execute(
        """
        SELECT 1 FROM routing_rules
        WHERE organization_id = %(org)s AND project_id = %(project)s
          AND lower(name) = lower(%(name)s) AND id IS DISTINCT FROM %(other_than)s
        """,
        {
            "org": project["organization_id"],
            "project": project["id"],
            "name": name,
            "other_than": other_than,
        },
    ).fetchone()
    if clash is not None:
        raise _duplicate(name)


def _duplicate(name: str | None) -> BadInput:
    return BadInput(f"--name {name!r}: the project already has a rule with that name")


@contextmanager
def _refusals(values: dict[str, Any]) -> Iterator[None]:
    """The database's refusals as the CLI's. A concurrent writer can slip in between our
    duplicate check and our write: the unique index still refuses, and the user gets the
    same exit 2 as from the check. A split over 100% is exit 1, in one line."""
    import psycopg

    try:
        yield
    except psycopg.errors.UniqueViolation as error:
        if error.diag.constraint_name != _NAME_KEY:
            raise
        raise _duplicate(values.get("name")) from error
    except psycopg.errors.CheckViolation as error:
        if error.diag.constraint_name != _SPLIT_TOTAL:
            raise
        raise OperationFailed(
            f"{error.diag.message_primary}: lower one rule's traffic before raising"
            " another's, or disable one"
        ) from error


def create(conn: Connection, project: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Insert a rule; the database derives its slug from the name."""
    import psycopg

    try:
        # In a savepoint: a concurrent writer's rule of the same name also has the slug ours
        # derives, and the slug's unique key refuses first; the name check, run again,
        # then names the real clash.
        with conn.transaction(), _refusals(values):
            rule_id = inserted_id(
                conn,
                """
                INSERT INTO routing_rules (organization_id, project_id, name, path_pattern,
                                           target_service, traffic_percentage, shadow_mode,
                                           enabled)
                VALUES (%(organization)s, %(project)s, %(name)s, %(pattern)s, %(target)s,
                        %(traffic)s, %(shadow)s, %(enabled)s)
                RETURNING id
                """,
                {**values, "organization": project["organization_id"], "project": project["id"]},
            )
    except psycopg.errors.UniqueViolation:
        refuse_duplicate_name(conn, project, values["name"])
        raise
    return one(conn, _SELECT + "WHERE r.id = %s", (rule_id,), missing="the new rule vanished")


def update(conn: Connection, rule_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the given fields (keys of CHANGEABLE) and return the rule as it is now."""
    from psycopg import sql

    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(CHANGEABLE[field]), sql.Placeholder(field))
        for field in changes
    )
    with _refusals(changes):
        conn.execute(
            sql.SQL("UPDATE routing_rules SET {} WHERE id = %(id)s").format(assignments),
            {**changes, "id": rule_id},
        )
    return one(conn, _SELECT + "WHERE r.id = %s", (rule_id,), missing="the rule vanished")


def delete(conn: Connection, rule_id: UUID) -> None:
    conn.execute("DELETE FROM routing_rules WHERE id = %s", (rule_id,))
