"""Reviews of business rules: approve, reject or send back for clarification, a batch at a
time, in a few set-based statements whatever the batch size."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.errors import ChangedMeanwhile, NotFound

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

COLUMNS = ("id", "name", "old_status", "new_status", "outcome", "version")

# What a review needs: the role, and the action as the database words it (V0009, V0015): in the
# organization, and in the project of every rule of the batch.
REVIEW = ("reviewer", "review rules")

# The verb a reviewer types -> the review_status it sets (audit action: rule.<verb>).
STATUS_OF = {"approve": "approved", "reject": "rejected", "clarify": "needs_clarification"}

# How many unknown ids an error names before it only counts the rest.
_NAMED_MISSING = 5

# Lock the batch first, in id order: the old state we report and audit stays true until
# commit, a concurrent reviewer waits instead of being overwritten unseen, and two
# overlapping batches cannot deadlock. Row-level security hides other organizations' rules,
# so they come out as missing, exactly like unknown ids. The ids go as a binary uuid[] (%b):
# 16 bytes each for the server to take, instead of 10,000 uuids of text to parse in every
# statement that uses them.
#
# One round trip asks the roles too, in the order a refusal must follow: each check is a
# one-time filter (it reads no row), run before the rows of its query. The outer query's
# check (the role in the project of every locked rule) reads `locked`, whose own check (the
# role in the organization) runs before a row is locked; `IS NOT NULL` holds for the void
# the functions return.
_LOCK = """
WITH locked AS (
    SELECT id, name, review_status::text AS status, version, project_id
    FROM business_rules
    WHERE id = ANY(%(ids)b)
      AND (SELECT require_user_role(%(role)s, %(action)s)) IS NOT NULL
    ORDER BY id
    FOR UPDATE
)
SELECT id, name, status, version
FROM locked
WHERE (SELECT require_project_role(array(SELECT DISTINCT project_id FROM locked),
                                   %(role)s, %(action)s)) IS NOT NULL
"""

# Rules already in the requested state are left out, so they get no new version. The
# triggers bump the version, write the snapshot with app.change_reason (V0005) and the audit
# row of each decision (V0012). The sub-select makes current_user_id() an InitPlan:
# evaluated once, not once per row.
_UPDATE = """
UPDATE business_rules AS r
SET review_status = %(status)s::review_status,
    reviewed_by = (SELECT current_user_id()),
    reviewed_at = now(),
    review_comments = %(comment)s
WHERE r.id = ANY(%(ids)b)
  AND r.review_status <> %(status)s::review_status
RETURNING r.id, r.version
"""


def review(
    conn: Connection,
    ids: Sequence[UUID],
    *,
    verb: str,
    comment: str | None,
    skip_missing: bool = False,
    expect_version: int | None = None,
) -> list[dict[str, Any]]:
    """Give every rule of ``ids`` the status ``verb`` stands for (the database audits each).

    Returns one row per id, in the given order, with its outcome: reviewed, unchanged
    (already in that state) or skipped (unknown or not visible, with ``skip_missing``;
    otherwise NotFound fails the batch before anything is written)."""
    current = _locked(conn, ids)
    missing = [rule_id for rule_id in ids if rule_id not in current]
    if missing and not skip_missing:
        raise NotFound(_missing_message(missing, len(ids)))
    if expect_version is not None:
        _check_versions(current.values(), expect_version)
    status = STATUS_OF[verb]
    changing = [rule["id"] for rule in current.values() if rule["status"] != status]
    new_versions = _decide(conn, changing, status, f"review: {verb}", comment)
    return [_outcome(rule_id, current.get(rule_id), verb, new_versions) for rule_id in ids]


def _locked(conn: Connection, ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
    """The rules of ``ids`` the acting user may see, locked, by id; refused unless the user
    may review in the project of each. Asked before anything changes, so that a batch that
    would change nothing (every rule already in that state) is refused too; the triggers of
    V0009 and V0015 refuse any review decision the same way."""
    from psycopg.rows import tuple_row

    role, action = REVIEW
    with conn.cursor(row_factory=tuple_row) as cursor:  # a dict a row costs 5 µs more
        locked = cursor.execute(
            _LOCK, {"ids": list(ids), "role": role, "action": action}
        ).fetchall()
    return {
        rule_id: {"id": rule_id, "name": name, "status": status, "version": version}
        for rule_id, name, status, version in locked
    }


def _decide(
    conn: Connection, ids: Sequence[UUID], status: str, reason: str, comment: str | None
) -> dict[UUID, int]:
    """Set ``status`` on the (locked) rules of ``ids``; their new versions, by id."""
    from psycopg.rows import tuple_row

    if not ids:
        return {}
    why = f"{reason}: {comment}" if comment else reason
    conn.execute("SELECT set_config('app.change_reason', %s, true)", (why,))
    with conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(_UPDATE, {"ids": list(ids), "status": status, "comment": comment})
        return dict(cursor.fetchall())


def _missing_message(missing: Sequence[UUID], requested: int) -> str:
    named = ", ".join(str(rule_id) for rule_id in missing[:_NAMED_MISSING])
    if len(missing) > _NAMED_MISSING:
        named += f" and {len(missing) - _NAMED_MISSING} more"
    what = f"rule {named}" if len(missing) == 1 else f"{len(missing)} rules ({named})"
    hint = " (--skip-missing reviews the others)" if requested > len(missing) else ""
    return f"{what} not found or not visible to you; nothing was reviewed{hint}"


def _check_versions(rules: Iterable[dict[str, Any]], expected: int) -> None:
    for rule in rules:
        if rule["version"] != expected:
            raise ChangedMeanwhile(
                f"rule {rule['id']} is at version {rule['version']}, not {expected}:"
                " someone changed it meanwhile; review it again"
            )


def _outcome(
    rule_id: UUID, before: dict[str, Any] | None, verb: str, new_versions: dict[UUID, int]
) -> dict[str, Any]:
    if before is None:
        return dict.fromkeys(COLUMNS) | {"id": rule_id, "outcome": "skipped"}
    reviewed = rule_id in new_versions
    return {
        "id": rule_id,
        "name": before["name"],
        "old_status": before["status"],
        "new_status": STATUS_OF[verb],
        "outcome": "reviewed" if reviewed else "unchanged",
        "version": new_versions[rule_id] if reviewed else before["version"],
    }


# Back to pending with nobody signed: what undoing a decision on a pending rule restores. Not
# a review decision for the role triggers (V0009), but only a reviewer made the decision it
# undoes, so it asks for one too; the audit calls it rule.reopen.
_REOPEN = """
UPDATE business_rules
SET review_status = 'pending', reviewed_by = NULL, reviewed_at = NULL, review_comments = NULL
WHERE id = %(id)s AND review_status <> 'pending'
RETURNING version
"""


def reopen(conn: Connection, rule_id: UUID, *, expect_version: int, reason: str) -> int:
    """Put a rule back to pending review, if it is still at ``expect_version`` (else
    OperationFailed, like :func:`review`); returns its version after."""
    current = _locked(conn, [rule_id])
    if not current:
        raise NotFound(_missing_message([rule_id], 1))
    _check_versions(current.values(), expect_version)
    conn.execute("SELECT set_config('app.change_reason', %s, true)", (reason,))
    row = conn.execute(_REOPEN, {"id": rule_id}).fetchone()
    return int(row["version"]) if row else expect_version
