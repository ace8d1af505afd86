"""Shell completion: Typer's scripts for bash, zsh and fish; project names from the database
(only one that answers at once, never an error); review statuses and categories from the enums."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from migrationpilot_cli.app import app
from migrationpilot_cli.options import complete_project
from tests.conftest import CONSOLE_SCRIPT

ANA = ("--as", "ana@acme.test")


@pytest.fixture
def projects(acme: Any) -> Any:
    """Loans core (acme-pay, ana's), Cards ledger (acme-cards), Globex batch (globex-ops)."""
    for command in (
        (*ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "java"),
        ("projects", "create", "Cards ledger", "--org", "acme-cards", "--source", "vb6",
         "--target", "go"),
        ("projects", "create", "Globex batch", "--org", "globex-ops", "--source", "cobol",
         "--target", "java"),
    ):  # fmt: skip
        result = acme(*command)
        assert result.exit_code == 0, result.stderr
    return acme


def run(command: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    """The console script (or a shell) with these extra environment variables."""
    environment = {**os.environ, "PATH": f"{CONSOLE_SCRIPT.parent}:{os.environ['PATH']}"}
    return subprocess.run(
        command, env={**environment, **variables}, capture_output=True, text=True, timeout=60
    )


def bash_complete(words: str, database_url: str = "") -> list[str]:
    """Complete the last of ``words`` in a real bash, with the script the user installs."""
    script = (
        'eval "$(migrationpilot --show-completion)"\n'
        f"COMP_WORDS=({words})\n"
        "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
        "_migrationpilot_completion migrationpilot\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = run(["bash", "--norc", "-c", script], MIGRATIONPILOT_DATABASE_URL=database_url)
    assert result.stderr == ""
    return [line for line in result.stdout.splitlines() if line]


def test_show_completion_prints_the_bash_script() -> None:
    result = run(["bash", "--norc", "-c", "migrationpilot --show-completion"])
    assert result.returncode == 0, result.stderr
    assert "complete -o default -F _migrationpilot_completion migrationpilot" in result.stdout


def test_bash_completes_the_project_names_the_user_can_see(
    projects: Any, database_url: str
) -> None:
    assert bash_complete("migrationpilot files list -p ''", database_url) == [
        "Cards\\ ledger",
        "Globex\\ batch",
        "Loans\\ core",
    ]
    assert bash_complete("migrationpilot --as ana@acme.test projects show ''", database_url) == [
        "Loans\\ core"
    ]
    assert bash_complete("migrationpilot rules list --project G", database_url) == [
        "Globex\\ batch"
    ]


def test_the_completer_reads_the_global_options_typed_so_far(
    projects: Any, database_url: str
) -> None:
    def complete(*global_options: str, incomplete: str = "") -> list[str]:
        context = get_command(app).make_context(
            "migrationpilot", list(global_options), resilient_parsing=True
        )
        return complete_project(context, incomplete)

    assert complete("--database-url", database_url) == [
        "Cards ledger",
        "Globex batch",
        "Loans core",
    ]
    assert complete("--database-url", database_url, incomplete="C") == ["Cards ledger"]
    assert complete("--database-url", database_url, *ANA) == ["Loans core"]
    assert complete("--database-url", database_url, "--as", "nobody@acme.test") == []


@pytest.mark.parametrize(
    "shell, variables, expected",
    [
        ("complete_zsh", {}, "_arguments '*: :((\"Loans core\"))'"),
        ("complete_fish", {"_TYPER_COMPLETE_FISH_ACTION": "get-args"}, "Loans core"),
    ],
)
def test_zsh_and_fish_get_names_through_the_completion_protocol(
    projects: Any, database_url: str, shell: str, variables: dict[str, str], expected: str
) -> None:
    result = run(
        [str(CONSOLE_SCRIPT)],
        _MIGRATIONPILOT_COMPLETE=shell,
        _TYPER_COMPLETE_ARGS=f"migrationpilot --database-url '{database_url}' projects show L",
        **variables,
    )
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, expected, "")


def test_without_a_database_completion_offers_nothing_and_says_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = "postgresql://ana:s3cret@127.0.0.1:1/mp"
    assert bash_complete("migrationpilot projects show ''", unreachable) == []
    assert bash_complete("migrationpilot projects show ''") == []  # embedded server not running
    assert not (tmp_path / "home" / "postgres").exists()  # ... and not started by completing
    config = tmp_path / "config" / "migrationpilot" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[profiles.broken\n")
    assert bash_complete("migrationpilot projects show ''") == []


@pytest.mark.parametrize(
    "words, expected",
    [
        (
            "migrationpilot rules list --status ''",
            ["pending", "approved", "rejected", "needs_clarification"],
        ),
        ("migrationpilot rules list --category c", ["calculation", "constraint"]),
        ("migrationpilot projects list --status d", ["draft", "designing", "design_complete"]),
    ],
)
def test_statuses_and_categories_complete_from_the_vocabulary(
    words: str, expected: list[str]
) -> None:
    assert bash_complete(words) == expected
