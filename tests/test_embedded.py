"""The embedded server: with nothing configured, `db migrate` just works."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migrationpilot_cli.db import embedded, migrations


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Any:
    """MIGRATIONPILOT_HOME of this test; its server is stopped and its data removed.

    Not under pytest's basetemp: another pytest session on the machine (CI runs two side by
    side) resets that root to mode 0700, which locks out the `embedded_postgres` user the
    server runs as when the tests run as root."""
    home = Path(tempfile.mkdtemp(prefix="migrationpilot-embedded-")) / "home"
    monkeypatch.setenv("MIGRATIONPILOT_HOME", str(home))
    yield home
    embedded.stop(home)
    shutil.rmtree(home.parent, ignore_errors=True)


def test_migrate_with_nothing_configured_starts_and_uses_the_embedded_server(
    cli: Any, home: Path
) -> None:
    migrate = cli("db", "migrate")
    assert migrate.exit_code == 0, migrate.stderr
    assert len(migrate.stdout.splitlines()) == len(
        migrations.discover(migrations.packaged_directory())
    )

    info = json.loads(cli("db", "info", "--format", "json").stdout)
    assert info["connection"] == "embedded"
    assert info["embedded_running"] is True
    assert info["embedded_data_directory"] == str(home / "postgres")
    assert info["database_url"] == info["embedded_url"]
    assert str(home / "postgres") in info["embedded_url"]  # a Unix socket in the data directory

    states = {row["state"] for row in json.loads(cli("db", "status", "--format", "json").stdout)}
    assert states == {"applied"}


def test_start_prints_the_url_and_stop_stops(cli: Any, home: Path) -> None:
    started = cli("db", "start")
    assert started.exit_code == 0
    assert started.stdout.strip().startswith("postgresql://postgres@/migrationpilot?host=")
    assert cli("db", "start").stdout == started.stdout  # already running: same server

    assert cli("db", "stop").exit_code == 0
    info = json.loads(cli("db", "info", "--format", "json").stdout)
    assert (info["embedded_running"], info["embedded_url"]) == (False, None)
    assert cli("db", "stop").exit_code == 0  # stopping a stopped server is not an error

    # Data survives a restart.
    assert cli("db", "migrate").exit_code == 0
    cli("db", "stop")
    assert cli("db", "migrate").stdout == ""


def _settings(url: str) -> dict[str, str]:
    """What the running server reports (as SHOW does) for each of our settings."""
    with psycopg.connect(url) as conn:
        query = "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name"
        return dict(conn.execute(query, (list(embedded.SETTINGS),)).fetchall())


def test_the_server_runs_tuned_for_imports_and_an_older_data_directory_is_tuned_too(
    cli: Any, home: Path
) -> None:
    url = cli("db", "start").stdout.strip()
    tuned = {"shared_buffers": "512MB", "max_wal_size": "4GB", "checkpoint_timeout": "15min"}
    assert _settings(url) == embedded.SETTINGS == tuned

    # A data directory of an earlier release, running: no settings file, no include line.
    assert cli("db", "stop").exit_code == 0
    pgdata = home / "postgres"
    (pgdata / embedded.SETTINGS_FILE).unlink()
    conf = pgdata / "postgresql.conf"
    conf.write_text(conf.read_text().replace(f"include_if_exists = '{embedded.SETTINGS_FILE}'", ""))
    embedded._start(pgdata.resolve())
    assert _settings(url)["shared_buffers"] == "128MB"

    # The next command configures it: the reloadable settings at once, the buffers at restart.
    assert cli("db", "start").exit_code == 0
    assert _settings(url) == {**embedded.SETTINGS, "shared_buffers": "128MB"}
    assert cli("db", "stop").exit_code == 0
    assert cli("db", "start").exit_code == 0
    assert _settings(url) == embedded.SETTINGS
