"""`migrationpilot tenants ...`: subscriptions and limits (operator mode)."""

from typing import Annotated, Any

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
from migrationpilot_cli.queries import tenants
from migrationpilot_cli.vocabulary import Subscription

app = typer.Typer(
    help="Tenants: subscription and limits for a group of organizations.", no_args_is_help=True
)


def _limit(flag: str, help: str) -> Any:
    return typer.Option(flag, min=0, help=help, show_default=False, rich_help_panel="Limits")


SubscriptionOption = Annotated[
    Subscription | None, typer.Option("--subscription", help="Plan.", show_default=False)
]
MaxProjects = Annotated[int | None, _limit("--max-projects", "Projects across the tenant.")]
MaxUsers = Annotated[
    int | None,
    _limit(
        "--max-users-per-project",
        "Members a project may have (`projects members`); lowering it keeps the members a"
        " project has and refuses new ones.",
    ),
]
MaxLines = Annotated[
    int | None, _limit("--max-lines-of-code", "Lines of legacy source stored, in total.")
]
Retention = Annotated[
    int | None, _limit("--retention-days", "Days audit rows are kept (at least 1).")
]


def _limits(**given: int | None) -> dict[str, Any]:
    if given.get("data_retention_days") == 0:
        raise BadInput("--retention-days must be at least 1")
    return {name: value for name, value in given.items() if value is not None}


@app.command(
    epilog=examples(
        'migrationpilot tenants create "Acme Corp" --slug acme --max-projects 20',
        "migrationpilot tenants create Globex --slug globex --subscription enterprise",
    )
)
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Acme Corp'.")],
    slug: Annotated[str, typer.Option("--slug", help="Short unique handle, e.g. acme.")],
    subscription: SubscriptionOption = None,
    max_projects: MaxProjects = None,
    max_users_per_project: MaxUsers = None,
    max_lines_of_code: MaxLines = None,
    retention_days: Retention = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Create a tenant: a customer, with its subscription and limits (operators only)."""
    validation.require_operator(ctx.obj, "tenants create")
    values = {
        "name": validation.text(name, "the tenant name"),
        "slug": validation.slug(slug),
        "subscription": subscription.value if subscription else None,
        **_limits(
            max_projects=max_projects,
            max_users_per_project=max_users_per_project,
            max_lines_of_code=max_lines_of_code,
            data_retention_days=retention_days,
        ),
    }
    with transaction(ctx.obj) as conn:
        tenant = tenants.create(conn, values)
    render_record(tenant, fmt=fmt, quiet=quiet)


@app.command(
    "list",
    epilog=examples(
        "migrationpilot tenants list",
        "migrationpilot tenants list --fields slug,subscription,max_projects",
    ),
)
@listing(tenants.COLUMNS)
def list_(
    ctx: typer.Context,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Every tenant with its plan, limits and number of organizations."""
    with transaction(ctx.obj) as conn:
        rows = tenants.list_all(conn)
    render(
        rows, tenants.COLUMNS, fmt=fmt, quiet=quiet, fields=fields, header=header, title="Tenants"
    )


@app.command(epilog=examples("migrationpilot tenants show acme --format json"))
def show(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Slug or id.")],
    fmt: FormatOption = None,
) -> None:
    """One tenant: its plan, limits and organizations."""
    with transaction(ctx.obj) as conn:
        render_record(tenants.get(conn, tenant), fmt=fmt)


@app.command(
    "set",
    epilog=examples(
        "migrationpilot tenants set acme --max-lines-of-code 5000000",
        "migrationpilot tenants set acme --subscription pro --max-users-per-project 25",
    ),
)
def set_(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Slug or id.")],
    name: Annotated[str | None, typer.Option("--name", show_default=False)] = None,
    subscription: SubscriptionOption = None,
    max_projects: MaxProjects = None,
    max_users_per_project: MaxUsers = None,
    max_lines_of_code: MaxLines = None,
    retention_days: Retention = None,
    fmt: FormatOption = None,
) -> None:
    """Change a tenant's plan or limits.

    Lowering a limit below current use is allowed: it only stops further growth."""
    validation.require_operator(ctx.obj, "tenants set")
    changes = {
        **({"name": validation.text(name, "--name")} if name is not None else {}),
        **({"subscription": subscription.value} if subscription else {}),
        **_limits(
            max_projects=max_projects,
            max_users_per_project=max_users_per_project,
            max_lines_of_code=max_lines_of_code,
            data_retention_days=retention_days,
        ),
    }
    if not changes:
        raise BadInput("nothing to change: give at least one option (see --help)")
    with transaction(ctx.obj) as conn:
        before = tenants.get(conn, tenant, lock=True)
        tenants.update(conn, before["id"], changes)
        after = tenants.get(conn, str(before["id"]))
    render_record(after, fmt=fmt)
