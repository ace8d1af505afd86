"""The embedded server: with nothing configured, `db migrate` just works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from migrationpilot_cli.db import embedded, migrations


@pytest.fixture
def home(tmp_path: Path) -> Any:
    """MIGRATIONPILOT_HOME of this test (set by the autouse fixture); its server is stopped."""
    home = tmp_path / "home"
    yield home
    embedded.stop(home)


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
