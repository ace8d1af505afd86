"""docs/cli.md is generated from the app (`make docs`); this fails when it is out of date."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPER = Path(sys.executable).parent / "typer"


def _docs_command() -> list[str]:
    """The `make docs` recipe, read from the Makefile so that the two cannot drift apart."""
    recipe = re.search(r"^docs:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has a docs target"
    line = recipe[1].replace("\\\n\t", " ").replace("$(BIN)/typer", str(TYPER)).strip()
    return shlex.split(line)


def test_the_command_reference_is_up_to_date(tmp_path: Path) -> None:
    command = _docs_command()
    output = command.index("--output") + 1
    command[output] = str(tmp_path / "cli.md")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    fresh = (tmp_path / "cli.md").read_text()
    assert fresh == (ROOT / "docs" / "cli.md").read_text(), "docs/cli.md is stale: run make docs"


def test_the_reference_covers_every_command_and_its_examples() -> None:
    from tests.commandtree import leaves

    reference = (ROOT / "docs" / "cli.md").read_text()
    for path, _ in leaves():
        assert f"## `migrationpilot {' '.join(path)}`" in reference
    assert "\x1b" not in reference  # no terminal colours
    assert "```\nmigrationpilot rules list --pending" in reference
