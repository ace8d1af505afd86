"""`migrationpilot users ...`: people and their roles."""

from typing import Annotated

import typer

from migrationpilot_cli import validation
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput, OperationFailed
from migrationpilot_cli.options import examples
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    notice,
    render,
    render_record,
)
from migrationpilot_cli.queries import organizations, users
from migrationpilot_cli.vocabulary import UserRole, UserState

app = typer.Typer(
    help="Users: people, their organization and role; disabled or removed when they leave.",
    no_args_is_help=True,
)

# Managing an organization's people: its admins (with --as), or the operator.
MANAGE = ("admin", "manage users")

UserArgument = Annotated[str, typer.Argument(help="Email or id.")]


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
    with transaction(ctx.obj, requires=MANAGE) as conn:
        organization_id = organizations.own_or(conn, org)
        user = users.add(
            conn, email=email, name=name, organization_id=organization_id, role=role.value
        )
    render_record(user, fmt=fmt, quiet=quiet)


@app.command(
    "list",
    epilog=examples(
        "migrationpilot users list --org acme-pay",
        "migrationpilot users list --state disabled --fields email,role",
    ),
)
@listing(users.COLUMNS)
def list_(
    ctx: typer.Context,
    org: Annotated[
        str | None,
        typer.Option("--org", help="Only this organization's.", rich_help_panel="Filters"),
    ] = None,
    state: Annotated[
        UserState | None,
        typer.Option(
            "--state",
            help="Only active or only disabled accounts.",
            rich_help_panel="Filters",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Users, by organization and email, with their state (active or disabled)."""
    with transaction(ctx.obj) as conn:
        rows = users.list_all(conn, organizations.id_of(conn, org), state.value if state else None)
    render(rows, users.COLUMNS, fmt=fmt, quiet=quiet, fields=fields, header=header, title="Users")


@app.command(epilog=examples("migrationpilot users show ana@acme.test"))
def show(ctx: typer.Context, user: UserArgument, fmt: FormatOption = None) -> None:
    """One user: name, organization, role, and since when and why disabled, if so."""
    with transaction(ctx.obj) as conn:
        render_record(users.get(conn, user), fmt=fmt)


@app.command("set-role", epilog=examples("migrationpilot users set-role ana@acme.test architect"))
def set_role(
    ctx: typer.Context,
    user: UserArgument,
    role: Annotated[UserRole, typer.Argument(help="The new role.")],
    fmt: FormatOption = None,
) -> None:
    """Change a user's role (operators, or an organization's admins with --as).

    The same as `users set EMAIL --role ROLE`."""
    _change(ctx, user, {"role": role.value}, fmt)


@app.command(
    "set",
    epilog=examples(
        'migrationpilot users set ana@acme.test --name "Ana Lima Souza"',
        "migrationpilot users set ana@acme.test --email ana.lima@acme.test --role reviewer",
    ),
)
def set_(
    ctx: typer.Context,
    user: UserArgument,
    name: Annotated[
        str | None, typer.Option("--name", help="Full name.", show_default=False)
    ] = None,
    new_email: Annotated[
        str | None,
        typer.Option(
            "--email",
            help="A new address (unique without regard to case); the history keeps the account.",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        UserRole | None, typer.Option("--role", help="A new role.", show_default=False)
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Rename a user, change their email or role (operators, or an organization's admins).

    An organization's last active admin keeps the admin role: make another user admin first."""
    changes = {
        "name": None if name is None else validation.text(name, "--name"),
        "email": None if new_email is None else validation.email(new_email),
        "role": None if role is None else role.value,
    }
    if not any(value is not None for value in changes.values()):
        raise BadInput("nothing to change: give --name, --email or --role")
    _change(ctx, user, changes, fmt)


def _change(
    ctx: typer.Context, user: str, changes: dict[str, str | None], fmt: FormatOption
) -> None:
    with transaction(ctx.obj, requires=MANAGE) as conn:
        before = users.get(conn, user, lock=True)
        users.update(conn, before["id"], changes)
        after = users.get(conn, str(before["id"]))
    render_record(after, fmt=fmt)


@app.command(
    epilog=examples(
        'migrationpilot users disable dev@acme.test --reason "left the company"',
        "migrationpilot --as lead@acme.test users disable dev@acme.test",
    )
)
def disable(
    ctx: typer.Context,
    user: UserArgument,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, kept with the account.", show_default=False)
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Lock a user out: their account, memberships and history stay, but they cannot act.

    `--as` them is refused (exit 1), and plain SQL as them, through the app role, sees and
    changes nothing; `users enable` undoes it. An organization's last active admin cannot be
    disabled."""
    why = None if reason is None else validation.text(reason, "--reason", max_length=None)
    with transaction(ctx.obj, requires=MANAGE) as conn:
        before = users.get(conn, user, lock=True)
        users.disable(conn, before["id"], why)
        after = users.get(conn, str(before["id"]))
    if before["state"] == "disabled":
        notice(f"{after['email']} was disabled already")
    render_record(after, fmt=fmt)


@app.command(epilog=examples("migrationpilot users enable dev@acme.test"))
def enable(ctx: typer.Context, user: UserArgument, fmt: FormatOption = None) -> None:
    """Let a disabled user act again, with the role and memberships they had."""
    with transaction(ctx.obj, requires=MANAGE) as conn:
        before = users.get(conn, user, lock=True)
        users.enable(conn, before["id"])
        after = users.get(conn, str(before["id"]))
    if before["state"] == "active":
        notice(f"{after['email']} is active already")
    render_record(after, fmt=fmt)


@app.command(epilog=examples("migrationpilot users remove dev@acme.test"))
def remove(
    ctx: typer.Context, user: UserArgument, fmt: FormatOption = None, quiet: QuietOption = False
) -> None:
    """Remove an account and its project memberships; prints what it was.

    Its history stays readable with the name and email it had: the rules it reviewed, the
    versions it wrote and its audit rows. The email is free again: a new account under it
    starts with no history and no memberships. An organization's last active admin cannot be
    removed, nor can you remove yourself."""
    with transaction(ctx.obj, requires=MANAGE) as conn:
        before = users.get(conn, user, lock=True)
        if ctx.obj.acting_user and before["email"].lower() == ctx.obj.acting_user.lower():
            raise OperationFailed("you cannot remove your own account; another admin can")
        users.remove(conn, before["id"])
    render_record(before, fmt=fmt, quiet=quiet)
