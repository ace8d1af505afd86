"""Project members: who works on a project, in which role (V0015). A member acts with the lower
of the project role and their organization role; an organization's admins act on every project
without a membership. The database enforces both, and the tenant's max_users_per_project."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.errors import NotFound
from migrationpilot_cli.queries import users

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

COLUMNS = ("email", "name", "role", "org_role", "acts_as", "state", "added_at")
CHANGE_COLUMNS = ("email", "name", "role", "outcome")

# A member's role in the project as the database reckons it (current_project_role()).
_ACTS_AS = "CASE WHEN u.role = 'admin' THEN u.role ELSE greatest(m.role, u.role) END::text"

_SELECT = (
    "SELECT u.email, u.name, m.role::text AS role, u.role::text AS org_role, "
    + _ACTS_AS
    + " AS acts_as, "
    + users.STATE
    + """ AS state, m.created_at AS added_at, m.user_id, m.id
FROM project_members m
JOIN users u ON u.id = m.user_id
WHERE m.project_id = %(project)s AND (%(users)s::uuid[] IS NULL OR m.user_id = ANY(%(users)s))
ORDER BY lower(u.email)
"""
)

# The default project role: the user's organization role, an admin's as architect (the
# highest a project knows; admins act on every project anyway).
_ADD = """
INSERT INTO project_members (organization_id, project_id, user_id, role)
SELECT u.organization_id, %(project)s, u.id,
       coalesce(%(role)s::user_role,
                CASE WHEN u.role = 'admin' THEN 'architect'::user_role ELSE u.role END)
FROM users u
WHERE u.id = ANY(%(users)s)
ON CONFLICT (organization_id, project_id, user_id) DO NOTHING
RETURNING user_id
"""


def list_all(
    conn: Connection, project_id: UUID, user_ids: Sequence[UUID] | None = None
) -> list[dict[str, Any]]:
    """The project's members (or those of ``user_ids``), by email."""
    users_wanted = None if user_ids is None else list(user_ids)
    return conn.execute(_SELECT, {"project": project_id, "users": users_wanted}).fetchall()


def add(
    conn: Connection, project: dict[str, Any], people: Sequence[dict[str, Any]], role: str | None
) -> list[dict[str, Any]]:
    """Make ``people`` (rows of :func:`users.in_organization`) members of ``project``, in one
    statement; who is one already keeps their role. One row per person: added or unchanged."""
    ids = [person["id"] for person in people]
    added = {
        row["user_id"]
        for row in conn.execute(_ADD, {"project": project["id"], "users": ids, "role": role})
    }
    outcomes = {i: "added" if i in added else "unchanged" for i in ids}
    return _outcomes(conn, project["id"], ids, outcomes)


def set_role(
    conn: Connection, project: dict[str, Any], people: Sequence[dict[str, Any]], role: str
) -> list[dict[str, Any]]:
    """Give members of ``project`` a new project role; someone who is not a member is an
    error (exit 4) before anything changes."""
    ids = _members(conn, project, people)
    changed = {
        row["user_id"]
        for row in conn.execute(
            "UPDATE project_members SET role = %(role)s WHERE project_id = %(project)s"
            " AND user_id = ANY(%(users)s) AND role <> %(role)s RETURNING user_id",
            {"project": project["id"], "users": ids, "role": role},
        )
    }
    outcomes = {i: "updated" if i in changed else "unchanged" for i in ids}
    return _outcomes(conn, project["id"], ids, outcomes)


def remove(
    conn: Connection, project: dict[str, Any], people: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """End the memberships of ``people`` in ``project``, in one statement; someone who is not
    a member is an error (exit 4) before anything changes. Returns what they were."""
    ids = _members(conn, project, people)
    before = _outcomes(conn, project["id"], ids, dict.fromkeys(ids, "removed"))
    conn.execute(
        "DELETE FROM project_members WHERE project_id = %s AND user_id = ANY(%s)",
        (project["id"], ids),
    )
    return before


def _members(
    conn: Connection, project: dict[str, Any], people: Sequence[dict[str, Any]]
) -> list[UUID]:
    """The ids of ``people``, locked as members of ``project``, or NotFound naming who is not."""
    ids = [person["id"] for person in people]
    found = {
        row["user_id"]
        for row in conn.execute(
            "SELECT user_id FROM project_members WHERE project_id = %s AND user_id = ANY(%s)"
            " ORDER BY user_id FOR UPDATE",
            (project["id"], ids),
        )
    }
    strangers = [person["email"] for person in people if person["id"] not in found]
    if strangers:
        raise NotFound(
            f"{', '.join(strangers)} {'is' if len(strangers) == 1 else 'are'} not a member of"
            f" project {project['name']}; see `migrationpilot projects members list`"
        )
    return ids


def _outcomes(
    conn: Connection, project_id: UUID, ids: Sequence[UUID], outcomes: dict[UUID, str]
) -> list[dict[str, Any]]:
    """The members ``ids`` as they are now (a removed one: as it was), in the order given,
    each with its outcome."""
    rows = {row["user_id"]: row for row in list_all(conn, project_id, ids)}
    return [{**rows[i], "outcome": outcomes[i]} for i in ids if i in rows]


def of_project(conn: Connection, project_id: UUID) -> dict[str, dict[str, Any]]:
    """The members as ``projects show`` shows them: email -> name, role, what they act as."""
    return {
        row["email"]: {"name": row["name"], "role": row["role"], "acts_as": row["acts_as"]}
        for row in list_all(conn, project_id)
    }
