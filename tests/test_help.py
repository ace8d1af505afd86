"""Help that teaches: every command has a one-line summary and copyable examples, and every
example is a command line this app actually parses. Walks the whole command tree, so a new
command cannot skip it."""

from __future__ import annotations

import inspect
import re
import shlex
from typing import Any

import pytest
import typer
from typer.core import TyperGroup

from tests.commandtree import leaves, root

SUMMARY_WIDTH = 90
_SEPARATORS = {"|", "||", "&&", ";"}
_REDIRECTIONS = {"<", ">", ">>"}


def example_lines(epilog: str) -> list[str]:
    """The command lines in an epilog's code block, with `\\` continuations joined."""
    block = re.search(r"```\n(.*?)\n```", epilog, re.S)
    joined = re.sub(r"\\\n\s*", " ", block[1]) if block else ""
    return [line for line in joined.splitlines() if line and not line.startswith("#")]


def invocations(line: str) -> list[list[str]]:
    """The migrationpilot invocations in a shell line (pipes, `&&`, redirections)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    found: list[list[str]] = []
    words: list[str] = []
    skip_next = False
    for token in [*lexer, ";"]:
        if skip_next:
            skip_next = False
        elif token in _REDIRECTIONS:
            skip_next = True
        elif token in _SEPARATORS:
            if words and words[0] == "migrationpilot":
                found.append(words[1:])
            words = []
        else:
            words.append(token)
    return found


def parse(arguments: list[str]) -> tuple[str, ...]:
    """Parse a command line as the app would, without running it, and return the command's
    path: unknown commands, options, bad values and missing arguments raise Click's usage
    errors."""
    command, name, context, path = root(), "migrationpilot", None, ()
    while True:
        try:
            context = command.make_context(name, list(arguments), parent=context)
        except typer.Exit as done:  # an eager option that answers by itself (`--fields help`)
            assert done.exit_code == 0
            return path
        if not isinstance(command, TyperGroup):
            return path
        rest = [*context._protected_args, *context.args]
        name, command, arguments = command.resolve_command(context, rest)
        path = (*path, name)


COMMANDS = leaves()


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_a_summary_and_examples_that_parse(
    path: tuple[str, ...], command: Any
) -> None:
    text = inspect.cleandoc(command.help or "")
    summary = text.split("\n\n")[0]
    assert summary and "\n" not in summary, f"{path}: the summary is one line"
    assert len(summary) <= SUMMARY_WIDTH, f"{path}: summary over {SUMMARY_WIDTH} characters"
    assert "Example" not in text, f"{path}: examples belong in epilog=examples(...)"
    lines = example_lines(command.epilog or "")
    assert any(line.startswith("migrationpilot ") for line in lines), f"{path}: no example"
    runs = [run for line in lines for run in invocations(line)]
    # Every example parses, and at least one runs this very command.
    assert path in [parse(run) for run in runs], f"{path}: no example of this command"


def test_the_example_parser_catches_stale_examples() -> None:
    assert invocations(
        "migrationpilot rules list -q | migrationpilot --as a@b.c review approve -"
    ) == [
        ["rules", "list", "-q"],
        ["--as", "a@b.c", "review", "approve", "-"],
    ]
    assert invocations('migrationpilot rules import - -p "Loans core" < r.jsonl && ls') == [
        ["rules", "import", "-", "-p", "Loans core"]
    ]
    for stale in (
        ["rules", "lst"],
        ["rules", "list", "--pendign"],
        ["rules", "list", "--limit", "many"],
        ["rules", "show"],
        ["rules", "list", "--fields", "nope"],
    ):
        with pytest.raises(Exception):  # noqa: B017 - Click's usage errors and our BadInput
            parse(stale)


def test_the_root_help_groups_commands_by_what_people_do(cli: Any) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    panels = re.findall(r"╭─ (.+?) ─", result.stdout)
    groups = ["Set up", "Tenancy", "Projects and source", "Rules and reviews", "Routing"]
    assert [panel for panel in panels if panel in groups] == groups
    epilog = root().epilog
    assert [parse(run) for line in example_lines(epilog) for run in invocations(line)] == [
        ("demo", "load"),
        ("rules", "list"),
        ("rules", "show"),
    ]
    assert "migrationpilot demo load" in result.stdout


def test_a_listing_command_groups_its_options(cli: Any) -> None:
    result = cli("rules", "list", "--help")
    assert result.exit_code == 0
    panels = re.findall(r"╭─ (.+?) ─", result.stdout)
    assert {"Filters", "Output"} <= set(panels)
    assert "migrationpilot rules list --pending --min-confidence 0.9" in result.stdout
