"""`migrationpilot orgs ...`: organizations, the unit of isolation."""

from enum import StrEnum
from typing import Annotated

import typer

from migrationpilot_cli import jsonrecords, validation
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
    """One organization: its tenant, people, projects and whether four-eyes review is on."""
    with transaction(ctx.obj) as conn:
        render_record(organizations.get(conn, org), fmt=fmt)


class Switch(StrEnum):
    on = "on"
    off = "off"


@app.command(
    "set",
    epilog=examples(
        "migrationpilot orgs set acme-pay --four-eyes on",
        'migrationpilot orgs set acme-pay --name "Acme Payments EU" --slug acme-pay-eu',
        """migrationpilot orgs set acme-pay --settings '{"timezone": "Europe/Lisbon"}'""",
    ),
)
def set_(
    ctx: typer.Context,
    org: Annotated[str, typer.Argument(help="Slug or id.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Display name.", show_default=False)
    ] = None,
    slug: Annotated[
        str | None,
        typer.Option(
            "--slug",
            help="A new unique handle (scripts naming the old one break).",
            show_default=False,
        ),
    ] = None,
    settings: Annotated[
        str | None,
        typer.Option(
            "--settings",
            metavar="JSON",
            help="A JSON object merged into the settings: each key given replaces the stored"
            " one, a key set to null is removed, other keys stay.",
            show_default=False,
        ),
    ] = None,
    four_eyes: Annotated[
        Switch | None,
        typer.Option(
            "--four-eyes",
            help="on: whoever last changed a rule's content cannot approve it; another reviewer"
            " must. Enforced by the database for every client.",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Change an organization's name, slug, settings or review policy (operators only).

    With four-eyes on, an approval by the person who last edited or imported a rule is refused
    (`review approve` exits 1), whatever client they use; they may still reject it or ask for
    clarification. The database records who last changed each rule whether four-eyes is on or
    not, so the rules changed before you turn it on count too. (`--four-eyes on` is the setting
    four_eyes: true; given with --settings, it wins.)"""
    validation.require_operator(ctx.obj, "orgs set")
    patch = None if settings is None else jsonrecords.one_object(settings, "--settings")
    if four_eyes is not None:
        patch = {**(patch or {}), "four_eyes": four_eyes is Switch.on}
    new_name = None if name is None else validation.text(name, "--name")
    new_slug = None if slug is None else validation.slug(slug)
    if new_name is None and new_slug is None and patch is None:
        raise BadInput("nothing to change: give --name, --slug, --settings or --four-eyes on|off")
    with transaction(ctx.obj) as conn:
        before = organizations.get(conn, org, lock=True)
        organizations.update(conn, before["id"], name=new_name, slug=new_slug, settings=patch)
        after = organizations.get(conn, str(before["id"]))
    render_record(after, fmt=fmt)
