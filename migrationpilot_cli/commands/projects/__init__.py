"""`migrationpilot projects ...`: migration projects, their workflow, dashboard and team.

The team has a module of its own: `members` (`projects members add|list|set|remove`)."""

from typing import Annotated

import typer

from migrationpilot_cli import validation
from migrationpilot_cli.commands.projects import members
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.options import OrgOption, ProjectArgument, examples
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    render,
    render_record,
)
from migrationpilot_cli.queries import organizations, projects
from migrationpilot_cli.settings import Settings
from migrationpilot_cli.vocabulary import ProjectStatus, SourceLanguage, TargetLanguage

_FRAMEWORK_LENGTH = 100  # projects.target_framework varchar(100)


def _framework(value: str | None) -> str | None:
    """Stored as given, or refused when too long: PostgreSQL would cut trailing blanks past a
    varchar's length silently instead."""
    if value is not None and len(value) > _FRAMEWORK_LENGTH:
        raise BadInput(f"--framework is too long: {len(value)} characters, at most 100")
    return value


app = typer.Typer(
    help="Projects: what is migrated, from which language to which, and who works on it.",
    no_args_is_help=True,
)
app.add_typer(members.app, name="members")


@app.command(
    epilog=examples(
        'migrationpilot --as ana@acme.test projects create "Loans core" --source cobol \\',
        "  --target java --framework spring-boot",
        "migrationpilot projects create Payroll --source fortran --target python --org acme-pay",
    )
)
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique within the organization.")],
    source: Annotated[SourceLanguage, typer.Option("--source", help="Legacy language.")],
    target: Annotated[TargetLanguage, typer.Option("--target", help="Modern language.")],
    framework: Annotated[
        str | None, typer.Option("--framework", help="e.g. spring-boot.", show_default=False)
    ] = None,
    description: Annotated[str | None, typer.Option("--description", show_default=False)] = None,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Create a project in draft: what is migrated, from which language to which.

    As a user (`--as`) the project is created in your organization and you become its first
    member, as architect (`projects members add` brings the others in); operators name the
    organization with `--org`, and the project starts without members."""
    settings: Settings = ctx.obj
    if org is None and not settings.acting_user:
        raise BadInput("--org is required in operator mode (or act as a user with --as)")
    with transaction(settings, requires=("developer", "create projects")) as conn:
        values = {
            "name": validation.text(name, "the project name"),
            "description": description,
            "organization_id": organizations.id_of(conn, org),
            "source_language": source.value,
            "target_language": target.value,
            "target_framework": _framework(framework),
        }
        project = projects.create(conn, values)
    render_record(project, fmt=fmt, quiet=quiet)


@app.command(
    "list",
    epilog=examples(
        "migrationpilot projects list --status analyzing",
        "migrationpilot projects list --fields name,status,source_language",
    ),
)
@listing(projects.COLUMNS)
def list_(
    ctx: typer.Context,
    org: OrgOption = None,
    status: Annotated[
        ProjectStatus | None,
        typer.Option("--status", help="Only projects in this state.", rich_help_panel="Filters"),
    ] = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Projects you can see, with their languages and workflow state."""
    with transaction(ctx.obj) as conn:
        rows = projects.list_all(
            conn,
            organization_id=organizations.id_of(conn, org),
            status=status.value if status else None,
        )
    render(
        rows, projects.COLUMNS, fmt=fmt, quiet=quiet, fields=fields, header=header, title="Projects"
    )


@app.command(
    epilog=examples(
        'migrationpilot projects show "Loans core"',
        'migrationpilot projects show "Loans core" --format json',
    )
)
def show(
    ctx: typer.Context, project: ProjectArgument, org: OrgOption = None, fmt: FormatOption = None
) -> None:
    """The project's dashboard: metadata, statistics from its data, members and their roles."""
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        render_record(projects.dashboard(conn, found), fmt=fmt)


@app.command(
    "set-status", epilog=examples('migrationpilot projects set-status "Loans core" designing')
)
def set_status(
    ctx: typer.Context,
    project: ProjectArgument,
    status: Annotated[ProjectStatus, typer.Argument(help="The next state.")],
    org: OrgOption = None,
    fmt: FormatOption = None,
) -> None:
    """Move the project along its workflow; the database refuses any other move.

    draft -> analyzing -> ... -> completed; any state -> failed; failed -> the state it failed
    from, or draft."""
    needs = ("architect", "change a project's status or settings")
    with transaction(ctx.obj, requires=needs) as conn:
        before = projects.resolve(conn, project, org, requires=needs)
        projects.set_status(conn, before["id"], status.value)
        after = projects.get(conn, str(before["id"]))
    render_record(after, fmt=fmt)
