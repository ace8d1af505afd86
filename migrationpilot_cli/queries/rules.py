"""Business rules: the idempotent bulk import, the review listings, versions and diffs, edits,
exports and the revalidation against re-imported source.

A rule's ``source_hash`` is the sha256 (hex) of its source lines as stored: the lines
``source_start_line`` to ``source_end_line`` of the file's content, joined with ``\\n``,
encoded as UTF-8. Import and revalidate compute it with the same SQL fragment below, so the
two can never disagree. The versioning triggers of V0005 record every change; commands only
set ``app.change_reason`` for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.queries import copy_rows, one

if TYPE_CHECKING:
    from psycopg import sql

    from migrationpilot_cli.db.connect import Connection
    from migrationpilot_cli.rulefiles import RuleRecord

COLUMNS = (
    "id",
    "project",
    "name",
    "category",
    "confidence",
    "review_status",
    "source_file",
    "source_start_line",
    "source_end_line",
    "version",
    "extracted_at",
)
TABLE_COLUMNS = ("id", "project", "name", "category", "confidence", "review_status", "source_file")

# `--sort` keys -> the columns they order by; a leading `-` sorts descending.
SORT_COLUMNS = {
    "confidence": ("confidence",),
    "name": ("name",),
    "file": ("source_file", "source_start_line"),
    "extracted": ("extracted_at",),
}
EDITABLE = ("name", "description", "logic", "formula", "confidence", "category")
# What an import may change; name and location are the identity.
_CONTENT = (
    "description",
    "category",
    "source_code",
    "inputs",
    "outputs",
    "logic",
    "formula",
    "confidence",
    "source_hash",
)

# ---------------------------------------------------------------------------------------------
# Source lines and their hash. Both fragments need `f.lines` (a file's content split into
# lines, 1-based: see _FILE_LINES) and the rule's range as `r.source_start_line` /
# `r.source_end_line`.
# ---------------------------------------------------------------------------------------------
_EXCERPT = "array_to_string(f.lines[r.source_start_line:r.source_end_line], E'\\n')"
_SOURCE_HASH = f"encode(sha256(convert_to({_EXCERPT}, 'UTF8')), 'hex')"

# Statistics on business_rules and source_files lag behind a big import (until autovacuum
# analyzes them, the planner believes the project has no rows), and a plan built on that
# belief is quadratic in the number of rules: minutes for 100,000. So each bulk statement
# first copies what it needs of the project into temporary tables, analyzes them, and joins
# those (or the real tables by primary key); every plan is then linear whatever the
# statistics say.
_STAGE_SOURCES = """
CREATE TEMPORARY TABLE staged_sources ON COMMIT DROP AS
SELECT path, line_count, content
FROM source_files
WHERE project_id = %(project)s AND path = ANY(%(paths)s)
"""
# Each file split into lines once: the body of a MATERIALIZED common table expression `f`.
# Inlined, the split would run once per rule; an array stored in a table would be
# decompressed once per rule.
_FILE_LINES = """
SELECT path, line_count, string_to_array(content, E'\\n') AS lines FROM staged_sources
"""
_SNAPSHOT_RULES = """
CREATE TEMPORARY TABLE stored_rules ON COMMIT DROP AS
SELECT id, name, source_file, source_start_line, source_end_line, review_status,
       review_comments, {content}
FROM business_rules
WHERE project_id = %(project)s
"""


def _stage_sources(conn: Connection, project_id: UUID, paths: Sequence[str]) -> None:
    conn.execute(_STAGE_SOURCES, {"project": project_id, "paths": list(paths)})
    conn.execute("ALTER TABLE staged_sources ADD PRIMARY KEY (path)")
    conn.execute("ANALYZE staged_sources")


def _snapshot_rules(conn: Connection, project_id: UUID) -> None:
    from psycopg import sql

    content = sql.SQL(", ").join(sql.Identifier(column) for column in _CONTENT)
    conn.execute(sql.SQL(_SNAPSHOT_RULES).format(content=content), {"project": project_id})
    conn.execute("ANALYZE stored_rules")


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------
# The records as they came (copied_rules), then with their source lines (staged_rules).
_STAGE = """
CREATE TEMPORARY TABLE copied_rules (
    position integer NOT NULL, location text NOT NULL, name text NOT NULL,
    description text, category rule_category NOT NULL, source_file text NOT NULL,
    source_start_line integer NOT NULL, source_end_line integer NOT NULL, source_code text,
    inputs jsonb NOT NULL, outputs jsonb NOT NULL, logic text, formula text,
    confidence numeric(4,3) NOT NULL
) ON COMMIT DROP
"""
_COPY = """
COPY copied_rules (position, location, name, description, category, source_file,
                   source_start_line, source_end_line, source_code, inputs, outputs, logic,
                   formula, confidence) FROM STDIN
"""
# The first record (in input order) whose source file or line range is not in the project.
_OUTSIDE_SOURCES = """
SELECT s.location, s.source_file, s.source_end_line, f.line_count
FROM copied_rules s
LEFT JOIN staged_sources f ON f.path = s.source_file
WHERE f.path IS NULL OR s.source_end_line > f.line_count
ORDER BY s.position
LIMIT 1
"""
# Every record has its file (checked above). A new table rather than an UPDATE of the copied
# one: writing each wide row once instead of twice saves a third of this step.
_CUT_SOURCE = """
CREATE TEMPORARY TABLE staged_rules ON COMMIT DROP AS
WITH f AS MATERIALIZED ({file_lines})
SELECT r.position, r.location, r.name, r.description, r.category, r.source_file,
       r.source_start_line, r.source_end_line, coalesce(r.source_code, {excerpt}) AS source_code,
       r.inputs, r.outputs, r.logic, r.formula, r.confidence, {hash} AS source_hash
FROM copied_rules r
JOIN f ON f.path = r.source_file
"""
# Each record that is already a stored rule (same identity): which one, and whether it
# changed. A table of its own rather than an UPDATE of the wide staging rows.
_MATCH = """
CREATE TEMPORARY TABLE matched_rules ON COMMIT DROP AS
SELECT s.position, r.id AS rule_id, ({current}) IS DISTINCT FROM ({staged}) AS changed,
       r.review_status <> 'pending' AS reviewed
FROM staged_rules s
JOIN stored_rules r
  ON (r.source_file, r.source_start_line, r.source_end_line, r.name)
     = (s.source_file, s.source_start_line, s.source_end_line, s.name)
"""
# A changed rule goes back to pending: its review was of content that no longer exists (the
# previous version keeps it).
_UPDATE_CHANGED = """
UPDATE business_rules r
SET ({content}) = ({staged}),
    review_status = 'pending', reviewed_by = NULL, reviewed_at = NULL, review_comments = NULL
FROM matched_rules m
JOIN staged_rules s ON s.position = m.position
WHERE m.changed AND r.id = m.rule_id
"""
_INSERT_NEW = """
INSERT INTO business_rules (organization_id, project_id, name, source_file, source_start_line,
                            source_end_line, {content})
SELECT %(organization)s, %(project)s, s.name, s.source_file, s.source_start_line,
       s.source_end_line, {staged}
FROM staged_rules s
WHERE NOT EXISTS (SELECT 1 FROM matched_rules m WHERE m.position = s.position)
ORDER BY s.position
"""
_COUNTS = """
SELECT count(*) FILTER (WHERE changed) AS updated,
       count(*) FILTER (WHERE NOT changed) AS unchanged,
       count(*) FILTER (WHERE changed AND reviewed) AS reopened
FROM matched_rules
"""


def set_change_reason(conn: Connection, reason: str) -> None:
    """Why the rule versions written from now on in this transaction were made."""
    conn.execute("SELECT set_config('app.change_reason', %s, true)", (reason,))


def merge(
    conn: Connection, project: dict[str, Any], records: Sequence[RuleRecord]
) -> dict[str, int]:
    """Bring the project's rules in line with ``records``: COPY them into a staging table,
    check every source reference in one query, cut the missing source code and hash the lines,
    match each record with its stored rule, then one statement for the changed rules (change
    reason ``reimport``) and one for the new ones.

    Returns the counts: inserted, updated, unchanged, and reopened (updated rules that had
    been reviewed and are pending again)."""
    from psycopg import sql

    # A big import's hash joins and the versioning trigger's transition table (every new row)
    # spill to temporary files at the default 4MB; this transaction alone gets more.
    conn.execute("SET LOCAL work_mem = '64MB'")
    _copy_records(conn, records)
    _stage_sources(conn, project["id"], sorted({rule.source_file for rule in records}))
    _check_sources(conn, project)
    _cut_sources(conn)
    _snapshot_rules(conn, project["id"])
    content = sql.SQL(", ").join(sql.Identifier(column) for column in _CONTENT)
    staged = sql.SQL(", ").join(sql.Identifier("s", column) for column in _CONTENT)
    current = sql.SQL(", ").join(sql.Identifier("r", column) for column in _CONTENT)
    ids = {"project": project["id"], "organization": project["organization_id"]}
    conn.execute(sql.SQL(_MATCH).format(current=current, staged=staged))
    conn.execute("ANALYZE matched_rules")
    set_change_reason(conn, "reimport")
    conn.execute(sql.SQL(_UPDATE_CHANGED).format(content=content, staged=staged))
    set_change_reason(conn, "import")
    inserted = conn.execute(sql.SQL(_INSERT_NEW).format(content=content, staged=staged), ids)
    counts = conn.execute(_COUNTS).fetchone()
    assert counts is not None
    return {"inserted": inserted.rowcount, **{name: int(n) for name, n in counts.items()}}


def _copy_records(conn: Connection, records: Sequence[RuleRecord]) -> None:
    from migrationpilot_cli.jsonrecords import dumps

    conn.execute(_STAGE)
    rows = (
        (
            position,
            rule.location,
            rule.name,
            rule.description,
            rule.category,
            rule.source_file,
            rule.source_start_line,
            rule.source_end_line,
            rule.source_code,
            dumps(rule.inputs),
            dumps(rule.outputs),
            rule.logic,
            rule.formula,
            rule.confidence,
        )
        for position, rule in enumerate(records)
    )
    copy_rows(conn, _COPY, rows)


def _cut_sources(conn: Connection) -> None:
    from psycopg import sql

    conn.execute(
        sql.SQL(_CUT_SOURCE).format(
            file_lines=sql.SQL(_FILE_LINES), excerpt=sql.SQL(_EXCERPT), hash=sql.SQL(_SOURCE_HASH)
        )
    )
    conn.execute("ALTER TABLE staged_rules ADD PRIMARY KEY (position)")
    # Statistics on what the statements join and filter by: the wide text columns would
    # only make ANALYZE slower.
    conn.execute(
        "ANALYZE staged_rules (position, name, source_file, source_start_line, source_end_line)"
    )


def _check_sources(conn: Connection, project: dict[str, Any]) -> None:
    outside = conn.execute(_OUTSIDE_SOURCES, {"project": project["id"]}).fetchone()
    if outside is None:
        return
    where, path = outside["location"], outside["source_file"]
    if outside["line_count"] is None:
        raise BadInput(
            f"{where}: source_file {path!r} is not a file of project {project['name']!r}"
            " (see `migrationpilot files list`)"
        )
    raise BadInput(
        f"{where}: source_end_line {outside['source_end_line']} is past the end of {path}"
        f" ({outside['line_count']} lines)"
    )


# ---------------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------------
# Each filter is off when its parameter is NULL. PostgreSQL plans these unnamed statements
# with the actual values, so the switched-off tests fold away and each common shape has an
# index in its order (V0016): a project's rules by status and confidence, an organization's
# or everyone's pending queue by confidence. The project's name is a sub-select, run for the
# rows returned only: under row-level security a join to projects would apply the
# organization filter twice in the planner's estimate, which then believes fewer rows match
# than the LIMIT asks for and sorts the organization's every rule instead of reading the
# index in order (465 ms instead of 1 ms at 200,000 rules).
_LIST = """
SELECT r.id, (SELECT p.name FROM projects p WHERE p.id = r.project_id) AS project, r.name,
       r.category::text AS category, r.confidence, r.review_status::text AS review_status,
       r.source_file, r.source_start_line, r.source_end_line, r.version, r.extracted_at
FROM business_rules r
WHERE (%(project)s::uuid IS NULL OR r.project_id = %(project)s) {file_order}
  AND (%(organization)s::uuid IS NULL OR r.organization_id = %(organization)s)
  AND (%(status)s::review_status IS NULL OR r.review_status = %(status)s)
  AND (%(category)s::rule_category IS NULL OR r.category = %(category)s)
  AND (%(min_confidence)s::numeric IS NULL OR r.confidence >= %(min_confidence)s)
  AND (%(max_confidence)s::numeric IS NULL OR r.confidence <= %(max_confidence)s)
  AND (%(file)s::text IS NULL OR r.source_file = %(file)s)
  AND (%(search)s::text IS NULL
       OR r.name ILIKE %(search)s OR r.description ILIKE %(search)s
       OR r.logic ILIKE %(search)s OR r.formula ILIKE %(search)s)
ORDER BY {order}, r.id
LIMIT %(limit)s
"""

_PROJECT_ORGANIZATION = (
    "AND r.organization_id = (SELECT p.organization_id FROM projects p WHERE p.id = %(project)s)"
)


def list_rules(
    conn: Connection,
    *,
    project_id: UUID | None = None,
    organization_id: UUID | None = None,
    status: str | None = None,
    category: str | None = None,
    min_confidence: Decimal | None = None,
    max_confidence: Decimal | None = None,
    source_file: str | None = None,
    search: str | None = None,
    sort: str = "-confidence",
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The rules the connection can see that pass every given filter, in ``sort`` order
    (a key of SORT_COLUMNS, ``-`` first for descending), then by id so paging is stable."""
    from psycopg import sql

    # A project's rules in file order are its identity key's order, but that key leads with
    # organization_id (V0015): naming the project's organization lets the scan read the key
    # in order and stop at the limit, instead of sorting every rule of the project.
    file_order = project_id is not None and sort.removeprefix("-") == "file"
    scope = _PROJECT_ORGANIZATION if file_order else ""
    return conn.execute(
        sql.SQL(_LIST).format(order=_order_by(sort), file_order=sql.SQL(scope)),
        {
            "project": project_id,
            "organization": organization_id,
            "status": status,
            "category": category,
            "min_confidence": min_confidence,
            "max_confidence": max_confidence,
            "file": source_file,
            "search": None if search is None else f"%{_escape_like(search)}%",
            "limit": limit,
        },
    ).fetchall()


def _order_by(sort: str) -> sql.Composable:
    from psycopg import sql

    direction = sql.SQL(" DESC" if sort.startswith("-") else "")
    columns = SORT_COLUMNS[sort.removeprefix("-")]  # an allow-list: callers checked the key
    return sql.SQL(", ").join(sql.Identifier("r", column) + direction for column in columns)


def _escape_like(text: str) -> str:
    """``text`` matched literally by LIKE (backslash is its default escape character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------------------------------------
# One rule, its versions, edits
# ---------------------------------------------------------------------------------------------
_GET = """
SELECT r.id, p.name AS project, r.project_id, r.name, r.description,
       r.category::text AS category, r.confidence, r.review_status::text AS review_status,
       reviewer.email AS reviewed_by, r.reviewed_at, r.review_comments, r.source_file,
       r.source_start_line, r.source_end_line, r.inputs, r.outputs, r.logic, r.formula,
       r.source_hash, r.version, r.extracted_at, r.created_at, r.updated_at, r.source_code,
       f.language::text AS source_language
FROM business_rules r
JOIN projects p ON p.id = r.project_id
LEFT JOIN users reviewer ON reviewer.id = r.reviewed_by
LEFT JOIN source_files f ON f.project_id = r.project_id AND f.path = r.source_file
WHERE r.id = %(id)s
"""


def _missing(rule_id: UUID) -> str:
    return f"no rule {rule_id} (or it is not visible to you); see `migrationpilot rules list`"


def get(conn: Connection, rule_id: UUID) -> dict[str, Any]:
    """Every field of a rule, with its project's name, the reviewer's email and the language
    of its source file (``source_language``, NULL when the file is gone)."""
    return one(conn, _GET, {"id": rule_id}, missing=_missing(rule_id))


def history(conn: Connection, rule_id: UUID) -> list[dict[str, Any]]:
    """Every version: who made it (an email, or ``operator`` without an acting user), when,
    why, and the review status it had."""
    one(conn, "SELECT id FROM business_rules WHERE id = %s", (rule_id,), missing=_missing(rule_id))
    return conn.execute(
        """
        SELECT v.version, v.created_at AS changed_at,
               coalesce(u.email, 'operator') AS changed_by, v.change_reason,
               v.snapshot ->> 'review_status' AS review_status
        FROM rule_versions v
        LEFT JOIN users u ON u.id = v.changed_by
        WHERE v.rule_id = %s
        ORDER BY v.version
        """,
        (rule_id,),
    ).fetchall()


# Field by field over the two snapshots, in the table's column order; a version "0" is the
# empty snapshot (what version 1 was made from).
_DIFF = """
WITH pair AS (
    SELECT coalesce((SELECT snapshot FROM rule_versions
                     WHERE rule_id = %(id)s AND version = %(from)s), '{}') AS old,
           (SELECT snapshot FROM rule_versions
            WHERE rule_id = %(id)s AND version = %(to)s) AS new
), fields AS (
    SELECT jsonb_object_keys(old) AS field FROM pair
    UNION
    SELECT jsonb_object_keys(new) FROM pair
)
SELECT fields.field, pair.old -> fields.field AS "from", pair.new -> fields.field AS "to"
FROM pair, fields
LEFT JOIN pg_attribute a
       ON a.attrelid = 'business_rules'::regclass AND a.attname = fields.field
WHERE fields.field <> 'updated_at'
  AND (pair.old -> fields.field) IS DISTINCT FROM (pair.new -> fields.field)
ORDER BY a.attnum NULLS LAST, fields.field
"""


def latest_version(conn: Connection, rule_id: UUID) -> int:
    row = one(
        conn,
        "SELECT version FROM business_rules WHERE id = %s",
        (rule_id,),
        missing=_missing(rule_id),
    )
    return int(row["version"])


def diff(conn: Connection, rule_id: UUID, old: int, new: int) -> list[dict[str, Any]]:
    """The fields that differ between versions ``old`` and ``new`` (``old`` 0: none)."""
    return conn.execute(_DIFF, {"id": rule_id, "from": old, "to": new}).fetchall()


def lock(conn: Connection, rule_id: UUID) -> dict[str, Any]:
    """The editable fields of a rule, locked until commit so that what an edit reports as the
    old values stays true."""
    return one(
        conn,
        """
        SELECT id, organization_id, name, description, logic, formula, confidence,
               category::text AS category, version
        FROM business_rules WHERE id = %s FOR UPDATE
        """,
        (rule_id,),
        missing=_missing(rule_id),
    )


def update(conn: Connection, rule_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the EDITABLE fields in ``changes``; returns them as stored, with the version."""
    from psycopg import sql

    unknown = set(changes) - set(EDITABLE)
    assert not unknown, f"not editable: {unknown}"
    query = sql.SQL(
        "UPDATE business_rules SET {assignments} WHERE id = %(id)s"
        " RETURNING {columns}, category::text AS category, version"
    ).format(
        assignments=sql.SQL(", ").join(
            sql.Identifier(name) + sql.SQL(" = ") + sql.Placeholder(name) for name in changes
        ),
        columns=sql.SQL(", ").join(sql.Identifier(name) for name in EDITABLE if name != "category"),
    )
    row = conn.execute(query, {**changes, "id": rule_id}).fetchone()
    assert row is not None, "the rule is locked by this transaction"
    return row


# ---------------------------------------------------------------------------------------------
# Export and revalidation
# ---------------------------------------------------------------------------------------------
EXPORT_COLUMNS = (
    "id",
    "name",
    "category",
    "confidence",
    "review_status",
    "reviewed_by",
    "reviewed_at",
    "review_comments",
    "description",
    "logic",
    "formula",
    "inputs",
    "outputs",
    "source_file",
    "source_start_line",
    "source_end_line",
    "source_code",
    "version",
    "extracted_at",
)


def export(conn: Connection, project_id: UUID) -> list[dict[str, Any]]:
    """Every rule of the project for a report: by category, then most confident first."""
    return conn.execute(
        """
        SELECT r.id, r.name, r.category::text AS category, r.confidence,
               r.review_status::text AS review_status, reviewer.email AS reviewed_by,
               r.reviewed_at, r.review_comments, r.description, r.logic, r.formula, r.inputs,
               r.outputs, r.source_file, r.source_start_line, r.source_end_line, r.source_code,
               r.version, r.extracted_at
        FROM business_rules r
        LEFT JOIN users reviewer ON reviewer.id = r.reviewed_by
        WHERE r.project_id = %s
        ORDER BY r.category, r.confidence DESC, r.id
        """,
        (project_id,),
    ).fetchall()


REVALIDATE_COLUMNS = ("id", "name", "source_file", "source_start_line", "source_end_line", "reason")
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

    paths = conn.execute(
        "SELECT DISTINCT source_file FROM business_rules"
        " WHERE project_id = %s AND source_file IS NOT NULL",
        (project_id,),
    ).fetchall()
    _stage_sources(conn, project_id, [row["source_file"] for row in paths])
    _snapshot_rules(conn, project_id)
    set_change_reason(conn, "revalidate")
    rows = conn.execute(
        sql.SQL(_REVALIDATE).format(file_lines=sql.SQL(_FILE_LINES), hash=sql.SQL(_SOURCE_HASH)),
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
