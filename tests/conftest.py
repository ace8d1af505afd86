"""A real PostgreSQL for every test, and the CLI driven as a user drives it.

The server, in order of preference: ``MIGRATIONPILOT_TEST_DATABASE_URL``; a testcontainers
PostgreSQL when a Docker engine answers; the embedded server (stopped when the session ends).
The packaged migrations are applied once into a template database; each test gets a fresh
clone of it, which takes milliseconds.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from migrationpilot_cli.app import app
from migrationpilot_cli.db import embedded, migrations

CONSOLE_SCRIPT = Path(sys.executable).parent / "migrationpilot"
_OUR_VARIABLES = ("DATABASE_URL", "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER",
                  "PGSERVICE", "PGPASSWORD")  # fmt: skip


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's configuration or touches their embedded server."""
    for name in list(os.environ):
        if name.startswith("MIGRATIONPILOT_") or name in _OUR_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("MIGRATIONPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")


def _docker_answers() -> bool:
    if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to the server's maintenance database."""
    configured = os.environ.get("MIGRATIONPILOT_TEST_DATABASE_URL")
    if configured:
        yield configured
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:18", driver=None) as container:
            yield container.get_connection_url()
    else:
        home = tmp_path_factory.mktemp("embedded")
        url = embedded.ensure_running(home)
        try:
            yield url.replace(f"/{embedded.DATABASE_NAME}?", "/postgres?")
        finally:
            embedded.stop(home)


def with_database(url: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=name)


@dataclass
class Server:
    url: str

    def create_database(self, template: str | None = None) -> str:
        name = f"mp_test_{uuid.uuid4().hex[:12]}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(query)
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def server(server_url: str) -> Server:
    return Server(server_url)


@pytest.fixture(scope="session")
def template_database(server: Server) -> Iterator[str]:
    name = server.create_database()
    files = migrations.discover(migrations.packaged_directory())
    with psycopg.connect(with_database(server.url, name), autocommit=True) as conn:
        migrations.migrate(conn, files, target=None, lock_timeout="5s", on_applied=lambda *_: None)
    yield name
    server.drop_database(name)


@pytest.fixture
def database_url(server: Server, template_database: str) -> Iterator[str]:
    """A fresh, fully migrated database for this test alone."""
    name = server.create_database(template=template_database)
    yield with_database(server.url, name)
    server.drop_database(name)


@pytest.fixture
def empty_database_url(server: Server) -> Iterator[str]:
    name = server.create_database()
    yield with_database(server.url, name)
    server.drop_database(name)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """The owner's connection to the test's database (operator mode), autocommit."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str, input: str | None = None) -> Outcome:
    """Invoke the CLI in-process, as a user would type it (stdout is not a terminal)."""
    result = CliRunner().invoke(app, list(args), input=input)
    return Outcome(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli() -> Any:
    return run_cli
