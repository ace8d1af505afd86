"""`migrationpilot generated ...`: generated target code: import a directory, list it, show a
file, export it back to disk.

Import walks the directory as `files import` does (``sourcetree.candidates``: symbolic links
are not followed, version-control directories not walked) and stores every file byte for byte
as UTF-8 text, so that an export writes back exactly the same bytes. A binary or non-UTF-8
file fails the import (exit 2), unless ``--skip-binary`` leaves it out with a warning.

Export writes nothing until every stored path has been checked: a path that is absolute,
climbs out with ``..`` or resolves outside the directory (through a symbolic link) is refused
with exit 2; an existing file is refused with exit 1 unless ``--force``.
"""

import hashlib
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import typer

from migrationpilot_cli import sourcetree
from migrationpilot_cli.db import locks
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput, OperationFailed
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
    notice,
    print_code,
    progress,
    render,
    render_record,
)
from migrationpilot_cli.queries import generated, projects
from migrationpilot_cli.queries.generated import GeneratedFile
from migrationpilot_cli.sourcecode import extension
from migrationpilot_cli.vocabulary import GeneratedFileType

# What an import needs, in the organization and in the project (V0009, V0015).
_IMPORT = ("developer", "import or change generated files")

app = typer.Typer(
    help="Generated code: import an output directory, list it, read a file, export it.",
    no_args_is_help=True,
)

# Type inference, in this order: a test (under a test/ or tests/ directory, or named like a
# test in its language), then config and doc by extension, else source.
_TEST_DIRECTORIES = frozenset({"test", "tests"})
# (A string the re module compiles on first use: only an import infers types.)
_TEST_FILE_NAME = r".+Tests?\.(java|cs)|.+_test\.(go|py)|test_.+\.py|.+\.(test|spec)\.(ts|tsx)"
_CONFIG_EXTENSIONS = frozenset({".yml", ".yaml", ".json", ".xml", ".properties", ".toml"})
_DOC_EXTENSIONS = frozenset({".md", ".adoc"})
# The target_language of a file, by extension; anything else has none (NULL).
_LANGUAGE_BY_EXTENSION = {
    ".java": "java",
    ".py": "python",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".go": "go",
    ".cs": "csharp",
}
_IMPORT_SKIP_REASONS = ("excluded", "binary", "not_regular_file")
_TypeOption = Annotated[
    GeneratedFileType | None,
    typer.Option(
        "--type",
        help="The type of every imported file. Default: inferred per file: test under `test/`"
        " or `tests/` or named `*Test.java`, `*_test.go`, `test_*.py`, `*.spec.ts` ...;"
        " config for .yml .yaml .json .xml .properties .toml; doc for .md .adoc; else source.",
        show_default=False,
    ),
]


@app.command(
    "import",
    epilog=examples(
        "migrationpilot generated import ./out --project \"Loans core\" --exclude 'target/**'"
    ),
)
def import_(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="The generator's output directory.")],
    project: ProjectOption,
    file_type: _TypeOption = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Glob to leave out (repeatable), e.g. 'target/**'."),
    ] = None,
    skip_binary: Annotated[
        bool,
        typer.Option(
            "--skip-binary",
            help="Leave out binary and non-UTF-8 files with a warning instead of failing.",
        ),
    ] = False,
    org: OrgOption = None,
    lock_timeout: LockTimeoutOption = DEFAULT_LOCK_TIMEOUT,
    fmt: FormatOption = None,
) -> None:
    """Import (or re-import) a directory of generated code into a project; all or nothing.

    New files are added, changed ones updated, unchanged ones left alone."""
    scan, types = sourcetree.Scan(), Counter[str]()
    with progress("reading files") as advance, transaction(ctx.obj, requires=_IMPORT) as conn:
        files = read_tree(directory, exclude or (), file_type, skip_binary, scan, advance)
        found = projects.resolve(conn, project, org, requires=_IMPORT)
        waited = locks.lock_project(conn, found, lock_timeout)
        outcome = generated.merge(conn, found, _tally(files, types))
        summary = {
            **{name: len(paths) for name, paths in outcome.items()},
            "skipped": sum(scan.skipped.values()),
            "skipped_by_reason": {reason: scan.skipped[reason] for reason in _IMPORT_SKIP_REASONS},
            "by_type": {kind.value: types[kind.value] for kind in GeneratedFileType},
            "waited_seconds": round(waited, 2),
        }
    for warning in scan.warnings:
        notice(f"warning: {warning}")
    render_record(summary, fmt=fmt)


def read_tree(
    root: Path,
    excludes: Sequence[str],
    file_type: GeneratedFileType | None,
    skip_binary: bool,
    scan: sourcetree.Scan,
    advance: Callable[[int, int | None], None],
) -> Iterator[GeneratedFile]:
    """The tree's files, listed now (a missing directory is bad input at once) and read one
    at a time as the import copies them: the import holds one file, not the tree."""
    paths = sourcetree.walk(root, excludes, scan, advance)
    read = (
        _read_one(relative, absolute, file_type, skip_binary, scan) for relative, absolute in paths
    )
    return (file for file in read if file is not None)


def _tally(files: Iterable[GeneratedFile], types: Counter[str]) -> Iterator[GeneratedFile]:
    for file in files:
        types[file.type] += 1
        yield file


def _read_one(
    relative: str,
    absolute: str,
    file_type: GeneratedFileType | None,
    skip_binary: bool,
    scan: sourcetree.Scan,
) -> GeneratedFile | None:
    try:
        data = sourcetree.read_bytes(absolute)
    except OSError as error:
        raise BadInput(f"{relative}: cannot read ({error.strerror})") from error
    try:
        text = _utf8_text(data)
    except ValueError as error:
        if not skip_binary:
            raise BadInput(
                f"{relative}: {error}; generated files are stored as UTF-8 text"
                " (pass --skip-binary to leave such files out)"
            ) from error
        scan.skipped["binary"] += 1
        scan.warnings.append(f"{relative}: skipped, {error}")
        return None
    return GeneratedFile(
        path=relative,
        content=text,
        type=file_type.value if file_type else infer_type(relative),
        language=_LANGUAGE_BY_EXTENSION.get(extension(relative)),
        size_bytes=len(data),
        line_count=_line_count(text),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _utf8_text(data: bytes) -> str:
    """The text of a generated file, byte for byte; ValueError saying why it is not text."""
    offset = data.find(b"\x00")
    if offset >= 0:  # valid UTF-8, but PostgreSQL text cannot hold a NUL
        raise ValueError(f"binary (NUL byte at offset {offset})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 (invalid byte at offset {error.start})") from error


def _line_count(text: str) -> int:
    """Physical lines: a final line without a newline counts; CRLF and CR count once."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    return normalized.count("\n") + (0 if normalized.endswith("\n") or not normalized else 1)


def infer_type(path: str) -> str:
    """The generated_file_type of a relative path when --type is not given."""
    *directories, name = path.split("/")
    if _TEST_DIRECTORIES.intersection(directories) or re.fullmatch(_TEST_FILE_NAME, name):
        return "test"
    if extension(name) in _CONFIG_EXTENSIONS:
        return "config"
    if extension(name) in _DOC_EXTENSIONS:
        return "doc"
    return "source"


@app.command(
    "list",
    epilog=examples(
        'migrationpilot generated list --project "Loans core" --type test',
        "migrationpilot generated list --fields path,lines --format csv",
    ),
)
@listing(generated.COLUMNS)
def list_(
    ctx: typer.Context,
    project: ProjectFilterOption = None,
    file_type: Annotated[
        GeneratedFileType | None,
        typer.Option(
            "--type", help="Only files of this type.", show_default=False, rich_help_panel="Filters"
        ),
    ] = None,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Generated files you can see, with their type, language and size."""
    with transaction(ctx.obj) as conn:
        project_id = projects.resolve(conn, project, org)["id"] if project else None
        rows = generated.list_visible(
            conn, project_id=project_id, file_type=file_type.value if file_type else None
        )
    render(
        rows,
        generated.COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        title="Generated files",
        table_columns=("id", "path", "type", "language", "lines", "size_bytes", "updated_at"),
    )


@app.command(
    epilog=examples(
        "migrationpilot generated show src/main/java/com/acme/loans/InterestCalculator.java \\",
        '  -p "Loans core"',
    )
)
def show(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="The file's path in the project.")],
    project: ProjectOption,
    org: OrgOption = None,
) -> None:
    """Print a generated file: highlighted on a terminal, exactly as stored when piped."""
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        stored = generated.get(conn, found["id"], path)
    if sys.stdout.isatty():
        from rich.syntax import Syntax

        print_code(stored["content"], Syntax.guess_lexer(stored["path"], stored["content"]))
    else:
        sys.stdout.write(stored["content"])
        sys.stdout.flush()


@dataclass(frozen=True, slots=True)
class _Write:
    path: str
    destination: Path
    data: bytes
    exists: bool


@app.command(
    epilog=examples(
        'migrationpilot generated export ./out --project "Loans core"',
        'migrationpilot generated export ./out -p "Loans core" --force',
    )
)
def export(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to write; created when missing.")],
    project: ProjectOption,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that already exist.")
    ] = False,
    org: OrgOption = None,
    fmt: FormatOption = None,
) -> None:
    """Write every generated file of the project under a directory.

    Nothing is written unless every file can be: a stored path that is absolute, contains
    `..` or leads outside the directory through a symbolic link is refused (exit 2); an
    existing file is refused (exit 1) unless `--force`."""
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        stored = generated.contents(conn, found["id"])
    root = _export_root(directory)
    writes = _planned_writes(root, stored, force=force)
    for done, write in enumerate(writes):
        try:
            _write(write)
        except OSError as error:
            raise OperationFailed(
                f"{write.destination}: cannot write ({error.strerror});"
                f" {done} of {len(writes)} files were written"
            ) from error
    summary = {
        "directory": str(root),
        "written": len(writes),
        "overwritten": sum(write.exists for write in writes),
        "bytes": sum(len(write.data) for write in writes),
    }
    render_record(summary, fmt=fmt)


def _export_root(directory: Path) -> Path:
    root = directory.resolve()
    if root.exists() and not root.is_dir():
        raise BadInput(f"{directory}: not a directory")
    return root


def _planned_writes(root: Path, stored: list[dict[str, Any]], *, force: bool) -> list[_Write]:
    """Every file to write, once all of them have passed every check; raises otherwise."""
    paths = [row["path"] for row in stored]
    unsafe = [path for path in paths if not _stays_inside(root, path)]
    if unsafe:
        raise BadInput(
            f"refusing to export: stored paths {_first_few(unsafe)} are absolute or lead outside"
            f" {root}; nothing written"
        )
    clashing = _clashing(paths)
    if clashing:
        raise BadInput(
            f"refusing to export: stored paths {_first_few(clashing)} are both a file and a"
            " directory (or the same file twice); nothing written"
        )
    writes = [_planned(root, row["path"], row["content"]) for row in stored]
    blocked = [write.path for write in writes if _blocked(root, write.destination)]
    if blocked:
        raise OperationFailed(
            f"cannot export {_first_few(blocked)}: a directory stands where a file goes, or a"
            f" file where a directory goes, in {root}; nothing written"
        )
    existing = [write.path for write in writes if write.exists]
    if existing and not force:
        raise OperationFailed(
            f"{len(existing)} files already exist in {root}: {_first_few(existing)};"
            " pass --force to overwrite; nothing written"
        )
    return writes


def _stays_inside(root: Path, path: str) -> bool:
    """Whether ``path`` names a file strictly inside ``root``, even after following the
    symbolic links that already exist on the way (the parent's and the file's own)."""
    pure = PurePosixPath(path)
    if not path or "\x00" in path or pure.is_absolute() or ".." in pure.parts or not pure.parts:
        return False
    joined = root.joinpath(*pure.parts)
    try:
        parent, leaf = joined.parent.resolve(), joined.resolve()
    except (OSError, RuntimeError):  # a symbolic-link loop
        return False
    return parent.is_relative_to(root) and leaf.is_relative_to(root) and leaf != root


def _clashing(paths: list[str]) -> list[str]:
    """Paths that cannot all be files: one is another's directory, or two name one file."""
    normalized = Counter(PurePosixPath(path).as_posix() for path in paths)
    directories = {
        parent.as_posix() for path in normalized for parent in PurePosixPath(path).parents
    }
    return sorted(path for path, n in normalized.items() if n > 1 or path in directories)


def _blocked(root: Path, destination: Path) -> bool:
    """Whether something on disk stops the file from being written even with --force."""
    if destination.is_dir() and not destination.is_symlink():
        return True
    ancestors = destination.relative_to(root).parents
    return any(
        (root / ancestor).exists() and not (root / ancestor).is_dir() for ancestor in ancestors
    )


def _planned(root: Path, path: str, content: str) -> _Write:
    destination = root.joinpath(*PurePosixPath(path).parts)
    exists = destination.exists() or destination.is_symlink()
    return _Write(path, destination, content.encode("utf-8"), exists)


def _write(write: _Write) -> None:
    write.destination.parent.mkdir(parents=True, exist_ok=True)
    if write.destination.is_symlink():  # replace the link itself, never write through it
        write.destination.unlink()
    write.destination.write_bytes(write.data)


def _first_few(paths: list[str], shown: int = 5) -> str:
    listed = ", ".join(repr(path) for path in paths[:shown])
    return listed + (f" and {len(paths) - shown} more" if len(paths) > shown else "")
