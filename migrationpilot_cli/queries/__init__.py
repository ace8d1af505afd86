"""One module per noun: parameterized SQL and small functions taking a connection.

Query functions never print; they return dict rows (see ``db.connect``) or raise the errors
of ``migrationpilot_cli.errors``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from migrationpilot_cli.errors import NotFound

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


# psycopg (3.3.9 on) waits, after every 1 MB handed to libpq, until all of it has reached the
# server, and the client does nothing while the server catches up: 0.15 s lost in a 60 MB
# files import, a third of its COPY. Waiting every 16 MB keeps the two working side by side
# and still bounds what libpq holds when the server is the slower one.
_COPY_FLUSH_BYTES = 16 * 1024 * 1024


def copy_rows(
    conn: Connection, statement: Query, rows: Iterable[Sequence[Any]], *, types: Sequence[str] = ()
) -> None:
    """Stream ``rows`` into ``COPY ... FROM STDIN``; ``types`` names each column's type for a
    binary COPY. ``rows`` may be a generator: each row is sent as it is made."""
    from psycopg.copy import LibpqWriter

    with conn.cursor() as cursor:
        writer = LibpqWriter(cursor, flush_threshold=_COPY_FLUSH_BYTES)
        with cursor.copy(statement, writer=writer) as copy:
            if types:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)
