"""`migrationpilot files ...`: import a legacy source tree, list it, show a file."""

import codecs
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from migrationpilot_cli import sourcetree
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
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    notice,
    print_code,
    progress,
    render,
    render_record,
)
from migrationpilot_cli.queries import files, projects
from migrationpilot_cli.sourcetree import SKIP_REASONS

# What an import needs: the role, and the action as the database words it (V0009, V0015): in
# the organization, and in the project.
_IMPORT = ("developer", "import or change source files")

app = typer.Typer(
    help="Legacy source files: import a tree, list it, read a file.", no_args_is_help=True
)

# Pygments lexers for `files show` on a terminal.
LEXERS = {
    "cobol": "cobol",
    "cobol-copybook": "cobol",
    "fortran": "fortran",
    "vb6": "vbnet",
    "vba": "vbnet",
    "java": "java",
    "jcl": "text",
}


@app.command(
    "import",
    epilog=examples(
        "migrationpilot files import ./legacy --project \"Loans core\" --exclude 'test/**'",
        'migrationpilot files import ./legacy -p "Loans core" --prune --encoding cp037',
    ),
)
def import_(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="The legacy source tree.")],
    project: ProjectOption,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Glob to leave out (repeatable), e.g. 'test/**'."),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="Force an encoding, e.g. cp037 for EBCDIC downloads. Default: UTF-8, else cp1252.",
        ),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete stored files that are gone from the tree.")
    ] = False,
    skip_unreadable: Annotated[
        bool, typer.Option("--skip-unreadable", help="Skip files that cannot be read.")
    ] = False,
    org: OrgOption = None,
    lock_timeout: LockTimeoutOption = DEFAULT_LOCK_TIMEOUT,
    fmt: FormatOption = None,
) -> None:
    """Import (or re-import) a legacy source tree into a project; all or nothing.

    New files are added, changed ones updated, unchanged ones left alone; files gone from the
    tree are reported (deleted with --prune)."""
    if encoding is not None:
        _check_encoding(encoding)
    with transaction(ctx.obj, requires=_IMPORT) as conn:
        found = projects.resolve(conn, project, org, requires=_IMPORT)
        scan = sourcetree.Scan()
        with progress("reading files") as advance:
            tree = sourcetree.read(
                directory,
                scan,
                source_language=found["source_language"],
                excludes=exclude or (),
                encoding=encoding,
                skip_unreadable=skip_unreadable,
                progress=advance,
            )
            waited = locks.lock_project(conn, found, lock_timeout)
            outcome = files.merge(conn, found, tree, prune=prune)
        summary = {
            **{name: len(paths) for name, paths in outcome.items()},
            "pruned": prune,
            "skipped": sum(scan.skipped.values()),
            "skipped_by_reason": {reason: scan.skipped[reason] for reason in SKIP_REASONS},
            "lines": scan.lines,
            "waited_seconds": round(waited, 2),
        }
    for warning in scan.warnings:
        notice(f"warning: {warning}")
    if outcome["removed"] and not prune:
        notice(
            f"{len(outcome['removed'])} stored files are gone from the tree;"
            " rerun with --prune to delete them"
        )
    render_record(summary, fmt=fmt)


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError as error:
        raise BadInput(
            f"--encoding {encoding!r}: unknown encoding (try utf-8, cp1252, cp037)"
        ) from error


@app.command(
    "list",
    epilog=examples(
        'migrationpilot files list --project "Loans core" --language cobol',
        'migrationpilot files list -p "Loans core" --fields code_lines,path | sort -n',
    ),
)
@listing(files.COLUMNS)
def list_(
    ctx: typer.Context,
    project: ProjectOption,
    language: Annotated[
        str | None,
        typer.Option(
            "--language", help="cobol, cobol-copybook, fortran, vb6, ...", rich_help_panel="Filters"
        ),
    ] = None,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """The project's files with their line counts."""
    from migrationpilot_cli.sourcecode import SOURCE_FILE_KINDS

    if language is not None and language not in SOURCE_FILE_KINDS:
        raise BadInput(f"--language {language!r}: expected one of {', '.join(SOURCE_FILE_KINDS)}")
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        rows = files.list_for_project(conn, found["id"], language)
    render(
        rows,
        files.COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        title=f"Files of {found['name']}",
        table_columns=(
            "path",
            "language",
            "lines",
            "code_lines",
            "comment_lines",
            "blank_lines",
            "encoding",
        ),
    )


@app.command(
    epilog=examples(
        'migrationpilot files show src/LOANCALC.cbl --project "Loans core" --lines 43-50',
        'migrationpilot files show src/LOANCALC.cbl -p "Loans core" | grep -n COMPUTE',
    )
)
def show(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="The file's path in the project.")],
    project: ProjectOption,
    lines: Annotated[
        str | None, typer.Option("--lines", help="A range such as 120-180, or one line.")
    ] = None,
    org: OrgOption = None,
) -> None:
    """Print a file: numbered and highlighted on a terminal, plain text when piped."""
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        stored = files.get(conn, found["id"], path)
    text_lines = stored["content"].split("\n")
    if text_lines and text_lines[-1] == "":
        text_lines.pop()
    first, last = _line_range(lines, len(text_lines))
    excerpt = "\n".join(text_lines[first - 1 : last])
    if sys.stdout.isatty():
        print_code(excerpt, LEXERS[stored["language"]], first)
    elif excerpt:
        sys.stdout.write(excerpt + "\n")
        sys.stdout.flush()


def _line_range(option: str | None, count: int) -> tuple[int, int]:
    if option is None:
        return 1, count
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", option)
    if match is None:
        raise BadInput(f"--lines {option!r}: expected a range like 120-180, or one line number")
    first = int(match[1])
    last = int(match[2]) if match[2] else first
    if not 1 <= first <= last <= count:
        raise BadInput(f"--lines {option}: the file has lines 1-{count}")
    return first, last
