"""Changes to stored business rules: an edit by hand, and the revalidation that flags the
rules whose source lines changed after a re-import. The versioning triggers of V0005 record
every change, and V0013 puts an approved or rejected rule whose content changed back to
pending; commands only set ``app.change_reason`` for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.queries import one
from migrationpilot_cli.queries.rules import REVALIDATE_COLUMNS, missing

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

EDITABLE = ("name", "description", "logic", "formula", "confidence", "category")


def set_change_reason(conn: Connection, reason: str) -> None:
    """Why the rule versions written from now on in this transaction were made."""
    conn.execute("SELECT set_config('app.change_reason', %s, true)", (reason,))


def lock(conn: Connection, rule_id: UUID) -> dict[str, Any]:
    """The editable fields of a rule and its review status, locked until commit so that what
    an edit reports as the old values stays true."""
    return one(
        conn,
        """
        SELECT id, organization_id, name, description, logic, formula, confidence,
               category::text AS category, review_status::text AS review_status, version
        FROM business_rules WHERE id = %s FOR UPDATE
        """,
        (rule_id,),
        missing=missing(rule_id),
    )


def update(conn: Connection, rule_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the EDITABLE fields in ``changes``; returns them as stored, with the version and the
    review status (which the database sets back to pending when the edit reopens a review)."""
    from psycopg import sql

    unknown = set(changes) - set(EDITABLE)
    assert not unknown, f"not editable: {unknown}"
    query = sql.SQL(
        "UPDATE business_rules SET {assignments} WHERE id = %(id)s"
        " RETURNING {columns}, category::text AS category,"
        " review_status::text AS review_status, version"
    ).format(
        assignments=sql.SQL(", ").join(
            sql.Identifier(name) + sql.SQL(" = ") + sql.Placeholder(name) for name in changes
        ),
        columns=sql.SQL(", ").join(sql.Identifier(name) for name in EDITABLE if name != "category"),
    )
    row = conn.execute(query, {**changes, "id": rule_id}).fetchone()
    assert row is not None, "the rule is locked by this transaction"
    return row


# The automatic review comment per reason; a rule already flagged with it is left alone.
FLAG_COMMENTS = {
    "changed": "source changed since extraction (revalidate)",
    "vanished": "source lines vanished since extraction (revalidate)",
}
# Per rule with a source location: `vanished` when its file is gone or too short now,
# `changed` when the hash of its lines differs. A rule without a stored hash (written by
# other means) gets its baseline hash, unflagged. A rule already flagged for the same reason
# is left alone (no new version).
_REVALIDATE = """
WITH f AS MATERIALIZED ({file_lines}),
current AS (
    -- Without a joined file (gone, or now shorter than the range) the hash is NULL.
    SELECT r.id, r.source_hash AS stored_hash, {hash} AS hash,
           r.review_status = 'needs_clarification' AS in_clarification, r.review_comments
    FROM stored_rules r
    LEFT JOIN f ON f.path = r.source_file AND r.source_end_line <= f.line_count
    WHERE r.source_start_line IS NOT NULL
), checked AS (
    SELECT id, stored_hash, coalesce(hash, stored_hash) AS hash, reason,
           coalesce(in_clarification AND review_comments = %(comments)s ->> reason, false)
             AS already
    FROM current,
         LATERAL (SELECT CASE WHEN hash IS NULL THEN 'vanished'
                              WHEN hash <> stored_hash THEN 'changed' END AS reason) AS verdict
), updated AS (
    UPDATE business_rules r
    SET source_hash = c.hash,
        review_status = CASE WHEN c.reason IS NULL THEN r.review_status
                             ELSE 'needs_clarification' END,
        review_comments = coalesce(%(comments)s ->> c.reason, r.review_comments),
        reviewed_by = CASE WHEN c.reason IS NULL THEN r.reviewed_by END,
        reviewed_at = CASE WHEN c.reason IS NULL THEN r.reviewed_at ELSE now() END
    FROM checked c
    WHERE r.id = c.id AND NOT c.already AND (c.reason IS NOT NULL OR c.stored_hash IS NULL)
    RETURNING r.id, r.name, r.source_file, r.source_start_line, r.source_end_line, c.reason
), counted AS (
    SELECT count(*) AS checked, count(*) FILTER (WHERE already) AS already FROM checked
)
SELECT u.*, counted.checked, counted.already
FROM counted LEFT JOIN updated u ON true
ORDER BY u.source_file, u.source_start_line, u.source_end_line, u.name
"""


def revalidate(conn: Connection, project_id: UUID) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Compare every rule's stored source hash with its lines in the current source, in one
    statement (change reason ``revalidate``). Rules whose lines changed or vanished move to
    needs_clarification with an automatic comment; returns those rules and the counts
    (checked, flagged, already_flagged)."""
    from psycopg import sql
    from psycopg.types.json import Jsonb

    from migrationpilot_cli.queries.rule_import import (
        FILE_LINES,
        SOURCE_HASH,
        snapshot_rules,
        stage_sources,
    )

    snapshot_rules(conn, project_id)
    stage_sources(conn, project_id, "stored_rules")  # the files the rules cite
    set_change_reason(conn, "revalidate")
    rows = conn.execute(
        sql.SQL(_REVALIDATE).format(file_lines=sql.SQL(FILE_LINES), hash=sql.SQL(SOURCE_HASH)),
        {"comments": Jsonb(FLAG_COMMENTS)},
    ).fetchall()
    flagged = [
        {column: row[column] for column in REVALIDATE_COLUMNS}
        for row in rows
        if row["reason"] is not None
    ]
    counts = {
        "checked": int(rows[0]["checked"]),
        "flagged": len(flagged),
        "already_flagged": int(rows[0]["already"]),
    }
    return flagged, counts
