"""References people type for rows whose keys are uuids: the full uuid, or its start.

Tables show the first ``SHORT`` hex digits of an id (``3f2a9c1e``), as git shows
abbreviated hashes; every command takes that back, any longer start of the id, or the whole
uuid (with or without dashes, any case). A start that fits several rows is refused with the
candidates (exit 2); the machine formats and ``-q`` always print full uuids, so pipes stay
exact. Pure logic, no I/O: ``queries.resolve_refs`` looks the starts up."""

from __future__ import annotations

import re
from uuid import UUID

from migrationpilot_cli.errors import BadInput

SHORT = 8  # hex digits shown: 32 bits, unambiguous in all but huge sets (then longer works)
MINIMUM = 4  # hex digits a reference needs, as git asks of an abbreviated hash
_SHOWN = 40  # characters of a bad value an error repeats
# A string the re module compiles on first use: a listing imports this module, reads no id.
_HEX = rf"[0-9a-f]{{{MINIMUM},32}}"


def short(value: UUID) -> str:
    return value.hex[:SHORT]


def digits(value: str) -> str | None:
    """The reference's hex digits, lower-case (4 to 32 of them), or None when ``value`` does
    not read as an id (rather than, say, a project's name)."""
    found = value.strip().replace("-", "").lower()
    return found if found.isascii() and re.fullmatch(_HEX, found) else None


def parse(value: str, where: str = "argument") -> str:
    """The reference's hex digits (:func:`digits`); anything else is bad input."""
    found = digits(value)
    if found is None:
        shown = value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
        raise BadInput(
            f"{where}: {shown!r} is not an id: give the id shown in a listing (e.g. 3f2a9c1e),"
            f" at least {MINIMUM} of its first hex digits, or the full uuid"
        )
    return found


def is_uuid(value: str) -> bool:
    """Whether ``value`` is a whole uuid (as the machine formats print it)."""
    found = digits(value)
    return found is not None and len(found) == 32


def bounds(start: str) -> tuple[UUID, UUID]:
    """The first and last uuid that start with ``start`` (hex digits): a range the primary
    key's index finds in one probe (uuids sort by their bytes, which is their hex order)."""
    return UUID(start.ljust(32, "0")), UUID(start.ljust(32, "f"))
