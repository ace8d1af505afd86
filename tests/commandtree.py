"""The app's command tree, walked the way Click sees it: for tests that must cover every
command, including the ones added later."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from migrationpilot_cli.app import app


def root() -> Any:
    return typer.main.get_command(app)


def leaves() -> list[tuple[tuple[str, ...], Any]]:
    """(path, command) for every command that runs something, in declaration order."""
    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found.append((path, command))

    walk(root(), ())
    return found
