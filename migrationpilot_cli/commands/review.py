"""`migrationpilot review ...`: approve, reject or send back business rules, one id or a
whole piped batch at a time."""

import sys
from collections import Counter
from typing import Annotated, Any

import typer

from migrationpilot_cli import validation
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.options import (
    CategoryFilterOption,
    FileFilterOption,
    MaxConfidenceOption,
    MinConfidenceOption,
    OrgOption,
    PendingOption,
    ProjectFilterOption,
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
    notice,
    render,
)
from migrationpilot_cli.queries import resolve_refs, reviews, rules
from migrationpilot_cli.settings import Settings

app = typer.Typer(
    help="Review extracted business rules: approve, reject, or ask for clarification."
    " Needs an acting user (--as EMAIL) with the reviewer role or above, who is recorded as the"
    " reviewer.",
    no_args_is_help=True,
)

IdsArgument = Annotated[
    list[str],
    typer.Argument(
        help="Rule ids as listed (3f2a9c1e), longer starts or full uuids, or - to read them from"
        " stdin, one per line (as `rules list -q` prints).",
        show_default=False,
    ),
]
RequiredComment = Annotated[
    str, typer.Option("--comment", help="Why: recorded on the rule, its version and the audit.")
]
ExpectVersionOption = Annotated[
    int | None,
    typer.Option(
        "--expect-version",
        min=1,
        help="With a single id: refuse if the rule is no longer at this version (someone"
        " changed it since you read it).",
        show_default=False,
    ),
]
SkipMissingOption = Annotated[
    bool,
    typer.Option(
        "--skip-missing",
        help="Report unknown or invisible ids as skipped instead of failing the whole batch.",
    ),
]


@app.command(
    epilog=examples(
        'migrationpilot --as ana@acme.test review approve 3f2a9c1e 9c41d07b --comment "as spec"',
        "migrationpilot rules list --pending --min-confidence 0.95 -q \\",
        '  | migrationpilot --as ana@acme.test review approve - --comment "bulk: high confidence"',
    )
)
@listing(reviews.COLUMNS)
def approve(
    ctx: typer.Context,
    ids: IdsArgument,
    comment: Annotated[
        str | None,
        typer.Option(
            "--comment", help="Optional note: recorded on the rule, its version and the audit."
        ),
    ] = None,
    expect_version: ExpectVersionOption = None,
    skip_missing: SkipMissingOption = False,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Approve rules, one id or a piped batch; all or nothing.

    Where four-eyes is on (`orgs set ORG --four-eyes on`), a rule you last edited or imported
    must be approved by someone else: such a batch is refused whole (exit 1). `-q` prints the
    ids of the rules this changed."""
    _review(
        ctx.obj, "approve", ids, comment, expect_version, skip_missing, fmt, quiet, fields, header
    )


@app.command(
    epilog=examples(
        'migrationpilot --as ana@acme.test review reject 3f2a9c1e --comment "wrong rounding"'
    )
)
@listing(reviews.COLUMNS)
def reject(
    ctx: typer.Context,
    ids: IdsArgument,
    comment: RequiredComment,
    expect_version: ExpectVersionOption = None,
    skip_missing: SkipMissingOption = False,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Reject rules, saying why; all or nothing.

    `-q` prints the ids of the rules this changed."""
    _review(
        ctx.obj, "reject", ids, comment, expect_version, skip_missing, fmt, quiet, fields, header
    )


@app.command(
    epilog=examples(
        'migrationpilot --as ana@acme.test review clarify 3f2a9c1e --comment "which branch?"'
    )
)
@listing(reviews.COLUMNS)
def clarify(
    ctx: typer.Context,
    ids: IdsArgument,
    comment: RequiredComment,
    expect_version: ExpectVersionOption = None,
    skip_missing: SkipMissingOption = False,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Send rules back as needs_clarification, with a question; all or nothing.

    `-q` prints the ids of the rules this changed."""
    _review(
        ctx.obj, "clarify", ids, comment, expect_version, skip_missing, fmt, quiet, fields, header
    )


@app.command(
    epilog=examples(
        'migrationpilot --as ana@acme.test review queue --project "Loans core"',
        "migrationpilot --as ana@acme.test review queue --min-confidence 0.9 --search rate",
        'migrationpilot review queue --project "Loans core" --no-tui   # print it, as rules list',
    )
)
@listing(rules.COLUMNS)
def queue(
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
    no_tui: Annotated[
        bool,
        typer.Option(
            "--no-tui", help="Print the queue as `rules list` does instead of opening the app."
        ),
    ] = False,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """The reviewers' workbench: each rule beside its legacy source, one key per decision.

    Keys: a approve, r reject, c clarify, e comment, u undo, / search, f category, ? help, q
    quit. The queue is `rules list`'s, with its filters; pending rules unless --status says
    otherwise. Each decision is its own transaction, made on the version shown (refused if
    the rule changed since), like `review approve --expect-version`. On quit, a summary line
    on stderr. When stdout is not a terminal, or with --no-tui, it prints the queue as `rules
    list` does and exits."""
    from migrationpilot_cli.commands.rules import read

    pending = pending or status is None
    wanted = read.rule_filters(
        pending, status, category, min_confidence, max_confidence, source_file, search, sort
    )
    if no_tui or not sys.stdout.isatty():
        read.list_(
            ctx,
            project=project,
            pending=pending,
            status=status,
            category=category,
            min_confidence=min_confidence,
            max_confidence=max_confidence,
            source_file=source_file,
            search=search,
            sort=sort,
            org=org,
            fmt=fmt,
            quiet=quiet,
            fields=fields,
            header=header,
        )
        return
    if not ctx.obj.acting_user:
        raise BadInput("the review queue needs an acting user: pass --as EMAIL")
    _open_queue(ctx.obj, wanted, project, org)


def _open_queue(
    settings: Settings, filters: dict[str, Any], project: str | None, org: str | None
) -> None:
    from migrationpilot_cli.errors import DatabaseUnreachable
    from migrationpilot_cli.tui.app import ReviewQueue
    from migrationpilot_cli.tui.session import open_session

    session = open_session(settings, filters, project, org)
    try:
        screen = ReviewQueue(session)
        screen.run()
    finally:
        session.conn.close()
    if screen.failure:  # one line still: what was decided before the connection went
        raise DatabaseUnreachable(f"{screen.failure}; {session.summary()}")
    print(session.summary(), file=sys.stderr)


def _review(
    settings: Settings,
    verb: str,
    arguments: list[str],
    comment: str | None,
    expect_version: int | None,
    skip_missing: bool,
    fmt: OutputFormat | None,
    quiet: bool,
    fields: str | None,
    header: bool | None,
) -> None:
    if not settings.acting_user:
        raise BadInput("reviews need an acting user: pass --as EMAIL")
    note = None if comment is None else validation.text(comment, "--comment", max_length=None)
    rule_ids = validation.ids(arguments)
    if not rule_ids:
        notice("no ids on stdin: nothing to review")
        return
    if expect_version is not None and len(rule_ids) != 1:
        raise BadInput(f"--expect-version takes a single id, not {len(rule_ids)}")
    with transaction(settings) as conn:
        # With --skip-missing, a start of an id that names no rule is skipped like an unknown id.
        found = resolve_refs(conn, "business_rules", rule_ids, skip_missing=skip_missing)
        unknown_starts = len(rule_ids) - len(found)
        resolved = list(dict.fromkeys(found))  # one rule named two ways is one rule
        rows = reviews.review(
            conn,
            resolved,
            verb=verb,
            comment=note,
            skip_missing=skip_missing,
            expect_version=expect_version,
        )
    outcomes = Counter(row["outcome"] for row in rows)
    notice(
        f"{outcomes['reviewed']} {reviews.STATUS_OF[verb]}, {outcomes['unchanged']} unchanged"
        f" (already {reviews.STATUS_OF[verb]}), {outcomes['skipped'] + unknown_starts} skipped"
        " (not found or not visible)"
    )
    # In a pipe, pass on only what this command changed.
    shown = [row for row in rows if row["outcome"] == "reviewed"] if quiet else rows
    render(
        shown,
        reviews.COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        title=f"Review: {verb}",
    )
