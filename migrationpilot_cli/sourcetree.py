"""Read a legacy source tree from disk into rows ready to stage: no database here.

Paths are stored relative to the imported directory with ``/`` separators. Symbolic links
are not followed (a link could point outside the directory), version-control directories
are not walked, and unknown extensions are skipped and counted.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from migrationpilot_cli import sourcecode
from migrationpilot_cli.errors import BadInput

_VERSION_CONTROL = frozenset({".git", ".svn", ".hg", "CVS"})
SKIP_REASONS = ("excluded", "unknown_extension", "binary", "unreadable", "not_regular_file")


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str
    content: str
    language: str
    encoding: str
    size_bytes: int
    sha256: str
    lines: sourcecode.LineCounts


@dataclass
class Scan:
    files: list[SourceFile] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    """How many files were left out, by reason (one of SKIP_REASONS)."""
    warnings: list[str] = field(default_factory=list)


def glob_pattern(pattern: str) -> re.Pattern[str]:
    """``*`` matches within one path segment, ``**`` across segments, ``?`` one character.
    A pattern without ``/`` matches a file name at any depth, as in .gitignore."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    translated = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    body = "".join(translated.get(part, re.escape(part)) for part in parts)
    prefix = "" if "/" in pattern.strip("/") else "(?:.*/)?"
    return re.compile(f"{prefix}{body}")


def candidates(root: Path, excludes: Sequence[str], scan: Scan) -> list[tuple[str, Path]]:
    """Every regular file under ``root`` as (relative posix path, absolute path), sorted."""
    if not root.is_dir():
        raise BadInput(f"{root}: not a directory")
    patterns = [glob_pattern(pattern) for pattern in excludes]
    found: list[tuple[str, Path]] = []
    for directory, subdirectories, names in os.walk(root):  # does not follow links
        subdirectories[:] = sorted(d for d in subdirectories if d not in _VERSION_CONTROL)
        for name in names:
            absolute = Path(directory, name)
            relative = absolute.relative_to(root).as_posix()
            if any(pattern.fullmatch(relative) for pattern in patterns):
                scan.skipped["excluded"] += 1
            elif absolute.is_symlink() or not absolute.is_file():
                scan.skipped["not_regular_file"] += 1
                scan.warnings.append(f"{relative}: skipped, not a regular file")
            else:
                found.append((relative, absolute))
    return sorted(found)


def read(
    root: Path,
    *,
    source_language: str,
    excludes: Sequence[str] = (),
    encoding: str | None = None,
    skip_unreadable: bool = False,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Scan:
    """Read, decode and measure every recognised file under ``root``."""
    scan = Scan()
    for relative, absolute in walk(root, excludes, scan, progress):
        language = sourcecode.classify(relative, source_language)
        if language is None:
            scan.skipped["unknown_extension"] += 1
        else:
            _read_one(scan, relative, absolute, language, encoding, skip_unreadable)
    return scan


def walk(
    root: Path, excludes: Sequence[str], scan: Scan, progress: Callable[[int, int], None]
) -> Iterator[tuple[str, Path]]:
    """The candidates of ``root`` one by one, reporting progress after each is handled."""
    paths = candidates(root, excludes, scan)
    for done, path in enumerate(paths, start=1):
        yield path
        progress(done, len(paths))


def _read_one(
    scan: Scan,
    relative: str,
    absolute: Path,
    language: str,
    encoding: str | None,
    skip_unreadable: bool,
) -> None:
    try:
        data = absolute.read_bytes()
    except OSError as error:
        if not skip_unreadable:
            raise BadInput(
                f"{relative}: cannot read ({error.strerror}); fix it or pass --skip-unreadable"
            ) from error
        scan.skipped["unreadable"] += 1
        scan.warnings.append(f"{relative}: skipped, cannot read ({error.strerror})")
        return
    try:
        text, used = sourcecode.decode(data, encoding)
    except sourcecode.BinaryFile as error:
        scan.skipped["binary"] += 1
        scan.warnings.append(f"{relative}: skipped, {error}")
        return
    except sourcecode.UndecodableFile as error:
        raise BadInput(f"{relative}: {error}") from error
    fixed = sourcecode.fortran_fixed_form(relative) if language == "fortran" else None
    scan.files.append(
        SourceFile(
            path=relative,
            content=text,
            language=language,
            encoding=used,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            lines=sourcecode.count_lines(text, language, fixed_form=fixed),
        )
    )
