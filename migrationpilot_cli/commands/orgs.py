"""`migrationpilot orgs ...`: organizations, the unit of isolation."""

from __future__ import annotations

from typing import Annotated

import typer

from migrationpilot_cli import validation
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.options import examples
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    render,
    render_record,
)
from migrationpilot_cli.queries import organizations, tenants

app = typer.Typer(help="Organizations: each sees only its own data.", no_args_is_help=True)


@app.command(
    epilog=examples('migrationpilot orgs create "Acme Payments" --slug acme-pay --tenant acme')
)
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Acme Payments'.")],
    slug: Annotated[str, typer.Option("--slug", help="Short unique handle, e.g. acme-pay.")],
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant's slug or id.")],
    fmt: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Create an organization in a tenant: the unit of isolation (operators only)."""
    validation.require_operator(ctx.obj, "orgs create")
    name, slug = validation.text(name, "the organization name"), validation.slug(slug)
    with transaction(ctx.obj) as conn:
        tenant_id = tenants.get(conn, tenant)["id"]
        org = organizations.create(conn, name=name, slug=slug, tenant_id=tenant_id)
    render_record(org, fmt=fmt, quiet=quiet)


@app.command(
    "list",
    epilog=examples(
        "migrationpilot orgs list --tenant acme", "migrationpilot --as ana@acme.test orgs list"
    ),
)
@listing(organizations.COLUMNS)
def list_(
    ctx: typer.Context,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only this tenant's.", rich_help_panel="Filters")
    ] = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Organizations (with --as: only your own)."""
    with transaction(ctx.obj) as conn:
        tenant_id = tenants.get(conn, tenant)["id"] if tenant else None
        rows = organizations.list_all(conn, tenant_id)
    render(
        rows,
        organizations.COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        title="Organizations",
    )


@app.command(epilog=examples("migrationpilot orgs show acme-pay"))
def show(
    ctx: typer.Context,
    org: Annotated[str, typer.Argument(help="Slug or id.")],
    fmt: FormatOption = None,
) -> None:
    """One organization and its tenant."""
    with transaction(ctx.obj) as conn:
        render_record(organizations.get(conn, org), fmt=fmt)
