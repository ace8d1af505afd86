"""`--wait SECONDS` (env MIGRATIONPILOT_WAIT, a profile's `wait`): keep retrying the connection
while the database does not answer, as a container starts, then exit 3 saying how long."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from migrationpilot_cli.db import embedded
from tests.conftest import CONSOLE_SCRIPT

UNREACHABLE = "postgresql://ana:s3cret@127.0.0.1:1/mp"


def test_nothing_answers_exit_3_after_the_wait(cli: Any) -> None:
    result = cli("--wait", "1", "--database-url", UNREACHABLE, "db", "status")
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "error: cannot connect to postgresql://ana:***@127.0.0.1:1/mp after trying for 1s: "
    )
    assert "s3cret" not in result.stderr and len(result.stderr.splitlines()) == 1
    at_once = cli("--database-url", UNREACHABLE, "db", "status")
    assert at_once.exit_code == 3 and "after trying" not in at_once.stderr


def test_the_wait_comes_from_the_environment_or_the_profile(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config" / "migrationpilot" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[profiles.slow]\ndatabase_url = "{UNREACHABLE}"\nwait = 0.5\n')
    from_profile = cli("--profile", "slow", "rules", "list")
    assert from_profile.exit_code == 3
    assert "after trying for 0.5s:" in from_profile.stderr
    monkeypatch.setenv("MIGRATIONPILOT_WAIT", "0.25")
    from_environment = cli("--profile", "slow", "rules", "list")
    assert "after trying for 0.25s:" in from_environment.stderr


def test_connects_once_a_server_starts_later() -> None:
    """A real second PostgreSQL, started two seconds after the command began trying."""
    # Not under pytest's basetemp: another pytest session resets its root to mode 0700,
    # which locks out the server's system user when the tests run as root.
    home = Path(tempfile.mkdtemp(prefix="migrationpilot-late-"))
    url = embedded.ensure_running(home)  # initialise it, so that the later start is quick
    embedded.stop(home)
    command = [str(CONSOLE_SCRIPT), "--wait", "120", "--database-url", url, "db", "status"]
    process = subprocess.Popen(
        [*command, "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(2)
        assert process.poll() is None  # still trying: without --wait it exits 3 at once
        assert embedded.ensure_running(home) == url
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)
    assert process.returncode == 0, stderr
    assert {row["state"] for row in json.loads(stdout)} == {"pending"}  # a new database
