"""One module per noun: parameterized SQL and small functions taking a connection.

Query functions never print; they return dict rows (see ``db.connect``) or raise the errors
of ``migrationpilot_cli.errors``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.errors import BadInput, NotFound

if TYPE_CHECKING:
    from psycopg import sql

    from migrationpilot_cli.db.connect import Connection

    Query = str | sql.Composed


def one(conn: Connection, query: Query, params: Any, *, missing: str) -> dict[str, Any]:
    """The single row ``query`` finds, or NotFound (exit 4) with the ``missing`` message."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise NotFound(missing)
    return row


def inserted_id(conn: Connection, query: Query, params: Any) -> str:
    """Run an ``INSERT ... RETURNING id`` and give the id back as a reference string."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, "INSERT ... RETURNING always returns the row"
    return str(row["id"])


# The tables whose rows people name by id, and what a person calls one of their rows.
_REFERABLE = {"business_rules": "rule", "test_cases": "test case"}
_CANDIDATES_SHOWN = 5

# The ids a start is looked for among, in the LATERAL of resolve_refs: a table's own, or, for
# a rule's history, the live rules' and those rule_versions still holds (a deleted rule's
# versions keep its id, V0014). Each side is one index range probe.
_IDS = "SELECT id FROM {table} WHERE id BETWEEN r.low AND r.high"
_RULE_IDS_WITH_HISTORY = (
    "SELECT id FROM business_rules WHERE id BETWEEN r.low AND r.high"
    " UNION SELECT rule_id FROM rule_versions WHERE rule_id BETWEEN r.low AND r.high"
)


def resolve_refs(
    conn: Connection,
    table: str,
    refs: Sequence[str],
    *,
    skip_missing: bool = False,
    with_history: bool = False,
) -> list[UUID]:
    """The ids that ``refs`` (from ``refs.parse``) name in ``table``, in order; a start that
    names no row is an error (exit 4), or left out with ``skip_missing``. ``with_history``
    (rules only) counts deleted rules too, whose versions keep their ids.

    A full uuid is taken as it is, without a query, so a pipe of 10,000 full ids costs
    nothing here (the command reports one that does not exist, as it would any id). The
    starts of ids are looked up in one statement, one index range probe each; under row
    level security only the acting user's rows count, so a start is ambiguous only among
    rows that user can see."""
    from psycopg import sql

    noun = _REFERABLE[table]
    assert table == "business_rules" or not with_history, "only rules outlive their rows"
    starts = sorted({ref for ref in refs if len(ref) < 32})
    found: dict[str, list[UUID]] = {}
    if starts:
        from migrationpilot_cli import refs as references

        ids = _RULE_IDS_WITH_HISTORY if with_history else _IDS
        lows, highs = zip(*(references.bounds(ref) for ref in starts), strict=True)
        query = sql.SQL(
            """
            SELECT r.ref, t.id
            FROM unnest(%s::text[], %s::uuid[], %s::uuid[]) AS r (ref, low, high)
            LEFT JOIN LATERAL ({ids} ORDER BY id LIMIT %s) AS t ON true
            """
        ).format(ids=sql.SQL(ids).format(table=sql.Identifier(table)))
        rows = conn.execute(query, (starts, list(lows), list(highs), _CANDIDATES_SHOWN + 1))
        for row in rows:
            found.setdefault(row["ref"], []).extend([row["id"]] if row["id"] else [])
    if skip_missing:
        refs = [ref for ref in refs if found.get(ref, True)]
    return [_one_id(ref, found.get(ref), noun) for ref in refs]


def ref_bounds(ref: str) -> dict[str, UUID | None]:
    """Parameters ``low`` and ``high`` for ``id BETWEEN %(low)s AND %(high)s``: the ids that
    ``ref`` may start, or NULLs (matching nothing) when ``ref`` cannot be an id."""
    from migrationpilot_cli import refs

    start = refs.digits(ref)
    if start is None:
        return {"low": None, "high": None}
    low, high = refs.bounds(start)
    return {"low": low, "high": high}


def pick_named(
    rows: Sequence[dict[str, Any]],
    ref: str,
    *,
    by: str,
    noun: str,
    missing: str,
    hint: str = "use the full id",
    shown_by: str | None = None,
) -> dict[str, Any]:
    """The row ``ref`` names among ``rows`` (found by name or by the start of their id). A
    whole uuid is an id and nothing else: a row named like another row's id must not stand in
    for it. Otherwise a row whose ``by`` column is ``ref`` (ignoring case) wins, else the one
    id that starts so. Several rows of that name, or several ids with that start, are
    ambiguous (exit 2); the error shows each candidate's ``shown_by`` column (default ``by``)
    and full id."""
    from migrationpilot_cli import refs

    if refs.is_uuid(ref):
        rows = [row for row in rows if row["id"] == UUID(refs.parse(ref))]
    if not rows:
        raise NotFound(missing)
    named = [row for row in rows if str(row[by]).lower() == ref.lower()]
    chosen = named or rows
    if len(chosen) > 1:
        label = shown_by or by
        shown = ", ".join(f"{row[label]} (id {row['id']})" for row in chosen[:_CANDIDATES_SHOWN])
        raise BadInput(f"{ref!r} names more than one {noun}: {shown}; {hint}")
    return chosen[0]


def resolve_ref(conn: Connection, table: str, ref: str, *, with_history: bool = False) -> UUID:
    """The id one reference names (see :func:`resolve_refs`)."""
    return resolve_refs(conn, table, [ref], with_history=with_history)[0]


def _one_id(ref: str, candidates: list[UUID] | None, noun: str) -> UUID:
    if candidates is None:
        return UUID(ref)
    if not candidates:
        raise NotFound(f"no {noun} with an id starting {ref} (or not visible to you)")
    if len(candidates) > 1:
        shown = ", ".join(str(c) for c in candidates[:_CANDIDATES_SHOWN])
        more = " and more" if len(candidates) > _CANDIDATES_SHOWN else ""
        raise BadInput(f"{ref} is ambiguous: {shown}{more}; give more digits of the {noun}'s id")
    return candidates[0]


def copy_rows(
    conn: Connection, statement: Query, rows: Iterable[Sequence[Any]], *, types: Sequence[str] = ()
) -> None:
    """Stream ``rows`` into ``COPY ... FROM STDIN``; ``types`` names each column's type for a
    binary COPY. ``rows`` may be a generator: each row is sent as it is made."""
    from psycopg.copy import QueuedLibpqWriter

    # psycopg's queued writer hands the data to libpq from a thread of its own and waits there,
    # every 1 MB, for the server to take it: this thread never stops making rows. LibpqWriter
    # waits in this thread; with its waits spaced to 16 MB (to keep the client busy), libpq's
    # output buffer held megabytes, which libpq moves down (memmove) after every partial send
    # (10,000 files: 40 ms of the client's CPU).
    with (
        conn.cursor() as cursor,
        cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy,
    ):
        if types:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)
