"""`rules import|export`: the analyzer's rules in, a review report (or every field) out."""

import contextlib
import datetime as dt
import io
import os
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from migrationpilot_cli import newfiles
from migrationpilot_cli.db import locks
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.options import (
    DEFAULT_LOCK_TIMEOUT,
    LockTimeoutOption,
    OrgOption,
    ProjectOption,
    examples,
)
from migrationpilot_cli.output import (
    FormatOption,
    OutputFormat,
    counted,
    notice,
    progress,
    render,
    render_record,
)
from migrationpilot_cli.queries import projects, rules

if TYPE_CHECKING:
    from psycopg.abc import Buffer

app = typer.Typer()


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
    lock_timeout: LockTimeoutOption = DEFAULT_LOCK_TIMEOUT,
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

    records = rulefiles.checked(jsonrecords.stream(source))  # read as they are written
    with transaction(ctx.obj, requires=rules.EDIT) as conn:
        found = projects.resolve(conn, project, org, requires=rules.EDIT)
        waited = locks.lock_project(conn, found, lock_timeout)
        with progress("importing rules") as advance:
            merged = rule_import.merge(conn, found, counted(records, advance))
        summary = {**merged, "waited_seconds": round(waited, 2)}
    if summary["reopened"]:
        notice(f"{summary['reopened']} reviewed rules changed and are pending review again")
    render_record(summary, fmt=fmt)


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
    """Every rule of a project, by category, for a review meeting or another tool.

    The rules stream from the database to the output as they are read, in flat memory
    whatever their number; a file given with -o appears whole or not at all."""
    if output is not None and output.exists() and not force:
        raise BadInput(f"{output} exists; pass --force to overwrite it")
    with _destination(output, force) as stream, transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        # The counts are a pass over the project's rules (0.2 s at 1,000,000): read for the
        # report, and for what a terminal shows (the progress bar, the notice), only.
        markdown = export_format is ExportFormat.markdown
        groups = rules.export_groups(conn, found["id"]) if markdown or sys.stderr.isatty() else []
        total = sum(group["rules"] for group in groups)
        with progress("exporting rules") as advance:

            def exported(done: int, _: int | None) -> None:
                advance(done, total)

            if export_format is ExportFormat.csv:
                _write_csv(stream, rules.export_csv(conn, found["id"]), exported)
            else:
                rows = counted(rules.export(conn, found["id"]), exported)
                with contextlib.redirect_stdout(stream):
                    _write_text(found, groups, rows, export_format)
    if output is not None:
        notice(f"wrote {total} rules to {output}")


def _write_csv(
    stream: TextIO, lines: "Iterator[Buffer]", advance: Callable[[int, int | None], None]
) -> None:
    """The server's CSV (its header, then a line per rule) to ``stream``'s bytes as it comes."""
    stream.flush()
    binary = stream.buffer
    binary.write(next(lines))
    for line in counted(lines, advance):
        binary.write(line)
    binary.flush()


def _write_text(
    project: dict[str, Any],
    groups: list[dict[str, Any]],
    rows: Iterator[dict[str, Any]],
    export_format: ExportFormat,
) -> None:
    """The review report (markdown) or every field as JSON, to stdout."""
    if export_format is ExportFormat.markdown:
        from migrationpilot_cli import rulefiles

        exported_at = dt.datetime.now(dt.UTC)
        sys.stdout.writelines(rulefiles.review_report(project, groups, rows, exported_at))
        sys.stdout.flush()
    else:
        render(rows, rules.EXPORT_COLUMNS, fmt=OutputFormat(export_format.value))


@contextlib.contextmanager
def _destination(output: Path | None, force: bool) -> Iterator[TextIO]:
    """stdout, or the --output file: written under a temporary name beside it and put in
    place when the block succeeds (never over an existing file unless --force), so that the
    file is never seen half-written; removed when the block fails."""
    if output is None:
        yield sys.stdout
        return
    try:
        written, data = newfiles.temporary(output.parent, output.name)
    except OSError as error:
        raise BadInput(f"{output}: cannot write ({error.strerror})") from error
    try:
        with io.TextIOWrapper(data, encoding="utf-8", newline="") as stream:
            yield stream
        _put_in_place(written, output, force)
    finally:
        written.unlink(missing_ok=True)


def _put_in_place(written: Path, output: Path, force: bool) -> None:
    try:
        if force:
            os.replace(written, output)
        else:
            os.link(written, output)  # fails if the name exists: no file is overwritten
    except FileExistsError as error:
        raise BadInput(f"{output} exists; pass --force to overwrite it") from error
    except OSError as error:
        raise BadInput(f"{output}: cannot write ({error.strerror})") from error
