"""The README's tour and recipes, run as a user runs them: every block marked ```` ```sh tested
```` goes through bash (-e, pipefail) against a fresh database, in order."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from tests.conftest import rows

README = Path(__file__).resolve().parent.parent / "README.md"


def _tested_blocks() -> list[str]:
    return re.findall(r"^```sh tested\n(.*?)^```", README.read_text(), re.S | re.M)


def test_the_readme_has_a_tour_and_recipes() -> None:
    tour, recipes = _tested_blocks()
    for command in ("demo load", "rules list", "rules show", "review approve -", "routing resolve"):
        assert command in tour
    assert recipes.count("\n# ") >= 8  # each recipe says what it is for


def test_the_tour_and_the_recipes_work(
    database_url: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MIGRATIONPILOT_DATABASE_URL": database_url,
    }
    for block in _tested_blocks():
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
        )
        assert (result.returncode, result.stderr) == (0, ""), block
        assert result.stdout
    # What the pipelines did, in the database and on disk.
    assert rows(
        conn,
        "SELECT count(*) FROM business_rules"
        " WHERE review_status = 'pending' AND (confidence >= 0.9 OR confidence <= 0.6)",
    ) == [(0,)]
    assert rows(
        conn, "SELECT count(*) FROM business_rules WHERE review_comments = 'bulk: high confidence'"
    ) != [(0,)]
    exported = json.loads((tmp_path / "calculation-rules.json").read_text())
    assert exported and {rule["category"] for rule in exported} == {"calculation"}
    queue = list(csv.reader((tmp_path / "queue.csv").open()))
    assert queue[0] == ["id", "name", "confidence"] and len(queue) > 1
