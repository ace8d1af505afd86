"""A digest of every row of every table, read as the owner: "the database is unchanged" as
one comparison.

Each table's rows are hashed in the order of their text form, so the digest does not depend
on physical row order (an aborted UPDATE may leave a row elsewhere on disk). Sequences are
left out on purpose: a refused INSERT may still draw an identity value, which changes no data.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

_TABLES = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


def digest(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """``{table: md5 of its rows}`` for every table of the public schema."""
    tables = [name for (name,) in conn.execute(_TABLES)]
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL(
            "SELECT {name}, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
            " FROM {table} AS t"
        ).format(name=sql.Literal(table), table=sql.Identifier(table))
        for table in tables
    )
    return dict(conn.execute(query).fetchall())
