"""`migrationpilot rules ...`: import extracted business rules, triage them, read their
history, edit them, export a review report, and revalidate them against re-imported source.

One module per kind of work: `read` (list, show, history, diff), `transfer` (import,
export) and `edits` (edit, revalidate)."""

import typer

from migrationpilot_cli.commands.rules import edits, read, transfer

# The order of `rules --help`: a rule's life, from import to revalidation.
ORDER = ("import", "list", "show", "history", "diff", "edit", "export", "revalidate")

app = typer.Typer(
    help="Business rules extracted from legacy code: import, triage, history, edit, export.",
    no_args_is_help=True,
)
_commands = {
    info.name or typer.main.get_command_name(info.callback.__name__): info
    for module in (read, transfer, edits)
    for info in module.app.registered_commands
    if info.callback is not None
}
app.registered_commands = [_commands[name] for name in ORDER]
