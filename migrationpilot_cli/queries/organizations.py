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
       o.settings @> jsonb_build_object('four_eyes', true) AS four_eyes, o.settings,
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


def update(
    conn: Connection,
    organization_id: UUID,
    *,
    name: str | None = None,
    slug: str | None = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Rename an organization, change its slug, or merge ``settings`` into its settings: each
    top-level key given replaces the stored one, and a key given as null is removed (a JSON
    merge patch, one level deep); keys not given stay. None: unchanged."""
    from psycopg.types.json import Jsonb

    from migrationpilot_cli import jsonrecords

    conn.execute(
        """
        UPDATE organizations
        SET name = coalesce(%(name)s, name), slug = coalesce(%(slug)s, slug),
            settings = CASE WHEN %(patch)s::jsonb IS NULL THEN settings
                            ELSE (settings || %(patch)s::jsonb)
                                 - array(SELECT key FROM jsonb_each(%(patch)s::jsonb)
                                          WHERE value = 'null'::jsonb) END
        WHERE id = %(id)s
        """,
        {
            "name": name,
            "slug": slug,
            "patch": None if settings is None else Jsonb(settings, dumps=jsonrecords.dumps),
            "id": organization_id,
        },
    )
