"""Users: people, each in exactly one organization, with a role."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.queries import inserted_id, pick_named, ref_bounds

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

COLUMNS = ("id", "email", "name", "organization", "role", "created_at")

_SELECT = """
SELECT u.id, u.email, u.name, u.organization_id, o.slug AS organization, u.role::text AS role,
       u.created_at, u.updated_at
FROM users u
JOIN organizations o ON o.id = u.organization_id
"""


def add(
    conn: Connection, *, email: str, name: str, organization_id: UUID, role: str
) -> dict[str, Any]:
    return get(
        conn,
        inserted_id(
            conn,
            "INSERT INTO users (email, name, organization_id, role) VALUES (%s, %s, %s, %s)"
            " RETURNING id",
            (email, name, organization_id, role),
        ),
    )


def list_all(conn: Connection, organization_id: UUID | None = None) -> list[dict[str, Any]]:
    return conn.execute(
        _SELECT
        + " WHERE %(org)s::uuid IS NULL OR u.organization_id = %(org)s"
        + " ORDER BY o.slug, lower(u.email)",
        {"org": organization_id},
    ).fetchall()


def get(conn: Connection, ref: str) -> dict[str, Any]:
    """A user by email (without regard to case) or id."""
    rows = conn.execute(
        _SELECT
        + " WHERE lower(u.email) = lower(%(ref)s) OR u.id BETWEEN %(low)s AND %(high)s"
        + " ORDER BY lower(u.email) = lower(%(ref)s) DESC, u.id LIMIT 6",
        {"ref": ref, **ref_bounds(ref)},
    ).fetchall()
    missing = f"no user {ref!r}; see `migrationpilot users list`"
    return pick_named(rows, ref, by="email", noun="user", missing=missing)


def set_role(conn: Connection, user_id: UUID, role: str) -> None:
    conn.execute("UPDATE users SET role = %s WHERE id = %s", (role, user_id))
