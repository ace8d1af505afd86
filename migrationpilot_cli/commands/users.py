"""`migrationpilot users ...`: people and their roles."""

from __future__ import annotations

from typing import Annotated

import typer

from migrationpilot_cli import validation
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
from migrationpilot_cli.queries import organizations, users
from migrationpilot_cli.vocabulary import UserRole

app = typer.Typer(help="Users: people, their organization and role.", no_args_is_help=True)


@app.command(
    epilog=examples(
        'migrationpilot users add ana@acme.test --name "Ana Lima" --org acme-pay --role reviewer',
        'migrationpilot --as admin@acme.test users add dev@acme.test --name "Dev One"',
    )
)
def add(
    ctx: typer.Context,
    email: Annotated[
        str, typer.Argument(help="Email, stored as given; unique without regard to case.")
    ],
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Organization slug or id. Default with --as: your own (admins only).",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        UserRole, typer.Option("--role", help="What they may do.")
    ] = UserRole.developer,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Add a user to an organization, with a role (default: developer).

    Operators name the organization; an organization's admins (with --as) add to their own."""
    email, name = validation.email(email), validation.text(name, "--name")
    if org is None and not ctx.obj.acting_user:
        raise BadInput("--org is required in operator mode (or act as an admin with --as)")
    with transaction(ctx.obj, requires=("admin", "manage users")) as conn:
        organization_id = organizations.own_or(conn, org)
        user = users.add(
            conn, email=email, name=name, organization_id=organization_id, role=role.value
        )
    render_record(user, fmt=fmt, quiet=quiet)


@app.command(
    "list",
    epilog=examples(
        "migrationpilot users list --org acme-pay", "migrationpilot users list --fields email,role"
    ),
)
@listing(users.COLUMNS)
def list_(
    ctx: typer.Context,
    org: Annotated[
        str | None,
        typer.Option("--org", help="Only this organization's.", rich_help_panel="Filters"),
    ] = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Users, by organization and email."""
    with transaction(ctx.obj) as conn:
        rows = users.list_all(conn, organizations.id_of(conn, org))
    render(rows, users.COLUMNS, fmt=fmt, quiet=quiet, fields=fields, header=header, title="Users")


@app.command(epilog=examples("migrationpilot users show ana@acme.test"))
def show(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Email or id.")],
    fmt: FormatOption = None,
) -> None:
    """One user: name, organization, role."""
    with transaction(ctx.obj) as conn:
        render_record(users.get(conn, user), fmt=fmt)


@app.command("set-role", epilog=examples("migrationpilot users set-role ana@acme.test architect"))
def set_role(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Email or id.")],
    role: Annotated[UserRole, typer.Argument(help="The new role.")],
    fmt: FormatOption = None,
) -> None:
    """Change a user's role (operators, or an organization's admins with --as)."""
    with transaction(ctx.obj, requires=("admin", "manage users")) as conn:
        before = users.get(conn, user)
        users.set_role(conn, before["id"], role.value)
        after = users.get(conn, str(before["id"]))
    render_record(after, fmt=fmt)
