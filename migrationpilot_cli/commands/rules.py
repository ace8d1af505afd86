"""`migrationpilot rules ...`: import extracted business rules, triage them, read their
history, edit them, export a review report, and revalidate them against re-imported source."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from migrationpilot_cli import refs, validation
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput, NotFound
from migrationpilot_cli.options import OrgOption, ProjectFilterOption, ProjectOption, examples
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    OutputFormat,
    QuietOption,
    listing,
    notice,
    render,
    render_record,
)
from migrationpilot_cli.queries import audit, organizations, projects, resolve_ref, rules
from migrationpilot_cli.vocabulary import ReviewStatus, RuleCategory

app = typer.Typer(
    help="Business rules extracted from legacy code: import, triage, history, edit, export.",
    no_args_is_help=True,
)

RuleIdArgument = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="The rule's id as listed (e.g. 3f2a9c1e), a longer start of it, the full uuid,"
        " or - to read it from stdin.",
        show_default=False,
    ),
]
_CONFIDENCE_STEP = Decimal("0.001")  # numeric(4,3)
HISTORY_COLUMNS = ("version", "changed_at", "changed_by", "change_reason", "review_status")
DIFF_COLUMNS = ("field", "from", "to")


@app.command(
    "import",
    epilog=examples(
        'migrationpilot rules import rules.jsonl --project "Loans core"',
        'analyzer --json-lines src/ | migrationpilot rules import - -p "Loans core"',
    ),
)
def import_(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE",
            help="The analyzer's rules: a JSON array or JSON Lines file, or - for stdin.",
        ),
    ],
    project: ProjectOption,
    org: OrgOption = None,
    fmt: FormatOption = None,
) -> None:
    """Import (or re-import) the rules an analyzer extracted; validated first, all or nothing.

    New rules are added, changed ones updated (a new version, and back to pending), unchanged
    ones left alone. A rule is identified by its project, source file, line range and name.
    Fields: name, description, category, logic, confidence (0..1), source_file,
    source_start_line, source_end_line; optional formula, source_code (cut from the stored
    file when absent), inputs, outputs (arrays)."""
    from migrationpilot_cli import jsonrecords, rulefiles  # not paid by the listings
    from migrationpilot_cli.queries import rule_import

    records = rulefiles.validate(jsonrecords.load(source))
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        summary = rule_import.merge(conn, found, records)
        audit.record(
            conn,
            "rule.import",
            resource_type="project",
            resource_id=found["id"],
            organization_id=found["organization_id"],
            metadata={**summary, "source": "stdin" if source == "-" else source},
        )
    if summary["reopened"]:
        notice(f"{summary['reopened']} reviewed rules changed and are pending review again")
    render_record(summary, fmt=fmt)


def _confidence(value: float | None, option: str) -> Decimal | None:
    if value is None:
        return None
    if not 0 <= value <= 1:
        raise BadInput(f"{option} {value}: expected a number between 0 and 1")
    return Decimal(str(value))


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
    pending: Annotated[
        bool,
        typer.Option(
            "--pending",
            help="Only rules waiting for review (--status pending).",
            rich_help_panel="Filters",
        ),
    ] = False,
    status: Annotated[
        ReviewStatus | None,
        typer.Option(
            "--status", help="Only rules in this review state.", rich_help_panel="Filters"
        ),
    ] = None,
    category: Annotated[
        RuleCategory | None,
        typer.Option("--category", help="Only rules of this category.", rich_help_panel="Filters"),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            "--min-confidence",
            help="At least this confidence (0..1).",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    max_confidence: Annotated[
        float | None,
        typer.Option(
            "--max-confidence",
            help="At most this confidence (0..1).",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    source_file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help="Only rules found in this source file (its exact path).",
            rich_help_panel="Filters",
        ),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            help="Case-insensitive text in the name, description, logic or formula.",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="confidence, name, file or extracted; a leading - sorts descending"
            " (--sort=-extracted). Ties go by id.",
        ),
    ] = "-confidence",
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
    if pending and status is not None:
        raise BadInput("--pending and --status cannot be combined (--pending is --status pending)")
    if sort.removeprefix("-") not in rules.SORT_COLUMNS:
        keys = ", ".join(rules.SORT_COLUMNS)
        raise BadInput(f"--sort {sort!r}: expected one of {keys}, each optionally prefixed by -")
    low = _confidence(min_confidence, "--min-confidence")
    high = _confidence(max_confidence, "--max-confidence")
    if low is not None and high is not None and low > high:
        raise BadInput(f"--min-confidence {low} is above --max-confidence {high}")
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org) if project else None
        rows = rules.list_rules(
            conn,
            project_id=found["id"] if found else None,
            organization_id=None if found else organizations.id_of(conn, org),
            status=ReviewStatus.pending.value if pending else status.value if status else None,
            category=category.value if category else None,
            min_confidence=low,
            max_confidence=high,
            source_file=source_file,
            search=search,
            sort=sort,
            limit=limit,
        )
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
    """Every field of a rule; on a terminal, followed by its highlighted source lines."""
    ref = validation.one_id(rule_ref)
    with transaction(ctx.obj) as conn:
        rule_id = resolve_ref(conn, "business_rules", ref)
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
    from rich.console import Console
    from rich.syntax import Syntax

    # The same highlighting as `files show`.
    from migrationpilot_cli.commands.files import LEXERS

    lexer = LEXERS.get(language or "", "text")
    Console().print(Syntax(code, lexer, line_numbers=True, start_line=first_line, word_wrap=False))


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

    `-q` prints the version numbers."""
    ref = validation.one_id(rule_ref)
    with transaction(ctx.obj) as conn:
        rule_id = resolve_ref(conn, "business_rules", ref)
        versions = rules.history(conn, rule_id)
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

    The first version is compared with nothing: every field it set. `-q` prints the field
    names."""
    ref = validation.one_id(rule_ref)
    with transaction(ctx.obj) as conn:
        rule_id = resolve_ref(conn, "business_rules", ref)
        latest = rules.latest_version(conn, rule_id)
        to = latest if new is None else new
        for option, version in (("--to", to), ("--from", old)):
            if version is not None and not 1 <= version <= latest:
                raise NotFound(
                    f"rule {refs.short(rule_id)} has no version {version} ({option});"
                    f" it has versions 1-{latest}"
                )
        since = to - 1 if old is None else old  # version 0: the empty rule before version 1
        changes = rules.diff(conn, rule_id, since, to)
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


@app.command(
    epilog=examples(
        'migrationpilot rules edit 3 --formula "interest = balance * rate / 12" \\',
        '  --reason "the analyzer dropped the division"',
    )
)
def edit(
    ctx: typer.Context,
    rule_ref: RuleIdArgument,
    reason: Annotated[
        str, typer.Option("--reason", help="Why: recorded with the new version and the audit.")
    ],
    name: Annotated[str | None, typer.Option("--name", show_default=False)] = None,
    description: Annotated[
        str | None,
        typer.Option("--description", help="What the rule is about.", show_default=False),
    ] = None,
    logic: Annotated[
        str | None,
        typer.Option("--logic", help="What the rule does, in words.", show_default=False),
    ] = None,
    formula: Annotated[
        str | None, typer.Option("--formula", help="An empty value clears it.", show_default=False)
    ] = None,
    confidence: Annotated[
        float | None, typer.Option("--confidence", help="0..1.", show_default=False)
    ] = None,
    category: Annotated[RuleCategory | None, typer.Option("--category", show_default=False)] = None,
    fmt: FormatOption = None,
) -> None:
    """Correct a rule by hand: a new version, with your reason.

    Values equal to the current ones change nothing (no new version)."""
    from migrationpilot_cli.queries import rule_edits

    why = validation.text(reason, "--reason", max_length=None)
    wanted = _edits(name, description, logic, formula, confidence, category)
    ref = validation.one_id(rule_ref)
    with transaction(ctx.obj) as conn:
        rule_id = resolve_ref(conn, "business_rules", ref)
        before = rule_edits.lock(conn, rule_id)
        changes = {field: value for field, value in wanted.items() if before[field] != value}
        after = before
        if changes:
            rule_edits.set_change_reason(conn, why)
            after = rule_edits.update(conn, rule_id, changes)
        changed = {
            field: {"from": before[field], "to": after[field]}
            for field in wanted
            if before[field] != after[field]
        }
        if after["version"] != before["version"]:
            audit.record(
                conn,
                "rule.edit",
                resource_type="rule",
                resource_id=rule_id,
                organization_id=before["organization_id"],
                metadata={
                    "reason": why,
                    "version": after["version"],
                    "old": {field: change["from"] for field, change in changed.items()},
                    "new": {field: change["to"] for field, change in changed.items()},
                },
            )
    outcome = "updated" if after["version"] != before["version"] else "unchanged"
    render_record(
        {"id": rule_id, "outcome": outcome, "version": after["version"], "changes": changed},
        fmt=fmt,
    )


def _edits(
    name: str | None,
    description: str | None,
    logic: str | None,
    formula: str | None,
    confidence: float | None,
    category: RuleCategory | None,
) -> dict[str, Any]:
    """The fields the user asked to set, checked and in their stored form."""
    wanted: dict[str, Any] = {}
    for field, value, longest in (
        ("name", name, validation.NAME_LENGTH),
        ("description", description, None),
        ("logic", logic, None),
    ):
        if value is not None:  # a rule always has these: they cannot be cleared
            wanted[field] = validation.text(value, f"--{field}", max_length=longest)
    if formula is not None:
        wanted["formula"] = formula.strip() or None  # an empty value clears the formula
    if confidence is not None:
        checked = _confidence(confidence, "--confidence")
        assert checked is not None
        wanted["confidence"] = checked.quantize(_CONFIDENCE_STEP, rounding=ROUND_HALF_UP)
    if category is not None:
        wanted["category"] = category.value
    if not wanted:
        raise BadInput(
            "nothing to change: give --name, --description, --logic, --formula, --confidence"
            " or --category"
        )
    return wanted


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    markdown = "markdown"


@app.command(
    epilog=examples(
        'migrationpilot rules export --project "Loans core" --format markdown -o rules.md',
        'migrationpilot rules export -p "Loans core" --format json > rules.json',
    )
)
def export(
    ctx: typer.Context,
    project: ProjectOption,
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="markdown: a review report for business owners; csv or json: every field.",
        ),
    ] = ExportFormat.markdown,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file instead of stdout.", show_default=False
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite --output if it exists.")
    ] = False,
    org: OrgOption = None,
) -> None:
    """Every rule of a project, by category, for a review meeting or another tool."""
    if output is not None and output.exists() and not force:
        raise BadInput(f"{output} exists; pass --force to overwrite it")
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        rows = rules.export(conn, found["id"])
    with _destination(output, force) as stream, contextlib.redirect_stdout(stream):
        if export_format is ExportFormat.markdown:
            from migrationpilot_cli import rulefiles

            exported_at = dt.datetime.now(dt.UTC)
            sys.stdout.write(rulefiles.review_report(found, rows, exported_at))
            sys.stdout.flush()
        else:
            render(rows, rules.EXPORT_COLUMNS, fmt=OutputFormat(export_format.value))
    if output is not None:
        notice(f"wrote {len(rows)} rules to {output}")


@contextlib.contextmanager
def _destination(output: Path | None, force: bool) -> Any:
    """stdout, or the --output file (created exclusively unless --force)."""
    if output is None:
        yield sys.stdout
        return
    try:
        stream = output.open("w" if force else "x", encoding="utf-8", newline="")
    except FileExistsError as error:
        raise BadInput(f"{output} exists; pass --force to overwrite it") from error
    except OSError as error:
        raise BadInput(f"{output}: cannot write ({error.strerror})") from error
    with stream:
        yield stream


@app.command(
    epilog=examples(
        'migrationpilot files import ./legacy -p "Loans core" \\',
        '  && migrationpilot rules revalidate -p "Loans core"',
    )
)
@listing(rules.REVALIDATE_COLUMNS)
def revalidate(
    ctx: typer.Context,
    project: ProjectOption,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """After a source re-import, flag and list the rules whose source lines changed.

    Each rule whose lines changed or vanished goes to needs_clarification, with an automatic
    comment. Rules already flagged for the same reason are left alone."""
    from migrationpilot_cli.queries import rule_edits

    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        flagged, counts = rule_edits.revalidate(conn, found["id"])
        audit.record(
            conn,
            "rule.revalidate",
            resource_type="project",
            resource_id=found["id"],
            organization_id=found["organization_id"],
            metadata={
                **counts,
                "changed": sum(row["reason"] == "changed" for row in flagged),
                "vanished": sum(row["reason"] == "vanished" for row in flagged),
                "flagged_ids": [row["id"] for row in flagged][:1000],
            },
        )
    notice(
        f"{counts['checked']} rules checked, {counts['flagged']} flagged,"
        f" {counts['already_flagged']} already flagged"
    )
    render(
        flagged,
        rules.REVALIDATE_COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        title=f"Rules of {found['name']} whose source changed",
    )
