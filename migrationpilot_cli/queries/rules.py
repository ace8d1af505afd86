"""Business rules as people read them: the review listings, one rule, its versions and the
differences between them, and the export for a report.

Writing them is elsewhere: the bulk import in ``rule_import``, edits and the revalidation
against re-imported source in ``rule_edits``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli import refs
from migrationpilot_cli.errors import NotFound
from migrationpilot_cli.queries import one

if TYPE_CHECKING:
    from psycopg import sql
    from psycopg.abc import Buffer

    from migrationpilot_cli.db.connect import Connection

# What importing or editing rules needs: the role, and the action as the database words it
# (V0009, V0015), in the organization and in the rule's project.
EDIT = ("developer", "import or edit rules")

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
# The rows `rules revalidate` lists (see rule_edits.revalidate).
REVALIDATE_COLUMNS = ("id", "name", "source_file", "source_start_line", "source_end_line", "reason")

# Each filter is off when its parameter is NULL. PostgreSQL plans these unnamed statements
# with the actual values, so the switched-off tests fold away and each common shape has an
# index in its order (V0016): a project's rules by status and confidence, an organization's
# or everyone's pending queue by confidence. The project's name is a sub-select, run for the
# rows returned only: under row-level security a join to projects would apply the
# organization filter twice in the planner's estimate, which then believes fewer rows match
# than the LIMIT asks for and sorts the organization's every rule instead of reading the
# index in order (465 ms instead of 1 ms at 200,000 rules).
_FILTERS = """
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
"""
_LIST = """
SELECT r.id, (SELECT p.name FROM projects p WHERE p.id = r.project_id) AS project, r.name,
       r.category::text AS category, r.confidence, r.review_status::text AS review_status,
       r.source_file, r.source_start_line, r.source_end_line, r.version, r.extracted_at
FROM business_rules r
{filters}{after}
ORDER BY {order}, r.id
LIMIT %(limit)s
"""
_COUNT = "SELECT count(*) AS count FROM business_rules r {filters}"

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
    after: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The rules the connection can see that pass every given filter, in ``sort`` order
    (a key of SORT_COLUMNS, ``-`` first for descending), then by id so paging is stable:
    ``after``, a row this returned, starts the page just past it (keyset paging)."""
    from psycopg import sql

    params = _filter_parameters(
        project_id,
        organization_id,
        status,
        category,
        min_confidence,
        max_confidence,
        source_file,
        search,
    ) | {"limit": limit}
    keyset, keys = _after(sort, after)
    return conn.execute(
        sql.SQL(_LIST).format(
            filters=_filters(project_id, sort), order=_order_by(sort), after=keyset
        ),
        params | keys,
    ).fetchall()


def scope(conn: Connection, project: dict[str, Any] | None, org: str | None) -> dict[str, Any]:
    """Where :func:`list_rules` looks: in ``project`` (a row of projects.resolve) when given,
    else in the organization ``org`` names (every one visible without it)."""
    from migrationpilot_cli.queries import organizations

    return {
        "project_id": project["id"] if project else None,
        "organization_id": None if project else organizations.id_of(conn, org),
    }


def count_rules(
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
) -> int:
    """How many rules :func:`list_rules` would return without a limit."""
    from psycopg import sql

    params = _filter_parameters(
        project_id,
        organization_id,
        status,
        category,
        min_confidence,
        max_confidence,
        source_file,
        search,
    )
    row = conn.execute(
        sql.SQL(_COUNT).format(filters=_filters(project_id, sort)), params
    ).fetchone()
    return int(row["count"]) if row else 0


def _filter_parameters(
    project_id: UUID | None,
    organization_id: UUID | None,
    status: str | None,
    category: str | None,
    min_confidence: Decimal | None,
    max_confidence: Decimal | None,
    source_file: str | None,
    search: str | None,
) -> dict[str, Any]:
    """The bound values of the filters that list_rules and count_rules share."""
    return {
        "project": project_id,
        "organization": organization_id,
        "status": status,
        "category": category,
        "min_confidence": min_confidence,
        "max_confidence": max_confidence,
        "file": source_file,
        "search": _pattern(search),
    }


def _pattern(search: str | None) -> str | None:
    return None if search is None else f"%{_escape_like(search)}%"


def _filters(project_id: UUID | None, sort: str) -> sql.Composable:
    from psycopg import sql

    # A project's rules in file order are its identity key's order, but that key leads with
    # organization_id (V0015): naming the project's organization lets the scan read the key
    # in order and stop at the limit, instead of sorting every rule of the project.
    file_order = project_id is not None and sort.removeprefix("-") == "file"
    scope = sql.SQL(_PROJECT_ORGANIZATION if file_order else "")
    return sql.SQL(_FILTERS).format(file_order=scope)


def _after(sort: str, row: dict[str, Any] | None) -> tuple[sql.Composable, dict[str, Any]]:
    """The keyset condition for the rows past ``row`` in ``sort`` order, and its parameters.

    The sort columns may run descending while the id always runs ascending, so a row
    comparison cannot express it; the leading column's bound is repeated on its own so the
    index scan starts at the row instead of filtering everything before it."""
    from psycopg import sql

    if row is None:
        return sql.SQL(""), {}
    descending = sort.startswith("-")
    columns = SORT_COLUMNS[sort.removeprefix("-")]
    past = sql.SQL(" < " if descending else " > ")
    keys = {f"after_{column}": row[column] for column in columns} | {"after_id": row["id"]}

    def equal(column: str) -> sql.Composable:
        return sql.Identifier("r", column) + sql.SQL(" = ") + sql.Placeholder(f"after_{column}")

    alternatives = []
    for depth, column in enumerate((*columns, "id")):
        ties = [equal(previous) for previous in columns[:depth]]
        beyond = sql.Identifier("r", column) + (sql.SQL(" > ") if column == "id" else past)
        step = beyond + sql.Placeholder(f"after_{column}")
        alternatives.append(sql.SQL("(") + sql.SQL(" AND ").join([*ties, step]) + sql.SQL(")"))
    lead = columns[0]
    bound = sql.SQL(" <= " if descending else " >= ")
    condition = (
        sql.SQL("  AND ")
        + sql.Identifier("r", lead)
        + bound
        + sql.Placeholder(f"after_{lead}")
        + sql.SQL(" AND (")
        + sql.SQL(" OR ").join(alternatives)
        + sql.SQL(")")
    )
    return condition, keys


def _order_by(sort: str) -> sql.Composable:
    from psycopg import sql

    direction = sql.SQL(" DESC" if sort.startswith("-") else "")
    columns = SORT_COLUMNS[sort.removeprefix("-")]  # an allow-list: callers checked the key
    return sql.SQL(", ").join(sql.Identifier("r", column) + direction for column in columns)


def _escape_like(text: str) -> str:
    """``text`` matched literally by LIKE (backslash is its default escape character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_GET = """
SELECT r.id, p.name AS project, r.project_id, r.name, r.description,
       r.category::text AS category, r.confidence, r.review_status::text AS review_status,
       reviewer.email AS reviewed_by, reviewer.name AS reviewed_by_name, r.reviewed_at,
       r.review_comments, r.source_file, r.source_start_line, r.source_end_line, r.inputs,
       r.outputs, r.logic, r.formula, r.source_hash, r.version, r.extracted_at, r.created_at,
       r.updated_at, r.source_code,
       f.language::text AS source_language
FROM business_rules r
JOIN projects p ON p.id = r.project_id
LEFT JOIN people reviewer ON reviewer.id = r.reviewed_by
LEFT JOIN source_files f ON f.project_id = r.project_id AND f.path = r.source_file
WHERE r.id = %(id)s
"""


def missing(rule_id: UUID) -> str:
    """The message for a rule that is not there, or not visible to the acting user."""
    return f"no rule {rule_id} (or it is not visible to you); see `migrationpilot rules list`"


def get(conn: Connection, rule_id: UUID) -> dict[str, Any]:
    """Every field of a rule, with its project's name, the reviewer's email and the language
    of its source file (``source_language``, NULL when the file is gone). A deleted rule is
    not found either, but the message says when it went and where its history is."""
    row = conn.execute(_GET, {"id": rule_id}).fetchone()
    if row is None:
        deleted_at = recorded(conn, rule_id)["deleted_at"]  # no versions either: `missing`
        if deleted_at is None:  # inserted since the read above (READ COMMITTED)
            raise NotFound(missing(rule_id))
        raise NotFound(
            f"{deletion(rule_id, deleted_at)}; see its history:"
            f" `migrationpilot rules history {refs.short(rule_id)}`"
        )
    return row


# A rule's latest version and, once it is deleted, when: its last version records the deletion
# (V0014). The versions are read for a deleted rule only; a live rule's number is its own.
_RECORDED = """
SELECT coalesce(r.version, last.version) AS latest,
       CASE WHEN r.id IS NULL THEN last.created_at END AS deleted_at
FROM (SELECT %(id)s::uuid AS id) AS wanted
LEFT JOIN business_rules r ON r.id = wanted.id
LEFT JOIN LATERAL (
    SELECT v.version, v.created_at FROM rule_versions v
    WHERE v.rule_id = wanted.id
    ORDER BY v.version DESC
    LIMIT 1
) AS last ON r.id IS NULL
WHERE r.id IS NOT NULL OR last.version IS NOT NULL
"""


def recorded(conn: Connection, rule_id: UUID) -> dict[str, Any]:
    """``latest`` (the newest version) and ``deleted_at`` (None while the rule exists) of a
    rule, live or deleted; NotFound when the connection sees neither it nor its versions."""
    return one(conn, _RECORDED, {"id": rule_id}, missing=missing(rule_id))


def deletion(rule_id: UUID, deleted_at: dt.datetime) -> str:
    """How messages tell that a rule was deleted, in UTC (a log may be read anywhere)."""
    when = deleted_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"rule {refs.short(rule_id)} was deleted on {when}"


def history(conn: Connection, rule_id: UUID) -> list[dict[str, Any]]:
    """Every version, a deleted rule's too (see :func:`recorded`, which tells whether the rule
    exists): who made it (an email, or ``operator`` without an acting user, and the name, kept
    when the account is removed), when, why, and
    the review status it had."""
    return conn.execute(
        """
        SELECT v.version, v.created_at AS changed_at,
               coalesce(u.email, 'operator') AS changed_by, u.name AS changed_by_name,
               v.change_reason,
               v.snapshot ->> 'review_status' AS review_status
        FROM rule_versions v
        LEFT JOIN people u ON u.id = v.changed_by
        WHERE v.rule_id = %s
        ORDER BY v.version
        """,
        (rule_id,),
    ).fetchall()


# Field by field over the two snapshots, in the table's column order; a version "0" is the
# empty snapshot (what version 1 was made from). Bookkeeping is left out: updated_at, and
# last_edited_by (who made a version is `rules history`'s changed_by).
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
WHERE fields.field NOT IN ('updated_at', 'last_edited_by')
  AND (pair.old -> fields.field) IS DISTINCT FROM (pair.new -> fields.field)
ORDER BY a.attnum NULLS LAST, fields.field
"""


def diff(conn: Connection, rule_id: UUID, old: int, new: int) -> list[dict[str, Any]]:
    """The fields that differ between versions ``old`` and ``new`` (``old`` 0: none)."""
    return conn.execute(_DIFF, {"id": rule_id, "from": old, "to": new}).fetchall()


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


# The rows of an export, in report order: by category, then most confident first.
_EXPORT = """
SELECT {cells}
FROM business_rules r
LEFT JOIN people reviewer ON reviewer.id = r.reviewed_by
WHERE r.project_id = %s
ORDER BY r.category, r.confidence DESC, r.id
"""
_EXPORT_VALUES = """
r.id, r.name, r.category::text AS category, r.confidence,
r.review_status::text AS review_status, reviewer.email AS reviewed_by, r.reviewed_at,
r.review_comments, r.description, r.logic, r.formula, r.inputs, r.outputs, r.source_file,
r.source_start_line, r.source_end_line, r.source_code, r.version, r.extracted_at
"""
_EXPORT_BATCH = 2000

# The same rows as the text cells of output.py's csv, so that the server writes the file
# (COPY) byte for byte as our renderer would, at the speed of psql's \copy:
# * NULL and '' are both an empty, unquoted cell there, but COPY quotes an empty string, so
#   empty text goes out as NULL;
# * a timestamp is ISO-8601 in UTC, as Python's isoformat() writes it: microseconds only
#   when there are any;
# * jsonb is compact JSON: the text form less the space after each separator (", " and
#   ": ") outside its strings. Its numbers stay as stored (1.50); our renderer read them as
#   floats (1.5), which could also round them.
_EXPORT_CELLS = """
r.id, nullif(r.name, '') AS name, r.category::text AS category, r.confidence,
r.review_status::text AS review_status, nullif(reviewer.email, '') AS reviewed_by,
{reviewed_at} AS reviewed_at, nullif(r.review_comments, '') AS review_comments,
nullif(r.description, '') AS description, nullif(r.logic, '') AS logic,
nullif(r.formula, '') AS formula, {inputs} AS inputs, {outputs} AS outputs,
nullif(r.source_file, '') AS source_file, r.source_start_line, r.source_end_line,
nullif(r.source_code, '') AS source_code, r.version, {extracted_at} AS extracted_at
"""
_ISO_UTC = """to_char({value} AT TIME ZONE 'UTC',
    CASE WHEN date_trunc('second', {value}) = {value}
         THEN 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
         ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"' END)"""
# The common array, flat (no [ or { past its first character, no ": ") and with as many
# ", " as separators, has none in its strings: dropping the space after each comma compacts
# it, for well under a microsecond. Any other goes through the exact expression, which steps
# over each string whole, for about 7 µs.
_COMPACT_JSON = r"""CASE
    WHEN {text} !~ '.[[{{]|: '
         AND octet_length({text}) - octet_length(replace({text}, ', ', ','))
             = greatest(jsonb_array_length({value}) - 1, 0)
    THEN replace({text}, ', ', ',')
    ELSE regexp_replace({text}, '("(?:[^"\\]|\\.)*")|([,:]) ', '\1\2', 'g') END"""


def export(conn: Connection, project_id: UUID) -> Iterator[dict[str, Any]]:
    """Every rule of the project for a report: by category, then most confident first.
    Streamed from a server-side cursor, a batch at a time, within the caller's transaction:
    a million rules never sit in memory."""
    with conn.cursor(name="rules_export") as cursor:
        cursor.itersize = _EXPORT_BATCH
        yield from cursor.execute(_EXPORT.format(cells=_EXPORT_VALUES), (project_id,))


def export_csv(conn: Connection, project_id: UUID) -> Iterator[Buffer]:
    """:func:`export` as CSV written by the server: the header line (EXPORT_COLUMNS), then a
    line per rule, each as UTF-8 bytes that stay valid until the next is read."""
    from psycopg import sql

    def timestamp(column: str) -> sql.Composable:
        return sql.SQL(_ISO_UTC).format(value=sql.Identifier("r", column))

    def compact(column: str) -> sql.Composable:
        value = sql.Identifier("r", column)
        return sql.SQL(_COMPACT_JSON).format(text=sql.SQL("{}::text").format(value), value=value)

    cells = sql.SQL(_EXPORT_CELLS).format(
        reviewed_at=timestamp("reviewed_at"),
        extracted_at=timestamp("extracted_at"),
        inputs=compact("inputs"),
        outputs=compact("outputs"),
    )
    select = sql.SQL(_EXPORT).format(cells=cells)
    # The bytes go out as they come: they must be UTF-8, whatever PGCLIENTENCODING says.
    conn.execute("SELECT set_config('client_encoding', 'UTF8', true)")
    copy = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(select)
    with conn.cursor().copy(copy, (project_id,)) as lines:
        yield from lines


def export_groups(conn: Connection, project_id: UUID) -> list[dict[str, Any]]:
    """The project's rules counted by category and review status, with the sum of their
    confidence: the summary of a report, before its rules stream by."""
    return conn.execute(
        "SELECT category::text AS category, review_status::text AS review_status,"
        " count(*) AS rules, sum(confidence) AS confidence"
        " FROM business_rules WHERE project_id = %s GROUP BY category, review_status",
        (project_id,),
    ).fetchall()


# One rule as a reviewer reads it, with the stored source lines around it: only the excerpt
# leaves the server, however long the file. Without the file (never imported, or removed),
# the rule's own copy of its lines stands in.
_WITH_SOURCE = """
SELECT r.id, r.name, r.description, r.category::text AS category, r.confidence,
       r.review_status::text AS review_status, r.review_comments, r.logic, r.formula,
       r.inputs, r.outputs, r.source_file, r.source_start_line, r.source_end_line, r.version,
       (SELECT count(*) FROM rule_versions v WHERE v.rule_id = r.id) AS versions,
       f.language::text AS source_language,
       CASE WHEN f.id IS NULL THEN r.source_start_line
            ELSE greatest(1, r.source_start_line - %(context)s) END AS excerpt_start,
       CASE WHEN f.id IS NULL THEN r.source_code
            ELSE array_to_string((string_to_array(f.content, E'\\n'))
                 [greatest(1, r.source_start_line - %(context)s):r.source_end_line + %(context)s],
                 E'\\n') END AS excerpt
FROM business_rules r
LEFT JOIN source_files f ON f.project_id = r.project_id AND f.path = r.source_file
WHERE r.id = %(id)s
"""


def with_source(conn: Connection, rule_id: UUID, context: int = 3) -> dict[str, Any]:
    """What a reviewer reads of a rule: its fields, how many versions it has, and its source
    lines with ``context`` lines either side (``excerpt``, first line ``excerpt_start``)."""
    return one(conn, _WITH_SOURCE, {"id": rule_id, "context": context}, missing=missing(rule_id))
