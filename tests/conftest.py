"""A real PostgreSQL for every test, and the CLI driven as a user drives it.

The server, in order of preference: ``MIGRATIONPILOT_TEST_DATABASE_URL``; a testcontainers
PostgreSQL when a Docker engine answers; the embedded server (stopped when the session ends).
The packaged migrations are applied once into a template database; each test gets a fresh
clone of it, which takes milliseconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
_OUR_VARIABLES = (
    "DATABASE_URL",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGSERVICE",
    "PGPASSWORD",
    "PGSERVICEFILE",
    "CLICOLOR_FORCE",
    "FORCE_COLOR",
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's configuration or touches their embedded server."""
    for name in list(os.environ):
        if name.startswith("MIGRATIONPILOT_") or name in _OUR_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("MIGRATIONPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no config file
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
def server_url() -> Iterator[str]:
    """A connection string to the server's maintenance database."""
    configured = os.environ.get("MIGRATIONPILOT_TEST_DATABASE_URL")
    if configured:
        yield configured
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:18", driver=None) as container:
            yield container.get_connection_url()
    else:
        # Not under pytest's basetemp: a second pytest run prunes old basetemps, and would
        # delete the data directory of a server still in use.
        home = Path(tempfile.mkdtemp(prefix="migrationpilot-test-"))
        url = embedded.ensure_running(home).replace(f"/{embedded.DATABASE_NAME}?", "/postgres?")
        with psycopg.connect(url, autocommit=True) as conn:
            # A throwaway server: durability buys nothing here, and every test creates and
            # drops a database.
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
            conn.execute("SELECT pg_reload_conf()")
        try:
            yield url
        finally:
            embedded.stop(home)
            shutil.rmtree(home, ignore_errors=True)


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


def probe_cli(argv: list[str], *, before: str = "", after: str = "") -> Any:
    """Run the console script's entry point on ``argv`` in a fresh interpreter, with the
    Python of ``before`` run first and of ``after`` run once the command is done (it prints
    what a test checks, e.g. ``sys.modules``, to stderr). A failing command fails the probe."""
    script = (
        f"import sys\n{before}"
        "from migrationpilot_cli.__main__ import main\n"
        f"sys.argv = ['migrationpilot', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        f"{after}"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


@pytest.fixture
def cli() -> Any:
    return run_cli


@pytest.fixture
def mp(database_url: str) -> Any:
    """The CLI bound to this test's database: ``mp("projects", "list")``."""

    def invoke(*args: str, input: str | None = None) -> Outcome:
        return run_cli("--database-url", database_url, *args, input=input)

    return invoke


def rows(conn: psycopg.Connection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from a plain SQL check (tuples, as psql would show them)."""
    return conn.execute(query, params).fetchall()


@pytest.fixture
def acme(mp: Any) -> Any:
    """Two tenants: acme (org acme-pay: ana, an architect, who may import, review, route and
    move projects; org acme-cards: carl, a developer) and globex (org globex-ops: bob, a
    developer). Created through the CLI, as an operator would."""
    for command in (
        ("tenants", "create", "Acme Corp", "--slug", "acme", "--max-projects", "3"),
        ("tenants", "create", "Globex", "--slug", "globex"),
        ("orgs", "create", "Acme Payments", "--slug", "acme-pay", "--tenant", "acme"),
        ("orgs", "create", "Acme Cards", "--slug", "acme-cards", "--tenant", "acme"),
        ("orgs", "create", "Globex Ops", "--slug", "globex-ops", "--tenant", "globex"),
        (
            "users",
            "add",
            "ana@acme.test",
            "--name",
            "Ana Lima",
            "--org",
            "acme-pay",
            "--role",
            "architect",
        ),
        ("users", "add", "carl@acme.test", "--name", "Carl", "--org", "acme-cards"),
        ("users", "add", "bob@globex.test", "--name", "Bob", "--org", "globex-ops"),
    ):
        result = mp(*command)
        assert result.exit_code == 0, (command, result.stderr)
    return mp


@contextmanager
def probe_role(url: str, attributes: str = "NOLOGIN") -> Iterator[str]:
    """A new role with a unique name (roles are cluster-wide), dropped at the end together
    with whatever it was given or made to own in the database of ``url``."""
    role = f"mp_probe_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if superuser.fetchone() != (True,):
            pytest.skip("needs a superuser to create roles and give them objects")
        conn.execute(f"CREATE ROLE {role} {attributes}")
        try:
            yield role
        finally:
            conn.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
