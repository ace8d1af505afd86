"""`rules import|export`: the analyzer's rules in, a review report (or every field) out."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.options import OrgOption, ProjectOption, examples
from migrationpilot_cli.output import FormatOption, OutputFormat, notice, render, render_record
from migrationpilot_cli.queries import projects, rules

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
    with transaction(ctx.obj, requires=rules.EDIT) as conn:
        found = projects.resolve(conn, project, org, requires=rules.EDIT)
        summary = rule_import.merge(conn, found, records)
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
