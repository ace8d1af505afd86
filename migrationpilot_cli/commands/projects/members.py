"""`migrationpilot projects members ...`: who works on a project, in which role."""

from collections import Counter
from typing import Annotated, Any

import typer

from migrationpilot_cli import validation
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.options import OrgOption, ProjectArgument, examples
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    notice,
    render,
)
from migrationpilot_cli.queries import members, projects, users
from migrationpilot_cli.vocabulary import ProjectRole

app = typer.Typer(
    help="Project members: who works on a project, and in which role. A member acts with the"
    " lower of their project role and their organization role; an organization's admins act on"
    " every project. Anyone else of the organization reads the project but changes nothing in it.",
    no_args_is_help=True,
)

# Managing a project's team: an architect of the project (or an admin), or the operator.
MANAGE = ("architect", "manage project members")

EmailsArgument = Annotated[
    list[str],
    typer.Argument(
        metavar="EMAIL...",
        help="Users of the project's organization, by email (any letter case); - reads them from"
        " stdin, one per line.",
        show_default=False,
    ),
]


def _role_option(help: str) -> Any:
    return typer.Option("--role", help=help, show_default=False)


@app.command(
    epilog=examples(
        'migrationpilot projects members add "Loans core" dev@acme.test ana@acme.test',
        'migrationpilot projects members add "Loans core" rita@acme.test --role reviewer',
        'cut -f1 team.tsv | migrationpilot projects members add "Loans core" -',
    )
)
def add(
    ctx: typer.Context,
    project: ProjectArgument,
    emails: EmailsArgument,
    role: Annotated[
        ProjectRole | None,
        _role_option(
            "Their role in the project. Default: each one's organization role (an admin's:"
            " architect)."
        ),
    ] = None,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Add users of the project's organization to its team, all or none.

    Who is a member already keeps their role (see `members set`). The tenant's
    max_users_per_project is the most a project may have: an addition beyond it is refused
    whole (exit 1). Operators, or the project's architects and the organization's admins
    (--as)."""
    wanted = validation.emails(emails)
    chosen = role.value if role else None
    rows = _apply(
        ctx, project, org, wanted, lambda conn, found, team: members.add(conn, found, team, chosen)
    )
    _report(rows, fmt, quiet, "added", "unchanged (a member already)")


@app.command(
    "list",
    epilog=examples(
        'migrationpilot projects members list "Loans core"',
        'migrationpilot projects members list "Loans core" --fields email,acts_as --format csv',
    ),
)
@listing(members.COLUMNS)
def list_(
    ctx: typer.Context,
    project: ProjectArgument,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """The project's members: project role, organization role, the role they act with.

    They act with the lower of the two roles; state says whether their account is active.
    `-q` prints the emails."""
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        rows = members.list_all(conn, found["id"])
    render(
        rows,
        members.COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        id_column="email",
        title=f"Members of {found['name']}",
    )


@app.command(
    "set",
    epilog=examples(
        'migrationpilot projects members set "Loans core" dev@acme.test --role reviewer'
    ),
)
def set_(
    ctx: typer.Context,
    project: ProjectArgument,
    emails: EmailsArgument,
    role: Annotated[ProjectRole, _role_option("Their new role in the project.")],
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Change members' role in the project.

    They still act with no more than their organization role."""
    wanted = validation.emails(emails)
    rows = _apply(
        ctx,
        project,
        org,
        wanted,
        lambda conn, found, team: members.set_role(conn, found, team, role.value),
    )
    _report(rows, fmt, quiet, "updated", "unchanged (that role already)")


@app.command(
    epilog=examples(
        'migrationpilot projects members remove "Loans core" dev@acme.test',
        "migrationpilot projects members list Payroll -q"
        " | migrationpilot projects members remove Payroll -",
    )
)
def remove(
    ctx: typer.Context,
    project: ProjectArgument,
    emails: EmailsArgument,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Take members off the project's team, all or none; prints what they were.

    Their work stays, and so do their names on it."""
    wanted = validation.emails(emails)
    rows = _apply(ctx, project, org, wanted, members.remove)
    _report(rows, fmt, quiet, "removed", "")


def _apply(
    ctx: typer.Context, project: str, org: str | None, wanted: list[str], change: Any
) -> list[dict[str, Any]]:
    """``change(conn, project, people)`` in one transaction, for the users ``wanted`` names,
    once the acting user may manage the project's team."""
    if not wanted:
        return []
    with transaction(ctx.obj, requires=MANAGE) as conn:
        found = projects.resolve(conn, project, org, requires=MANAGE)
        people = users.in_organization(
            conn, found["organization_id"], found["organization"], wanted
        )
        rows: list[dict[str, Any]] = change(conn, found, people)
    return rows


def _report(
    rows: list[dict[str, Any]], fmt: FormatOption, quiet: bool, done: str, left: str
) -> None:
    if not rows:
        notice("no emails on stdin: nothing to do")
        return
    outcomes = Counter(row["outcome"] for row in rows)
    counted = [f"{outcomes[done]} {done}"]
    if left:
        counted.append(f"{len(rows) - outcomes[done]} {left}")
    notice(", ".join(counted))
    render(rows, members.CHANGE_COLUMNS, fmt=fmt, quiet=quiet, id_column="email")
