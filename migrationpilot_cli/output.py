"""The one renderer: every command hands its rows here and never prints rows itself.

On a terminal the default is a Rich table; when stdout is not a terminal it is tab-separated
values with no header, no colour, no truncation and exact ISO-8601 timestamps (the GitHub
CLI's convention), so that ``cut``, ``awk`` and ``while read`` just work. Notices and progress
go to stderr, and only when stderr is a terminal.

Listing commands also share ``--fields`` (which columns, checked while the command line is
parsed against the columns declared with ``@listing``) and ``--header/--no-header``.
Timestamps are local time in tables and UTC in every machine format.

Data never drives the terminal: in tables, records and source listings a control character
(an escape sequence that recolours or retitles, a carriage return that overwrites) is shown
as ``\x1b``, ``\r``, ... (``printable``); tabs and line breaks stay, as layout inside their
cell. The machine formats keep every value exact: json and jsonl escape control characters
as JSON does (C1 ones too, as ``\u009b``), csv quotes, tsv uses COPY's escapes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Annotated, Any, TypeVar
from uuid import UUID

import typer

from migrationpilot_cli.errors import BadInput


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    tsv = "tsv"


FormatOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        help="Output format. Default: MIGRATIONPILOT_FORMAT or the profile's, else table on a"
        " terminal, tsv (no header) when piped.",
        rich_help_panel="Output",
        show_default=False,
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print only ids, one per line (for pipes: `... -q | migrationpilot ... -`).",
        rich_help_panel="Output",
    ),
]

_COLUMNS_ATTRIBUTE = "output_columns"
_Command = TypeVar("_Command", bound=Callable[..., Any])
T = TypeVar("T")


def listing(columns: Sequence[str]) -> Callable[[_Command], _Command]:
    """Declare what a listing command's ``--fields`` may choose from, so that the option is
    checked while the command line is parsed. Put it under ``@app.command``."""

    def declare(command: _Command) -> _Command:
        setattr(command, _COLUMNS_ATTRIBUTE, tuple(columns))  # Typer copies it to its wrapper
        return command

    return declare


LIST_FIELDS = "help"
"""``--fields help``: list the command's fields instead of running it."""


def _check_fields(ctx: typer.Context, value: str | None) -> str | None:
    """Validate ``--fields`` against the command's columns before the command does any work
    (a typo must not surface after a review was committed); ``help`` lists them."""
    if value is None:
        return None
    available: Sequence[str] = getattr(ctx.command.callback, _COLUMNS_ATTRIBUTE)
    if value.strip() == LIST_FIELDS:
        _write_lines(available)
        raise typer.Exit()
    wanted = split_fields(value)
    unknown = [field for field in wanted if field not in available]
    if unknown or not wanted:
        problem = f"unknown field {unknown[0]!r}" if unknown else "no field given"
        raise BadInput(f"--fields: {problem}; expected some of: {', '.join(available)}")
    return value


def split_fields(value: str) -> list[str]:
    """``"id, name,id"`` -> ``["id", "name"]``: the order given, each field once."""
    return list(dict.fromkeys(field.strip() for field in value.split(",") if field.strip()))


FieldsOption = Annotated[
    str | None,
    typer.Option(
        "--fields",
        metavar="A,B,...",
        help="Only these columns, in this order, in every format; `--fields help` lists them.",
        rich_help_panel="Output",
        show_default=False,
        is_eager=True,  # `--fields help` answers before required options are missing
        callback=_check_fields,
    ),
]
HeaderOption = Annotated[
    bool | None,
    typer.Option(
        "--header/--no-header",
        help="csv and tsv: a header row or not. Default: csv has one, tsv (what pipes get)"
        " has none.",
        rich_help_panel="Output",
        show_default=False,
    ),
]

Row = Mapping[str, Any]


def _no_configured_format() -> str | None:
    return None


# The configured default (profile, MIGRATIONPILOT_FORMAT), set by the root callback.
_configured_format: Callable[[], str | None] = _no_configured_format


def set_default_format(configured: Callable[[], str | None]) -> None:
    """Where the configured default format comes from; asked only when a command renders."""
    global _configured_format
    _configured_format = configured


def _chosen_format(fmt: OutputFormat | None) -> OutputFormat:
    """``--format``, else the configured default, else table on a terminal, tsv when piped."""
    if fmt is not None:
        return fmt
    configured = _configured_format()
    if configured:
        return OutputFormat(configured)
    return OutputFormat.table if sys.stdout.isatty() else OutputFormat.tsv


def render(
    rows: Iterable[Row],
    columns: Sequence[str],
    *,
    fmt: OutputFormat | None,
    quiet: bool = False,
    fields: str | None = None,
    header: bool | None = None,
    id_column: str = "id",
    table_columns: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Write ``rows`` (only ``columns``, in that order) to stdout in the chosen format.

    ``table_columns`` narrows what a person sees in a table (a checksum is noise there); the
    machine formats always carry every column. ``fields`` (``--fields``, already checked)
    overrides both; ``header`` (``--header/--no-header``) only concerns csv and tsv. Every
    format but the table writes ``rows`` as they come, so they may be a stream."""
    if quiet:
        _write_lines(str(row[id_column]) for row in rows)
        sys.stdout.flush()
        return
    chosen = _chosen_format(fmt)
    picked = split_fields(fields) if fields else None
    if chosen is OutputFormat.table:
        _render_table(list(rows), picked or table_columns or columns, title)
    elif chosen is OutputFormat.tsv:
        _render_tsv(rows, picked or columns, header=bool(header))
    elif chosen is OutputFormat.csv:
        _render_csv(rows, picked or columns, header=header is not False)
    else:
        _RENDERERS[chosen](rows, picked or columns)
    # Flush here, inside the command, so a closed pipe surfaces as an error the CLI handles
    # quietly rather than as a traceback at interpreter exit.
    sys.stdout.flush()


def render_record(
    record: Row, *, fmt: OutputFormat | None, quiet: bool = False, id_column: str = "id"
) -> None:
    """One object (``db info``, a project dashboard). Values may be nested objects.

    A person gets a field/value table plus one table per nested object; JSON keeps the
    nesting; tsv prints ``field<TAB>value`` lines with dotted paths for nested values
    (``files_by_language.cobol.lines``) that ``awk`` can pick from; csv is one header row and
    one value row over the same dotted paths."""
    if quiet:
        _write_lines([str(record[id_column])])
    else:
        chosen = _chosen_format(fmt)
        if chosen is OutputFormat.table:
            _render_record_tables(record)
        elif chosen in (OutputFormat.json, OutputFormat.jsonl):
            indent = 2 if chosen is OutputFormat.json else None
            # ensure_ascii (json's default) as ever here: every non-ASCII character escaped
            text = json.dumps(_machine_tree(record), indent=indent, default=str)
            sys.stdout.write(text + "\n")
        else:
            flat = _flatten(record)
            fields = [{"field": key, "value": value} for key, value in flat.items()]
            if chosen is OutputFormat.tsv:
                _render_tsv(fields, ("field", "value"))
            else:
                _render_csv([flat], list(flat))
    sys.stdout.flush()


def _machine_tree(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _machine_tree(item) for key, item in value.items()}
    return _machine_value(value)


def _flatten(record: Row, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _render_record_tables(record: Row) -> None:
    scalars = [{"field": k, "value": v} for k, v in record.items() if not isinstance(v, Mapping)]
    _render_table(scalars, ("field", "value"), None)
    for key, nested in record.items():
        if not isinstance(nested, Mapping) or not nested:
            continue
        if all(isinstance(inner, Mapping) for inner in nested.values()):
            columns = list(dict.fromkeys(c for inner in nested.values() for c in inner))
            rows = [{"": name, **inner} for name, inner in nested.items()]
            _render_table(
                [{c: row.get(c) for c in ["", *columns]} for row in rows], ["", *columns], key
            )
        else:
            _render_table(
                [{"field": k, "value": v} for k, v in nested.items()], ("field", "value"), key
            )


# What a terminal acts on: C0 controls, DEL, C1 controls, and the lone surrogates Python
# makes of bytes that are not UTF-8. With ``keep_layout`` tab and line feed are left alone.
# Patterns the re module compiles on first use: machine output and `--help` never use them.
_CONTROLS = "[\x00-\x1f\x7f-\x9f\ud800-\udfff]"
_CONTROLS_BUT_LAYOUT = "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]"


def printable(text: str, *, keep_layout: bool = True) -> str:
    """``text`` for a person's terminal: every control character written as an escape
    (``\x1b``), so data can neither colour, retitle nor overwrite the screen."""
    pattern = _CONTROLS_BUT_LAYOUT if keep_layout else _CONTROLS
    return re.sub(pattern, _escape_control, text)


def _escape_control(found: re.Match[str]) -> str:
    code = ord(found[0])
    if code >= 0xDC80:  # a byte that was not UTF-8 (surrogateescape)
        code -= 0xDC00
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def notice(message: str) -> None:
    """A human-facing line on stderr: shown on a terminal, silent in scripts."""
    if sys.stderr.isatty():
        _stderr_console().print(printable(message, keep_layout=False), highlight=False)


def warning(message: str) -> None:
    """A line on stderr that a script's log must keep too: something changed outside the
    command's own output (a database setting, say). Never on stdout, so pipes stay clean."""
    sys.stderr.write(f"warning: {printable(message, keep_layout=False)}\n")


def print_code(code: str, lexer: str, first_line: int = 1) -> None:
    """Source code for a person, highlighted with line numbers (`files show`, `rules show`,
    `generated show` on a terminal); its control characters escaped as in tables."""
    from rich.console import Console
    from rich.syntax import Syntax

    syntax = Syntax(
        printable(code), lexer, line_numbers=True, start_line=first_line, word_wrap=False
    )
    Console().print(syntax)


@contextlib.contextmanager
def progress(description: str) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr when it is a terminal; silent otherwise. Yields
    ``advance(done, total)`` (total None: not known yet)."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.progress import Progress

    with Progress(console=_stderr_console(), transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def counted(
    items: Iterable[T], advance: Callable[[int, int | None], None], every: int = 1000
) -> Iterator[T]:
    """``items`` as they come, telling ``advance`` how many have passed every ``every``."""
    done = 0
    for item in items:
        yield item
        done += 1
        if done % every == 0:
            advance(done, None)
    advance(done, done)


def _write_lines(lines: Any) -> None:
    sys.stdout.write("".join(line + "\n" for line in lines))  # one write, not one per row


def _machine_value(value: Any) -> Any:
    """A JSON-ready value: exact timestamps in ISO-8601 UTC, numbers as numbers.

    psycopg hands ``timestamptz`` back in the session's TimeZone (the server's default, or
    PGTZ), so the same row would print differently from two shells; converting here, where
    every machine format passes, makes the output one exact text whatever the zones. (SQL
    keeps the session zone: a psql user's date arithmetic means what they expect.)"""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)  # numeric(4,3) and friends: exact enough as a JSON number
    if isinstance(value, Enum):
        return value.value
    return value


_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# The cell of a value of each common type, found by one lookup: an export of a million rules
# makes twenty million cells. Decimal keeps the stored scale: 0.950, not 0.95.
_CELLS: dict[type, Callable[[Any], str]] = {
    str: str,
    int: str,
    Decimal: str,
    UUID: str,
    type(None): lambda _: "",
    bool: lambda value: "true" if value else "false",
    list: _COMPACT_JSON,
    dict: _COMPACT_JSON,
}


def _text_value(value: Any) -> str:
    """A single text cell for csv/tsv: nested JSON stays JSON, NULL is empty."""
    cell = _CELLS.get(type(value))
    if cell is not None:
        return cell(value)
    value = _machine_value(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _tsv_escape(text: str) -> str:
    # PostgreSQL COPY text conventions, so one row is always one line. Most cells need no
    # escaping, and testing for it is cheaper than four replacements.
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def _render_tsv(rows: Iterable[Row], columns: Sequence[str], *, header: bool = False) -> None:
    if header:
        _write_lines(["\t".join(columns)])
    _write_lines("\t".join(_tsv_escape(_text_value(row[c])) for c in columns) for row in rows)


def _render_csv(rows: Iterable[Row], columns: Sequence[str], *, header: bool = True) -> None:
    import csv  # here: every command imports this module, few print CSV

    writer = csv.writer(sys.stdout, lineterminator="\n")  # QUOTE_MINIMAL quotes newlines
    if header:
        writer.writerow(columns)
    writer.writerows([_text_value(row[c]) for c in columns] for row in rows)


def _machine_object(row: Row, columns: Sequence[str]) -> dict[str, Any]:
    return {column: _machine_value(row[column]) for column in columns}


# JSON escapes C0 controls itself; DEL and C1 (U+0080..U+009F: CSI and friends, which some
# terminals obey) it may leave raw. They can only stand inside strings, where the \u escape
# is the same value: the data stays exact.
_JSON_C1 = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def _json(value: Any, indent: int | None = None) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=indent, default=str)
    return text.translate(_JSON_C1) if not text.isascii() else text


def _render_json(rows: Iterable[Row], columns: Sequence[str]) -> None:
    """One JSON array, indented as ``json.dumps(..., indent=2)`` writes it, written object by
    object: an export of a million rows never holds them."""
    separator = "[\n  "
    for row in rows:
        sys.stdout.write(
            separator + _json(_machine_object(row, columns), indent=2).replace("\n", "\n  ")
        )
        separator = ",\n  "
    sys.stdout.write("[]\n" if separator.startswith("[") else "\n]\n")


def _render_jsonl(rows: Iterable[Row], columns: Sequence[str]) -> None:
    _write_lines(_json(_machine_object(row, columns)) for row in rows)


def _table_value(value: Any) -> str:
    """A cell for a person: local time to the second, an id by the start that names it
    (``refs``); the machine formats carry the exact values."""
    if value is None:
        return "[dim]-[/dim]"
    if isinstance(value, dt.datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, UUID):
        from migrationpilot_cli import refs

        return refs.short(value)
    from rich.markup import escape

    return escape(printable(_text_value(value)))


def _render_table(rows: Sequence[Row], columns: Sequence[str], title: str | None) -> None:
    from rich.table import Table

    if not rows:
        notice("no rows")
        return
    from rich.markup import escape

    # A title or a column can be data too (a record's nested keys).
    shown_title = None if title is None else escape(printable(title))
    table = Table(title=shown_title, header_style="bold", title_justify="left")
    for column in columns:
        table.add_column(escape(printable(column.replace("_", " "))), overflow="fold")
    for row in rows:
        table.add_row(*(_table_value(row[c]) for c in columns))
    _console().print(table)


_RENDERERS = {OutputFormat.json: _render_json, OutputFormat.jsonl: _render_jsonl}


def _console() -> Any:
    """The console for tables. Rich honours NO_COLOR (and FORCE_COLOR) itself; we add
    CLICOLOR_FORCE, which forces colour into a pipe (`--format table | less -R`) but never
    changes the format, and which NO_COLOR overrides."""
    from rich.console import Console

    forced = os.environ.get("CLICOLOR_FORCE", "0") not in ("", "0")
    return Console(force_terminal=True if forced and not os.environ.get("NO_COLOR") else None)


@functools.cache
def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
