"""`migrationpilot tests ...`: test cases of business rules: import them, list them, show one."""

from collections.abc import Iterable, Iterator
from typing import Annotated, Any
from uuid import UUID

import typer

from migrationpilot_cli import jsonrecords, refs, validation
from migrationpilot_cli.db import locks
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.options import (
    DEFAULT_LOCK_TIMEOUT,
    LockTimeoutOption,
    OrgOption,
    ProjectFilterOption,
    ProjectOption,
    examples,
)
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    render,
    render_record,
)
from migrationpilot_cli.queries import projects, resolve_ref, test_cases
from migrationpilot_cli.queries.test_cases import CaseRecord

# What an import needs, in the organization and in the project (V0009, V0015).
_IMPORT = ("developer", "import or change test cases")

app = typer.Typer(
    help="Test cases: inputs and expected results that check a rule's migrated code.",
    no_args_is_help=True,
)

_FIELDS = ("rule_id", "name", "description", "inputs", "expected")
_REQUIRED = ("rule_id", "name", "inputs", "expected")


@app.command(
    "import",
    epilog=examples(
        'migrationpilot tests import cases.jsonl --project "Loans core"',
        'generate-cases | migrationpilot tests import - -p "Loans core"',
    ),
)
def import_(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="A JSON array or JSON Lines file of test cases; - for stdin."
        ),
    ],
    project: ProjectOption,
    org: OrgOption = None,
    lock_timeout: LockTimeoutOption = DEFAULT_LOCK_TIMEOUT,
    fmt: FormatOption = None,
) -> None:
    """Import test cases for a project's rules; all or nothing.

    New cases are inserted, changed ones updated, unchanged ones left alone. A case is
    identified by its rule and name.

    Each record holds rule_id (the full uuid of a rule of the project), name, inputs (an
    object), expected (any JSON) and optionally description; any other field is an error.
    Every record is checked before anything is written; an error names the line (JSON Lines)
    or index (array)."""
    cases = validated(jsonrecords.stream(source))  # read as they are written
    with transaction(ctx.obj, requires=_IMPORT) as conn:
        found = projects.resolve(conn, project, org, requires=_IMPORT)
        waited = locks.lock_project(conn, found, lock_timeout)
        summary = {**test_cases.merge(conn, found, cases), "waited_seconds": round(waited, 2)}
    render_record(summary, fmt=fmt)


def validated(records: Iterable[jsonrecords.Record]) -> Iterator[CaseRecord]:
    """Each record checked as it streams by; the whole input's checks (empty, a case given
    twice) are made once it is staged, by ``test_cases.merge``."""
    for location, record in records:
        yield _case(location, record)


def _case(location: str, record: dict[str, Any]) -> CaseRecord:
    unknown = [field for field in record if field not in _FIELDS]
    if unknown:
        raise BadInput(
            f"{location}: unknown field {unknown[0]!r}; a test case has {', '.join(_FIELDS)}"
        )
    missing = [field for field in _REQUIRED if field not in record]
    if missing:
        raise BadInput(f"{location}: missing field {missing[0]!r}")
    rule_id, name, description = record["rule_id"], record["name"], record.get("description")
    if not (isinstance(rule_id, str) and refs.is_uuid(rule_id)):
        raise BadInput(f"{location}: rule_id must be a rule's full uuid, got {_shown(rule_id)}")
    if not isinstance(name, str) or not name.strip():
        raise BadInput(f"{location}: name must be a non-empty string, got {_shown(name)}")
    if description is not None and not isinstance(description, str):
        raise BadInput(f"{location}: description must be a string, got {_shown(description)}")
    if not isinstance(record["inputs"], dict):
        raise BadInput(f"{location}: inputs must be an object, got {_shown(record['inputs'])}")
    return CaseRecord(
        location=location,
        rule_id=UUID(rule_id),
        name=name.strip(),
        description=description,
        inputs=jsonrecords.dumps(record["inputs"]),
        expected=jsonrecords.dumps(record["expected"]),
    )


def _shown(value: Any) -> str:
    text = jsonrecords.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


@app.command(
    "list",
    epilog=examples(
        'migrationpilot tests list --project "Loans core" --rule 3f2a9c1e --format json'
    ),
)
@listing(test_cases.COLUMNS)
def list_(
    ctx: typer.Context,
    project: ProjectFilterOption = None,
    rule: Annotated[
        str | None,
        typer.Option(
            "--rule",
            help="Only this rule's test cases: its id as listed, or the full uuid.",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Test cases you can see, by rule and name."""
    with transaction(ctx.obj) as conn:
        project_id = projects.resolve(conn, project, org)["id"] if project else None
        rule_id = resolve_ref(conn, "business_rules", refs.parse(rule, "--rule")) if rule else None
        rows = test_cases.list_visible(conn, project_id=project_id, rule_id=rule_id)
    render(
        rows,
        test_cases.COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        title="Test cases",
    )


@app.command(epilog=examples("migrationpilot tests show 9c41d07b --format json"))
def show(
    ctx: typer.Context,
    case_ref: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="The test case's id as listed, a longer start of it, the full uuid, or -.",
        ),
    ],
    fmt: FormatOption = None,
) -> None:
    """One test case with its rule, description, inputs and expected result."""
    ref = validation.one_id(case_ref)
    with transaction(ctx.obj) as conn:
        case = test_cases.get(conn, resolve_ref(conn, "test_cases", ref))
    render_record(case, fmt=fmt)
