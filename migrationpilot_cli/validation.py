"""Checks on user input, made before anything is written: bad input is exit 2 with a line
naming the option. The database enforces the same rules as a backstop for other clients."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from decimal import Decimal

from migrationpilot_cli.errors import BadInput, OperationFailed
from migrationpilot_cli.inputs import read_text
from migrationpilot_cli.settings import Settings

# Strings the re module compiles on first use: most commands that import this module check
# neither a slug nor an email.
_SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


# The design's lengths (varchar(n)): checked here, so that a long value is one clear line
# naming the option, not the database's "value too long for type character varying(255)".
NAME_LENGTH = 255
SLUG_LENGTH = 100


def slug(value: str, option: str = "--slug") -> str:
    if len(value) > SLUG_LENGTH:
        raise BadInput(f"{option}: longer than {SLUG_LENGTH} characters")
    if not re.match(_SLUG, value):
        raise BadInput(
            f"{option} {value!r}: use lower-case letters, digits and single hyphens (e.g. acme-pay)"
        )
    return value


def email(value: str) -> str:
    """An email address as given (stored so; unique and looked up without regard to case)."""
    cleaned = value.strip()
    if not re.match(_EMAIL, cleaned) or len(cleaned) > NAME_LENGTH:
        raise BadInput(f"{value!r} is not an email address")
    return cleaned


def text(value: str, what: str, max_length: int | None = NAME_LENGTH) -> str:
    """``value`` without surrounding blanks: not empty, and at most ``max_length`` characters
    (None: any length)."""
    cleaned = value.strip()
    if not cleaned:
        raise BadInput(f"{what} must not be empty")
    if max_length is not None and len(cleaned) > max_length:
        raise BadInput(f"{what} is too long: {len(cleaned)} characters, at most {max_length}")
    return cleaned


def confidence(value: float | None, option: str) -> Decimal | None:
    """A 0..1 option as the exact decimal the user typed (None stays None)."""
    if value is None:
        return None
    if not 0 <= value <= 1:
        raise BadInput(f"{option} {value}: expected a number between 0 and 1")
    return Decimal(str(value))


def require_operator(settings: Settings, command: str) -> None:
    """Tenancy administration belongs to the operator (the schema owner), not to users."""
    if settings.acting_user:
        raise OperationFailed(f"`{command}` is an operator command: run it without --as")


def ids(arguments: Sequence[str]) -> list[str]:
    """Id references (``refs.parse``) from the arguments, where ``-`` reads them from stdin,
    one per line.

    On stdin, blank lines and ``#`` comments are skipped and only the first tab-separated
    field counts, so both ``... -q |`` and plain tsv listings pipe straight in. The order is
    kept and repeats are dropped. An empty stdin is an empty batch, not an error, so that a
    nightly ``rules list ... -q | review approve -`` that matches nothing succeeds (like
    ``xargs -r``)."""
    from migrationpilot_cli import refs

    found: dict[str, None] = {}
    for argument in arguments:
        if argument != "-":
            found.setdefault(refs.parse(argument.strip()))
            continue
        text = read_text("-")
        piped = _piped_uuids(text)
        if piped is None:  # line by line, so that a refusal names its line
            piped = [refs.parse(value, where) for where, value in _stdin_values(text)]
        found.update(dict.fromkeys(piped))
    return list(found)


# What a pipe from `rules list -q` or `--format tsv` holds: a whole uuid at the start of every
# line, alone or before a tab. One pass of the re module over the whole text checks that
# (10,000 lines: 4 ms, where checking them one by one took 12); any other text takes the line
# by line way, which names the line it refuses.
_HEX = "[0-9a-fA-F]"
_UUID_LINES = rf"(?:{_HEX}{{8}}(?:-{_HEX}{{4}}){{3}}-{_HEX}{{12}}(?:\t[^\n]*)?\n)*"


def _piped_uuids(text: str) -> list[str] | None:
    """The hex digits of the uuid starting each line of ``text`` (as ``refs.parse`` gives
    them), or None unless every line starts with one."""
    lines = text if text.endswith("\n") or not text else text + "\n"
    if not re.fullmatch(_UUID_LINES, lines):
        return None
    uuids = "\n".join(re.findall(r"(?m)^.{36}", lines))  # C loops, not a Python one a line
    return uuids.replace("-", "").lower().split("\n") if uuids else []


def emails(arguments: Sequence[str]) -> list[str]:
    """Email addresses from the arguments, where ``-`` reads them from stdin, one per line (as
    :func:`ids` reads ids: blank lines and ``#`` comments skipped, the first tab-separated
    field counts). The order is kept; an address given twice, in any letter case, counts
    once."""
    found: dict[str, str] = {}
    for where, value in _id_values(arguments):
        try:
            address = email(value)
        except BadInput as error:
            if where == "argument":
                raise
            raise BadInput(f"{where}: {error.message}") from None
        found.setdefault(address.lower(), address)
    return list(found.values())


def one_id(argument: str) -> str:
    """The one id reference an argument gives (``-``: the first id on stdin)."""
    found = ids([argument])
    if len(found) != 1:
        raise BadInput(f"expected one id, not {len(found)}")
    return found[0]


def _id_values(arguments: Sequence[str]) -> Iterator[tuple[str, str]]:
    for argument in arguments:
        if argument != "-":
            yield "argument", argument.strip()
        else:
            yield from _stdin_values(read_text("-"))


def _stdin_values(text: str) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(text.split("\n"), start=1):
        value = line.split("\t", 1)[0].strip()
        if value and not value.startswith("#"):
            yield f"stdin line {number}", value
