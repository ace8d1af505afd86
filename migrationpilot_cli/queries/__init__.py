"""One module per noun: parameterized SQL and small functions taking a connection.

Query functions never print; they return dict rows (see ``db.connect``) or raise the errors
of ``migrationpilot_cli.errors``."""

from __future__ import annotations

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
