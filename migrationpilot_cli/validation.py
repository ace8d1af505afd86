"""Checks on user input, made before anything is written: bad input is exit 2 with a line
naming the option. The database enforces the same rules as a backstop for other clients."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence

from migrationpilot_cli.errors import BadInput, OperationFailed
from migrationpilot_cli.settings import Settings

_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def slug(value: str, option: str = "--slug") -> str:
    if not _SLUG.match(value):
        raise BadInput(
            f"{option} {value!r}: use lower-case letters, digits and single hyphens (e.g. acme-pay)"
        )
    return value


def email(value: str) -> str:
    cleaned = value.strip().lower()
    if not _EMAIL.match(cleaned):
        raise BadInput(f"{value!r} is not an email address")
    return cleaned


def text(value: str, what: str) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise BadInput(f"{what} must not be empty")
    return cleaned


def require_operator(settings: Settings, command: str) -> None:
    """Tenancy administration belongs to the operator (the schema owner), not to users."""
    if settings.acting_user:
        raise OperationFailed(f"`{command}` is an operator command: run it without --as")


def ids(arguments: Sequence[str]) -> list[int]:
    """Ids from the arguments, where ``-`` reads them from stdin, one per line.

    On stdin, blank lines and ``#`` comments are skipped and only the first tab-separated
    field counts, so both ``... -q |`` and plain tsv listings pipe straight in. The order is
    kept and repeats are dropped. An empty stdin is an empty batch, not an error, so that a
    nightly ``rules list ... -q | review approve -`` that matches nothing succeeds (like
    ``xargs -r``)."""
    found: dict[int, None] = {}
    for where, value in _id_values(arguments):
        if not value.isdigit() or len(value) > 18:
            raise BadInput(f"{where}: {value!r} is not an id")
        found.setdefault(int(value))
    return list(found)


def _id_values(arguments: Sequence[str]) -> Iterator[tuple[str, str]]:
    for argument in arguments:
        if argument != "-":
            yield "argument", argument.strip()
            continue
        for number, line in enumerate(sys.stdin, start=1):
            value = line.split("\t", 1)[0].strip()
            if value and not value.startswith("#"):
                yield f"stdin line {number}", value
