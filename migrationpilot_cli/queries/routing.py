"""Routing rules of a project: reads, the duplicate checks and the writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.queries import inserted_id, one
from migrationpilot_cli.routing import Rule

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

COLUMNS = (
    "id",
    "project",
    "name",
    "pattern",
    "target",
    "traffic",
    "shadow",
    "enabled",
    "created_at",
    "updated_at",
)
# What `set` may change: option value -> column. Identifiers only from here.
CHANGEABLE = {
    "pattern": "path_pattern",
    "target": "target_service",
    "traffic": "traffic_percentage",
    "shadow": "shadow_mode",
    "enabled": "enabled",
}

_NAME_KEY = "routing_rules_organization_id_project_id_name_key"

_SELECT = """
SELECT r.id, r.project_id, p.name AS project, r.organization_id, r.name,
       r.path_pattern AS pattern, r.target_service AS target, r.traffic_percentage AS traffic,
       r.shadow_mode AS shadow, r.enabled, r.created_at, r.updated_at
FROM routing_rules r
JOIN projects p ON p.id = r.project_id
"""


def as_rule(row: dict[str, Any]) -> Rule:
    return Rule(
        name=row["name"],
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
    project_id: int | None,
    enabled_only: bool,
    organization_id: int | None = None,
) -> list[dict[str, Any]]:
    return conn.execute(
        _SELECT
        + """
        WHERE (%(project)s::bigint IS NULL OR r.project_id = %(project)s)
          AND (%(org)s::bigint IS NULL OR r.organization_id = %(org)s)
          AND (NOT %(enabled_only)s OR r.enabled)
        ORDER BY p.name, r.project_id, r.name
        """,
        {"project": project_id, "org": organization_id, "enabled_only": enabled_only},
    ).fetchall()


def get(
    conn: Connection, project: dict[str, Any], name: str, *, for_update: bool = False
) -> dict[str, Any]:
    """One rule by name; ``for_update`` locks it, so that the old values an audit row
    records are the ones the change replaced."""
    return one(
        conn,
        _SELECT
        + "WHERE r.project_id = %s AND r.name = %s"
        + (" FOR UPDATE OF r" if for_update else ""),
        (project["id"], name),
        missing=f"no routing rule {name!r} in project {project['name']!r};"
        f" see `migrationpilot routing list --project {project['id']}`",
    )


def refuse_duplicates(
    conn: Connection,
    project: dict[str, Any],
    *,
    name: str | None = None,
    pattern: str | None = None,
    other_than: int | None = None,
) -> None:
    """Exit 2 when another rule of the project already has this name or pattern."""
    clash = conn.execute(
        """
        SELECT name, path_pattern AS pattern FROM routing_rules
        WHERE project_id = %(project)s AND id IS DISTINCT FROM %(other_than)s
          AND (name = %(name)s OR path_pattern = %(pattern)s)
        ORDER BY name = %(name)s DESC
        LIMIT 1
        """,
        {"project": project["id"], "name": name, "pattern": pattern, "other_than": other_than},
    ).fetchone()
    if clash is not None:
        raise _duplicate("name" if clash["name"] == name else "pattern", name, pattern)


def _duplicate(field: str, name: str | None, pattern: str | None) -> BadInput:
    if field == "name":
        return BadInput(f"--name {name!r}: the project already has a rule with that name")
    return BadInput(f"--pattern {pattern!r}: another rule of the project already routes it")


@contextmanager
def _unique_as_bad_input(values: dict[str, Any]) -> Iterator[None]:
    """A concurrent writer can slip in between our duplicate check and our write: the
    unique constraints still refuse, and the user gets the same exit 2 as from the check."""
    import psycopg

    try:
        yield
    except psycopg.errors.UniqueViolation as error:
        field = "name" if error.diag.constraint_name == _NAME_KEY else "pattern"
        raise _duplicate(field, values.get("name"), values.get("pattern")) from error


def create(conn: Connection, project: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    with _unique_as_bad_input(values):
        rule_id = inserted_id(
            conn,
            """
            INSERT INTO routing_rules (organization_id, project_id, name, path_pattern,
                                       target_service, traffic_percentage, shadow_mode, enabled)
            VALUES (%(organization)s, %(project)s, %(name)s, %(pattern)s, %(target)s,
                    %(traffic)s, %(shadow)s, %(enabled)s)
            RETURNING id
            """,
            {**values, "organization": project["organization_id"], "project": project["id"]},
        )
    return one(conn, _SELECT + "WHERE r.id = %s", (rule_id,), missing="the new rule vanished")


def update(conn: Connection, rule_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the given fields (keys of CHANGEABLE) and return the rule as it is now."""
    from psycopg import sql

    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(CHANGEABLE[field]), sql.Placeholder(field))
        for field in changes
    )
    with _unique_as_bad_input(changes):
        conn.execute(
            sql.SQL("UPDATE routing_rules SET {} WHERE id = %(id)s").format(assignments),
            {**changes, "id": rule_id},
        )
    return one(conn, _SELECT + "WHERE r.id = %s", (rule_id,), missing="the rule vanished")


def delete(conn: Connection, rule_id: int) -> None:
    conn.execute("DELETE FROM routing_rules WHERE id = %s", (rule_id,))
