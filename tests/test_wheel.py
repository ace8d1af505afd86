"""The migrations are package data: a wheel installed outside the checkout migrates. So are
the scripts of the routing exports."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from migrationpilot_cli.db import migrations

REPOSITORY = Path(__file__).resolve().parent.parent


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, check=True
    )


def test_installed_wheel_finds_and_applies_its_migrations(
    tmp_path: Path, empty_database_url: str
) -> None:
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        tmp_path / "dist",
        REPOSITORY,
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("migrationpilot-*.whl")
    packaged = {f.name for f in migrations.discover(REPOSITORY / "sql" / "migrations")}
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    shipped = {Path(name).name for name in names if "/sql/migrations/" in name}
    assert shipped == packaged
    # The scripts the routing exports make nginx and HAProxy load (issue 24).
    scripts = {f"migrationpilot_cli/routing/scripts/migrationpilot.{ext}" for ext in ("js", "lua")}
    assert scripts <= set(names)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        wheel,
        cwd=tmp_path,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tool = venv / "bin" / "migrationpilot"
    run(tool, "--database-url", empty_database_url, "db", "migrate", cwd=elsewhere)
    status = run(
        tool,
        "--database-url",
        empty_database_url,
        "db",
        "status",
        "--format",
        "json",
        cwd=elsewhere,
    )
    rows = json.loads(status.stdout)
    assert {row["script"] for row in rows} == packaged
    assert {row["state"] for row in rows} == {"applied"}
