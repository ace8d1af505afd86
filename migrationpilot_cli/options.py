"""Options and help pieces that many commands share, declared once (sqlite-utils' idea, as
Typer aliases).

The output options (``--format``, ``-q``) live with the renderer in ``output``."""

from __future__ import annotations

import os
import re
from typing import Annotated

import typer

from migrationpilot_cli.vocabulary import ReviewStatus, RuleCategory


def complete_project(ctx: typer.Context, incomplete: str) -> list[str]:
    """Project names for shell completion, from a database that answers at once; nothing
    otherwise. A completion must never hang, start the embedded server or print an error
    into the user's prompt, so any failure is swallowed."""
    try:
        names = _project_names(ctx, incomplete)
    except Exception:
        return []
    if os.environ.get("_MIGRATIONPILOT_COMPLETE") == "complete_bash":
        # Bash inserts a completion verbatim (zsh and fish quote it themselves). Backslashes,
        # not quotes: Typer keeps only completions that start with the word typed so far.
        return [re.sub(r"([^\w@%+=:,./-])", r"\\\1", name) for name in names]
    return names


def _project_names(ctx: typer.Context, incomplete: str) -> list[str]:
    import psycopg
    from psycopg.rows import dict_row

    from migrationpilot_cli.db import embedded
    from migrationpilot_cli.db.connect import act_as
    from migrationpilot_cli.queries import projects
    from migrationpilot_cli.settings import build_settings

    # Completion parses the command line without running the root callback: the global
    # options typed so far are in the root context's params.
    given = ctx.find_root().params
    settings = build_settings(
        given.get("database_url"), given.get("acting_user"), profile=given.get("profile")
    )
    if settings.uses_embedded_server:
        conninfo = embedded.info(settings.home).url  # only if it is already running
        if conninfo is None:
            return []
    else:
        conninfo = settings.database_url or ""
    with (
        psycopg.connect(
            conninfo,
            row_factory=dict_row,
            connect_timeout=2,
            application_name="migrationpilot completion",
        ) as conn,
        conn.transaction(),
    ):
        conn.execute("SET LOCAL statement_timeout = 1000")
        if settings.acting_user:
            act_as(conn, settings.acting_user)
        return projects.names_starting_with(conn, incomplete)


ProjectOption = Annotated[
    str,
    typer.Option("--project", "-p", help="Project id or name.", autocompletion=complete_project),
]
ProjectArgument = Annotated[
    str, typer.Argument(help="Project id or name.", autocompletion=complete_project)
]
OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        help="Organization slug or id: where a project name is ambiguous, or for operators.",
        show_default=False,
    ),
]


def _duration(value: str) -> str:
    from migrationpilot_cli.db.locks import timeout_seconds

    timeout_seconds(value)  # bad input before any connection
    return value


# The bulk imports of a project: a second one waits for the first, this long at most.
DEFAULT_LOCK_TIMEOUT = "1min"
LockTimeoutOption = Annotated[
    str,
    typer.Option(
        "--lock-timeout",
        callback=_duration,
        help="Wait at most this long (ms, s, min, h; 0: as long as it takes) while another"
        " import writes to the project; the summary's waited_seconds says how long it waited.",
    ),
]

ProjectFilterOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        help="Project id or name. Default: every project you can see.",
        show_default=False,
        autocompletion=complete_project,
    ),
]

# The filters of the reviewers' queue: `rules list` and `review queue`.
PendingOption = Annotated[
    bool,
    typer.Option(
        "--pending",
        help="Only rules waiting for review (--status pending).",
        rich_help_panel="Filters",
    ),
]
StatusFilterOption = Annotated[
    ReviewStatus | None,
    typer.Option("--status", help="Only rules in this review state.", rich_help_panel="Filters"),
]
CategoryFilterOption = Annotated[
    RuleCategory | None,
    typer.Option("--category", help="Only rules of this category.", rich_help_panel="Filters"),
]
MinConfidenceOption = Annotated[
    float | None,
    typer.Option(
        "--min-confidence",
        help="At least this confidence (0..1).",
        show_default=False,
        rich_help_panel="Filters",
    ),
]
MaxConfidenceOption = Annotated[
    float | None,
    typer.Option(
        "--max-confidence",
        help="At most this confidence (0..1).",
        show_default=False,
        rich_help_panel="Filters",
    ),
]
FileFilterOption = Annotated[
    str | None,
    typer.Option(
        "--file",
        help="Only rules found in this source file (its exact path).",
        rich_help_panel="Filters",
    ),
]
SearchOption = Annotated[
    str | None,
    typer.Option(
        "--search",
        help="Case-insensitive text in the name, description, logic or formula.",
        show_default=False,
        rich_help_panel="Filters",
    ),
]
SortOption = Annotated[
    str,
    typer.Option(
        "--sort",
        help="confidence, name, file or extracted; a leading - sorts descending"
        " (--sort=-extracted). Ties go by id.",
    ),
]
RuleIdArgument = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="The rule's id as listed (e.g. 3f2a9c1e), a longer start of it, the full uuid,"
        " or - to read it from stdin.",
        show_default=False,
    ),
]


def examples(*lines: str) -> str:
    """A command's epilog: copyable command lines in a code block, rendered as such by
    ``--help`` (markdown mode) and in docs/cli.md. Lines starting with ``migrationpilot``
    are parsed against the app by tests/test_help.py, so an example cannot go stale.

    The block names no language: highlighting it as ``sh`` made Rich load Pygments' shell
    lexer and compile its patterns, a tenth of the time of a command's ``--help``."""
    return "**Examples**\n\n```\n" + "\n".join(lines) + "\n```"
