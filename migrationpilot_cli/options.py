"""Options that many commands share, declared once (sqlite-utils' idea, as Typer aliases).

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
