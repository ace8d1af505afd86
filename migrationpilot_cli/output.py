"""The one renderer: every command hands its rows here and never prints rows itself.

On a terminal the default is a Rich table; when stdout is not a terminal it is tab-separated
values with no header, no colour, no truncation and exact ISO-8601 timestamps (the GitHub
CLI's convention), so that ``cut``, ``awk`` and ``while read`` just work. Notices and progress
go to stderr, and only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Annotated, Any

import typer


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
    rows: Sequence[Row],
    columns: Sequence[str],
    *,
    fmt: OutputFormat | None,
    quiet: bool = False,
    id_column: str = "id",
    table_columns: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Write ``rows`` (only ``columns``, in that order) to stdout in the chosen format.

    ``table_columns`` narrows what a person sees in a table (a checksum is noise there); the
    machine formats always carry every column."""
    if quiet:
        _write_lines(str(row[id_column]) for row in rows)
        sys.stdout.flush()
        return
    chosen = _chosen_format(fmt)
    if chosen is OutputFormat.table:
        _render_table(rows, table_columns or columns, title)
    else:
        _RENDERERS[chosen](rows, columns)
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
            sys.stdout.write(json.dumps(_machine_tree(record), indent=indent, default=str) + "\n")
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


def notice(message: str) -> None:
    """A human-facing line on stderr: shown on a terminal, silent in scripts."""
    if sys.stderr.isatty():
        _stderr_console().print(message, highlight=False)


@contextlib.contextmanager
def progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr when it is a terminal; silent otherwise. Yields
    ``advance(done, total)``."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.progress import Progress

    with Progress(console=_stderr_console(), transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _write_lines(lines: Any) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")


def _machine_value(value: Any) -> Any:
    """A JSON-ready value: exact timestamps in ISO-8601, numbers as numbers."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)  # numeric(4,3) and friends: exact enough as a JSON number
    if isinstance(value, Enum):
        return value.value
    return value


def _text_value(value: Any) -> str:
    """A single text cell for csv/tsv: nested JSON stays JSON, NULL is empty."""
    if isinstance(value, Decimal):
        return str(value)  # keep the stored scale: 0.950, not 0.95
    value = _machine_value(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _tsv_escape(text: str) -> str:
    # PostgreSQL COPY text conventions, so one row is always one line.
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _render_tsv(rows: Sequence[Row], columns: Sequence[str]) -> None:
    _write_lines("\t".join(_tsv_escape(_text_value(row[c])) for c in columns) for row in rows)


def _render_csv(rows: Sequence[Row], columns: Sequence[str]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")  # QUOTE_MINIMAL quotes newlines
    writer.writerow(columns)
    writer.writerows([_text_value(row[c]) for c in columns] for row in rows)


def _machine_object(row: Row, columns: Sequence[str]) -> dict[str, Any]:
    return {column: _machine_value(row[column]) for column in columns}


def _render_json(rows: Sequence[Row], columns: Sequence[str]) -> None:
    objects = [_machine_object(row, columns) for row in rows]
    sys.stdout.write(json.dumps(objects, ensure_ascii=False, indent=2, default=str) + "\n")


def _render_jsonl(rows: Sequence[Row], columns: Sequence[str]) -> None:
    _write_lines(
        json.dumps(_machine_object(row, columns), ensure_ascii=False, default=str) for row in rows
    )


def _table_value(value: Any) -> str:
    if value is None:
        return "[dim]-[/dim]"
    if isinstance(value, dt.datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    from rich.markup import escape

    return escape(_text_value(value))


def _render_table(rows: Sequence[Row], columns: Sequence[str], title: str | None) -> None:
    from rich.table import Table

    if not rows:
        notice("no rows")
        return
    table = Table(title=title, header_style="bold", title_justify="left")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(_table_value(row[c]) for c in columns))
    _console().print(table)


_RENDERERS = {
    OutputFormat.json: _render_json,
    OutputFormat.jsonl: _render_jsonl,
    OutputFormat.csv: _render_csv,
    OutputFormat.tsv: _render_tsv,
}


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
