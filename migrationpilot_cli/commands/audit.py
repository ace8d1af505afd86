"""`migrationpilot audit ...`: who changed what, and the retention purge."""

import datetime as dt
import re
from typing import Annotated, Any
from uuid import UUID

import typer

from migrationpilot_cli import refs, validation
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.options import examples
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    render,
)
from migrationpilot_cli.queries import audit

app = typer.Typer(
    help="The audit log: every change, who made it, and its old and new values.",
    no_args_is_help=True,
)

# Strings the re module compiles on first use: only the filters given are checked.
_AGO = r"^(\d{1,5})([mhdw])$"
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ACTION = r"^[a-z_]+\.([a-z_]+|\*)$"
_RESOURCE_TYPE = r"^[a-z_]+$"


@app.command(
    "list",
    epilog=examples(
        "migrationpilot audit list --since 7d --action rule.approve --user ana@acme.test",
        "migrationpilot audit list --action 'routing_rule.*' --format jsonl",
        "migrationpilot audit list --resource 3f2a9c1e",
    ),
)
@listing(audit.COLUMNS)
def list_(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only rows this recent: 30m, 24h, 7d, 2w, or an ISO date or time"
            " (2026-01-31, 2026-01-31T09:00+01:00; UTC when no offset is given).",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            help="One action (rule.approve) or a noun's (rule.*).",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="EMAIL",
            help="Only this actor's.",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    resource_type: Annotated[
        str | None,
        typer.Option(
            "--resource-type",
            help="rule, project, routing_rule, user, source_file, ...",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    resource: Annotated[
        str | None,
        typer.Option(
            "--resource",
            metavar="ID",
            help="Only changes of this rule, project, user, ... (its id as listed, or whole).",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, help="At most this many rows.", rich_help_panel="Filters"),
    ] = 100,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Audit rows, newest first (with --as: your organization's only).

    The database writes them for every change, whoever made it: the client column names the
    command, or sql for any other client. The old and new values, the reason, and the ids
    of a bulk change are in the metadata column of --format json, jsonl, csv and tsv."""
    filters = {
        **_since(since),
        **_action(action),
        "user": validation.email(user) if user is not None else None,
        "resource_type": _resource_type(resource_type),
        **_resource(resource),
        "limit": limit,
    }
    with transaction(ctx.obj) as conn:
        rows = audit.list_recent(conn, filters)
    render(
        rows,
        audit.COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        table_columns=audit.TABLE_COLUMNS,
        title="Audit log",
    )


def _since(value: str | None) -> dict[str, Any]:
    """``--since`` as either a moment (``since``) or a span before now (``ago``)."""
    if value is None:
        return {"since": None, "ago": None}
    ago = re.match(_AGO, value.strip())
    if ago:
        return {"since": None, "ago": dt.timedelta(**{_UNITS[ago[2]]: int(ago[1])})}
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(
            f"--since {value!r}: use 30m, 24h, 7d, 2w, or an ISO date such as 2026-01-31"
        ) from None
    return {"since": moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC), "ago": None}


def _action(value: str | None) -> dict[str, str | None]:
    """``--action`` as an exact action or, for ``noun.*``, a prefix."""
    if value is None:
        return {"action": None, "prefix": None}
    if not re.match(_ACTION, value):
        raise BadInput(f"--action {value!r}: use noun.verb (rule.approve) or noun.* (rule.*)")
    if value.endswith(".*"):
        return {"action": None, "prefix": value[:-1]}
    return {"action": value, "prefix": None}


def _resource(value: str | None) -> dict[str, UUID | None]:
    """``--resource`` as the range of ids it stands for."""
    if value is None:
        return {"resource_low": None, "resource_high": None}
    low, high = refs.bounds(refs.parse(value, "--resource"))
    return {"resource_low": low, "resource_high": high}


def _resource_type(value: str | None) -> str | None:
    if value is not None and not re.match(_RESOURCE_TYPE, value):
        raise BadInput(f"--resource-type {value!r}: use a lower-case name such as rule or project")
    return value


@app.command(epilog=examples("migrationpilot audit purge --dry-run", "migrationpilot audit purge"))
def purge(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    fmt: FormatOption = None,
) -> None:
    """Delete audit rows and deleted rules' versions past their tenant's retention (operator).

    A rule's versions go once its deletion is older than the retention; a living rule's never
    do. One transaction; reports, per tenant, how many audit rows and versions went, and
    audits the purge itself."""
    validation.require_operator(ctx.obj, "audit purge")
    with transaction(ctx.obj) as conn:
        rows = audit.purge(conn, dry_run=dry_run)
    counted = ("would_purge", "would_purge_versions") if dry_run else ("purged", "versions_purged")
    render(
        rows,
        ("tenant", "retention_days", *counted),
        fmt=fmt,
        id_column="tenant",
        title="Audit purge (dry run)" if dry_run else "Audit purge",
    )
