"""Options and help pieces that many commands share, declared once (sqlite-utils' idea, as
Typer aliases).

The output options (``--format``, ``-q``) live with the renderer in ``output``."""

from __future__ import annotations

from typing import Annotated

import typer

ProjectOption = Annotated[str, typer.Option("--project", "-p", help="Project id or name.")]
ProjectArgument = Annotated[str, typer.Argument(help="Project id or name.")]
OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        help="Organization slug or id: where a project name is ambiguous, or for operators.",
        show_default=False,
    ),
]
ProjectFilterOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        help="Project id or name. Default: every project you can see.",
        show_default=False,
    ),
]


def examples(*lines: str) -> str:
    """A command's epilog: copyable command lines in a code block, rendered as such by
    ``--help`` (markdown mode) and in docs/cli.md. Lines starting with ``migrationpilot``
    are parsed against the app by tests/test_help.py, so an example cannot go stale."""
    return "**Examples**\n\n```sh\n" + "\n".join(lines) + "\n```"
