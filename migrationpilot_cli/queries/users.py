"""Users: people, each in exactly one organization, with a role; active or disabled. A removed
account's person stays in ``people`` (V0016), for the history that names them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.errors import NotFound
from migrationpilot_cli.queries import inserted_id, pick_named, ref_bounds

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

COLUMNS = ("id", "email", "name", "organization", "role", "state", "created_at")

# What an account can do now: act (active), or nothing (disabled, V0016).
STATE = "CASE WHEN u.disabled_at IS NULL THEN 'active' ELSE 'disabled' END"

_SELECT = (
    "SELECT u.id, u.email, u.name, u.organization_id, o.slug AS organization,"
    " u.role::text AS role, "
    + STATE
    + """ AS state, u.disabled_at, u.disabled_reason, u.created_at, u.updated_at
FROM users u
JOIN organizations o ON o.id = u.organization_id
"""
)


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


def list_all(
    conn: Connection, organization_id: UUID | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    return conn.execute(
        _SELECT
        + " WHERE (%(org)s::uuid IS NULL OR u.organization_id = %(org)s)"
        + " AND (%(state)s::text IS NULL OR "
        + STATE
        + " = %(state)s)"
        + " ORDER BY o.slug, lower(u.email)",
        {"org": organization_id, "state": state},
    ).fetchall()


def get(conn: Connection, ref: str, *, lock: bool = False) -> dict[str, Any]:
    """A user by email (without regard to case) or id."""
    rows = conn.execute(
        _SELECT
        + " WHERE lower(u.email) = lower(%(ref)s) OR u.id BETWEEN %(low)s AND %(high)s"
        + " ORDER BY lower(u.email) = lower(%(ref)s) DESC, u.id LIMIT 6"
        + (" FOR UPDATE OF u" if lock else ""),
        {"ref": ref, **ref_bounds(ref)},
    ).fetchall()
    missing = f"no user {ref!r}; see `migrationpilot users list`"
    return pick_named(rows, ref, by="email", noun="user", missing=missing)


def in_organization(
    conn: Connection, organization_id: UUID, organization: str, emails: Sequence[str]
) -> list[dict[str, Any]]:
    """The users of an organization (its id, and its slug for messages) that ``emails`` name
    (without regard to case), in the order given, once each; NotFound (exit 4) naming every
    address that is nobody's there."""
    rows = conn.execute(
        """
        SELECT e.email AS given, u.id, u.email, u.name, u.role::text AS role
        FROM unnest(%(emails)s::text[]) WITH ORDINALITY AS e (email, n)
        LEFT JOIN users u ON lower(u.email) = lower(e.email) AND u.organization_id = %(org)s
        ORDER BY e.n
        """,
        {"emails": list(emails), "org": organization_id},
    ).fetchall()
    unknown = [row["given"] for row in rows if row["id"] is None]
    if unknown:
        raise NotFound(
            f"no user {', '.join(unknown)} in {organization}; see `migrationpilot users list`"
        )
    return list({row["id"]: row for row in rows}.values())


def update(conn: Connection, user_id: UUID, changes: dict[str, Any]) -> None:
    """Set what ``changes`` gives of name, email and role (None or absent: unchanged)."""
    conn.execute(
        """
        UPDATE users
        SET name = coalesce(%(name)s, name), email = coalesce(%(email)s, email),
            role = coalesce(%(role)s::user_role, role)
        WHERE id = %(id)s
        """,
        {"name": None, "email": None, "role": None, **changes, "id": user_id},
    )


def set_role(conn: Connection, user_id: UUID, role: str) -> None:
    update(conn, user_id, {"role": role})


def disable(conn: Connection, user_id: UUID, reason: str | None) -> None:
    """Disable an account (kept: since when; the reason given, else the one it had)."""
    conn.execute(
        "UPDATE users SET disabled_at = coalesce(disabled_at, now()),"
        " disabled_reason = coalesce(%s, disabled_reason) WHERE id = %s",
        (reason, user_id),
    )


def enable(conn: Connection, user_id: UUID) -> None:
    conn.execute(
        "UPDATE users SET disabled_at = NULL, disabled_reason = NULL"
        " WHERE id = %s AND disabled_at IS NOT NULL",
        (user_id,),
    )


def remove(conn: Connection, user_id: UUID) -> None:
    """Delete the account; the database keeps its person for the history (V0016)."""
    conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
