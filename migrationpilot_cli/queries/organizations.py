"""Organizations: the isolation unit; every tenant-owned row belongs to one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.queries import inserted_id, pick_named, ref_bounds

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

COLUMNS = ("id", "slug", "name", "tenant", "users", "projects", "created_at")

# four_eyes: on exactly when the settings hold {"four_eyes": true}, the test the database's
# trigger makes (V0013), so what `orgs show` says is what the database enforces.
_SELECT = """
SELECT o.id, o.slug, o.name, o.tenant_id, t.slug AS tenant,
       o.settings @> jsonb_build_object('four_eyes', true) AS four_eyes,
       o.created_at, o.updated_at,
       (SELECT count(*) FROM users u WHERE u.organization_id = o.id) AS users,
       (SELECT count(*) FROM projects p WHERE p.organization_id = o.id) AS projects
FROM organizations o
JOIN tenants t ON t.id = o.tenant_id
"""


def create(conn: Connection, *, name: str, slug: str, tenant_id: UUID) -> dict[str, Any]:
    return get(
        conn,
        inserted_id(
            conn,
            "INSERT INTO organizations (name, slug, tenant_id) VALUES (%s, %s, %s) RETURNING id",
            (name, slug, tenant_id),
        ),
    )


def list_all(conn: Connection, tenant_id: UUID | None = None) -> list[dict[str, Any]]:
    return conn.execute(
        _SELECT + " WHERE %(tenant)s::uuid IS NULL OR o.tenant_id = %(tenant)s ORDER BY o.slug",
        {"tenant": tenant_id},
    ).fetchall()


def get(conn: Connection, ref: str, *, lock: bool = False) -> dict[str, Any]:
    """An organization by slug or id (under RLS: only the acting user's own)."""
    query = _SELECT + (
        " WHERE o.slug = %(ref)s OR o.id BETWEEN %(low)s AND %(high)s"
        " ORDER BY o.slug = %(ref)s DESC, o.id LIMIT 6"
    )
    rows = conn.execute(
        query + (" FOR UPDATE OF o" if lock else ""), {"ref": ref, **ref_bounds(ref)}
    ).fetchall()
    missing = f"no organization {ref!r}; see `migrationpilot orgs list`"
    return pick_named(rows, ref, by="slug", noun="organization", missing=missing)


def id_of(conn: Connection, ref: str | None) -> UUID | None:
    """The id of an optional ``--org`` option (None when not given)."""
    return get(conn, ref)["id"] if ref else None


def own_or(conn: Connection, ref: str | None) -> UUID:
    """The organization ``--org`` names, or else the acting user's own."""
    if ref:
        return get(conn, ref)["id"]  # type: ignore[no-any-return]
    row = conn.execute("SELECT current_organization_id() AS id").fetchone()
    assert row is not None and row["id"] is not None, "called with an acting user"
    return row["id"]  # type: ignore[no-any-return]


def set_four_eyes(conn: Connection, organization_id: UUID, on: bool) -> None:
    """Turn four-eyes review on or off, keeping every other setting."""
    conn.execute(
        "UPDATE organizations"
        " SET settings = settings || jsonb_build_object('four_eyes', %s::boolean)"
        " WHERE id = %s",
        (on, organization_id),
    )
