"""Tenants: the subscription and limits shared by a group of organizations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.queries import inserted_id, pick_named, ref_bounds

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

LIMITS = ("max_projects", "max_users_per_project", "max_lines_of_code", "data_retention_days")
SETTABLE = ("name", "subscription", *LIMITS)
COLUMNS = ("id", "slug", "name", "subscription", *LIMITS, "organizations", "created_at")

_SELECT = """
SELECT t.id, t.slug, t.name, t.subscription, t.max_projects, t.max_users_per_project,
       t.max_lines_of_code, t.data_retention_days, t.created_at, t.updated_at,
       (SELECT count(*) FROM organizations o WHERE o.tenant_id = t.id) AS organizations
FROM tenants t
"""


def create(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    from psycopg import sql  # here, not at the top: --help must not pay for psycopg

    columns = [name for name in ("slug", *SETTABLE) if values.get(name) is not None]
    query = sql.SQL("INSERT INTO tenants ({}) VALUES ({}) RETURNING id").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder(name) for name in columns),
    )
    return get(conn, inserted_id(conn, query, values))


def list_all(conn: Connection) -> list[dict[str, Any]]:
    return conn.execute(_SELECT + " ORDER BY t.slug").fetchall()


def get(conn: Connection, ref: str, *, lock: bool = False) -> dict[str, Any]:
    """A tenant by slug or id."""
    query = _SELECT + (
        " WHERE t.slug = %(ref)s OR t.id BETWEEN %(low)s AND %(high)s"
        " ORDER BY t.slug = %(ref)s DESC, t.id LIMIT 6"
    )
    rows = conn.execute(
        query + (" FOR UPDATE OF t" if lock else ""), {"ref": ref, **ref_bounds(ref)}
    ).fetchall()
    missing = f"no tenant {ref!r}; see `migrationpilot tenants list`"
    return pick_named(rows, ref, by="slug", noun="tenant", missing=missing)


def update(conn: Connection, tenant_id: UUID, changes: dict[str, Any]) -> None:
    from psycopg import sql

    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name))
        for name in changes
        if name in SETTABLE  # an allow-list: identifiers never come from input
    )
    conn.execute(
        sql.SQL("UPDATE tenants SET {} WHERE id = %(id)s").format(assignments),
        {**changes, "id": tenant_id},
    )
