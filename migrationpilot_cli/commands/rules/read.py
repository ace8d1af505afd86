"""`rules list|show|history|diff`: the reviewers' queue and what a rule was and is."""

import sys
from typing import Annotated, Any
from uuid import UUID

import typer

from migrationpilot_cli import refs, validation
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput, NotFound
from migrationpilot_cli.options import (
    CategoryFilterOption,
    FileFilterOption,
    MaxConfidenceOption,
    MinConfidenceOption,
    OrgOption,
    PendingOption,
    ProjectFilterOption,
    RuleIdArgument,
    SearchOption,
    SortOption,
    StatusFilterOption,
    examples,
)
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    OutputFormat,
    QuietOption,
    listing,
    print_code,
    render,
    render_record,
    warning,
)
from migrationpilot_cli.queries import projects, resolve_ref, rules
from migrationpilot_cli.vocabulary import ReviewStatus, RuleCategory

app = typer.Typer()

HISTORY_COLUMNS = (
    "version",
    "changed_at",
    "changed_by",
    "changed_by_name",
    "change_reason",
    "review_status",
)
DIFF_COLUMNS = ("field", "from", "to")


@app.command(
    "list",
    epilog=examples(
        'migrationpilot rules list --pending --min-confidence 0.9 --project "Loans core"',
        "migrationpilot rules list --category calculation --search rate --fields id,name",
        "migrationpilot rules list --sort=-extracted --limit 10 --format json",
    ),
)
@listing(rules.COLUMNS)
def list_(
    ctx: typer.Context,
    project: ProjectFilterOption = None,
    pending: PendingOption = False,
    status: StatusFilterOption = None,
    category: CategoryFilterOption = None,
    min_confidence: MinConfidenceOption = None,
    max_confidence: MaxConfidenceOption = None,
    source_file: FileFilterOption = None,
    search: SearchOption = None,
    sort: SortOption = "-confidence",
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="At most this many rules.", show_default=False),
    ] = None,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """The rules you can see, most confident first: the reviewers' queue.

    Without --project: in every project you can see. `-q` prints ids for `review approve -`."""
    wanted = rule_filters(
        pending, status, category, min_confidence, max_confidence, source_file, search, sort
    )
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org) if project else None
        rows = rules.list_rules(conn, **rules.scope(conn, found, org), **wanted, limit=limit)
    render(
        rows,
        rules.COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        # One project's rules fit an 80-column terminal only without a project column.
        table_columns=rules.TABLE_COLUMNS
        if len({row["project"] for row in rows}) > 1
        else [column for column in rules.TABLE_COLUMNS if column != "project"],
        title=f"Rules of {found['name']}" if found else "Rules",
    )


def rule_filters(
    pending: bool,
    status: ReviewStatus | None,
    category: RuleCategory | None,
    min_confidence: float | None,
    max_confidence: float | None,
    source_file: str | None,
    search: str | None,
    sort: str,
) -> dict[str, Any]:
    """The filters of `rules list` (and `review queue`), checked, as arguments of
    ``rules.list_rules``; BadInput before any work for a bad combination."""
    if pending and status is not None:
        raise BadInput("--pending and --status cannot be combined (--pending is --status pending)")
    if sort.removeprefix("-") not in rules.SORT_COLUMNS:
        keys = ", ".join(rules.SORT_COLUMNS)
        raise BadInput(f"--sort {sort!r}: expected one of {keys}, each optionally prefixed by -")
    low = validation.confidence(min_confidence, "--min-confidence")
    high = validation.confidence(max_confidence, "--max-confidence")
    if low is not None and high is not None and low > high:
        raise BadInput(f"--min-confidence {low} is above --max-confidence {high}")
    return {
        "status": ReviewStatus.pending.value if pending else status.value if status else None,
        "category": category.value if category else None,
        "min_confidence": low,
        "max_confidence": high,
        "source_file": source_file,
        "search": search,
        "sort": sort,
    }


@app.command(
    epilog=examples(
        "migrationpilot rules show 3f2a9c1e", "migrationpilot rules show 3f2a9c1e --format json"
    )
)
def show(
    ctx: typer.Context,
    rule_ref: RuleIdArgument,
    source: Annotated[
        bool,
        typer.Option(
            "--source", help="With csv/tsv: include the source code (always in table and json)."
        ),
    ] = False,
    fmt: FormatOption = None,
) -> None:
    """Every field of a rule; on a terminal, followed by its highlighted source lines.

    A deleted rule is not found (exit 4); `rules history` still shows its versions."""
    ref = validation.one_id(rule_ref)
    with transaction(ctx.obj) as conn:
        rule_id = resolve_ref(conn, "business_rules", ref, with_history=True)
        record = rules.get(conn, rule_id)
    language = record.pop("source_language")
    chosen = fmt or (OutputFormat.table if sys.stdout.isatty() else OutputFormat.tsv)
    code = record["source_code"]
    if chosen is OutputFormat.table or (
        chosen in (OutputFormat.csv, OutputFormat.tsv) and not source
    ):
        del record["source_code"]
    render_record(record, fmt=chosen)
    if chosen is OutputFormat.table and code:
        _print_source(code, language, record["source_start_line"] or 1)


def _print_source(code: str, language: str | None, first_line: int) -> None:
    # The same highlighting as `files show`.
    from migrationpilot_cli.commands.files import LEXERS

    print_code(code, LEXERS.get(language or "", "text"), first_line)


@app.command(
    epilog=examples(
        "migrationpilot rules history 3f2a9c1e",
        "migrationpilot rules history 3f2a9c1e --fields version,changed_by,change_reason",
    )
)
@listing(HISTORY_COLUMNS)
def history(
    ctx: typer.Context,
    rule_ref: RuleIdArgument,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Every version of a rule: who made it, when, why, and its review status then.

    A deleted rule's too: its last version records who deleted it, and when. `-q` prints the
    version numbers."""
    ref = validation.one_id(rule_ref)
    with transaction(ctx.obj) as conn:
        rule_id = resolve_ref(conn, "business_rules", ref, with_history=True)
        state = rules.recorded(conn, rule_id)
        versions = rules.history(conn, rule_id)
    _say_if_deleted(rule_id, state)
    render(
        versions,
        HISTORY_COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        id_column="version",
        title=f"History of rule {refs.short(rule_id)}",
    )


@app.command(
    epilog=examples(
        "migrationpilot rules diff 3f2a9c1e", "migrationpilot rules diff 3f2a9c1e --from 1 --to 2"
    )
)
@listing(DIFF_COLUMNS)
def diff(
    ctx: typer.Context,
    rule_ref: RuleIdArgument,
    old: Annotated[
        int | None,
        typer.Option(
            "--from", help="The older version. Default: the one before --to.", show_default=False
        ),
    ] = None,
    new: Annotated[
        int | None,
        typer.Option("--to", help="The newer version. Default: the latest.", show_default=False),
    ] = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Field-by-field difference between two versions of a rule (updated_at left out).

    The first version is compared with nothing: every field it set. A deleted rule's versions
    too (its last one records the deletion). last_edited_by is left out: `rules history` says
    who made each version. `-q` prints the field names."""
    ref = validation.one_id(rule_ref)
    with transaction(ctx.obj) as conn:
        rule_id = resolve_ref(conn, "business_rules", ref, with_history=True)
        state = rules.recorded(conn, rule_id)
        latest = state["latest"]
        to = latest if new is None else new
        for option, version in (("--to", to), ("--from", old)):
            if version is not None and not 1 <= version <= latest:
                raise NotFound(
                    f"rule {refs.short(rule_id)} has no version {version} ({option});"
                    f" it has versions 1-{latest}"
                )
        since = to - 1 if old is None else old  # version 0: the empty rule before version 1
        changes = rules.diff(conn, rule_id, since, to)
    _say_if_deleted(rule_id, state)
    render(
        changes,
        DIFF_COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        id_column="field",
        title=f"Rule {refs.short(rule_id)}: version {since} -> {to}"
        if since
        else f"Rule {refs.short(rule_id)}: version 1",
    )


def _say_if_deleted(rule_id: UUID, state: dict[str, Any]) -> None:
    """A deleted rule's history is all there is of it: say so on stderr, where a script that
    reads the rows from stdout still sees it."""
    if state["deleted_at"] is not None:
        warning(f"{rules.deletion(rule_id, state['deleted_at'])}; showing its history")
