"""Records from a JSON array or a JSON Lines text, each with the place it came from.

Pure logic apart from ``load`` reading its file. Bulk imports validate every record before
anything is written, and their errors must name the record: ``parse`` pairs each record with
a location, ``cases.jsonl line 37`` (JSON Lines) or ``cases.json [12]`` (an array, 0-based).

* A text whose first non-blank character is ``[`` is one JSON array; anything else is JSON
  Lines (one object a line, blank lines skipped). A leading UTF-8 byte-order mark is ignored.
* Every record must be an object. Malformed JSON is reported with its line, and so is a
  ``\u0000`` in any string (PostgreSQL stores no NUL character) and a record nested deeper
  than ``MAX_DEPTH`` levels (Python's decoder would stop with a RecursionError at about
  1,000; nothing the analyzer writes comes near 100).
* Numbers with a fraction or exponent become ``Decimal``, so ``0.955`` or ``1234.5678901234``
  survive exactly; ``dumps`` writes them back unchanged. ``NaN`` and ``Infinity`` are refused
  (they are not JSON and PostgreSQL's jsonb rejects them).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from migrationpilot_cli.errors import BadInput

Record = tuple[str, dict[str, Any]]


class _NotJson(ValueError):
    """A constant Python accepts but JSON does not (NaN, Infinity)."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant)
MAX_DEPTH = 100
_WHITESPACE = " \t\n\r"
_NUL_ESCAPE = "\\u0000"


def load(argument: str) -> list[Record]:
    """The records of the file named ``argument``, or of stdin when it is ``-``."""
    from migrationpilot_cli.inputs import read_text

    return parse(read_text(argument), "stdin" if argument == "-" else argument)


def parse(text: str, source_name: str) -> list[Record]:
    """``(location, record)`` for every record of ``text``, in order; BadInput (exit 2) naming
    the line for malformed JSON, and the location for a record that is not an object."""
    text = text.removeprefix("\ufeff")
    # JSON can only spell a NUL character as the escape \u0000 (the decoder refuses raw
    # control characters): without one in the text, no record needs to be searched for it,
    # which saves walking every value of a 100,000-record import.
    may_hold_nul = _NUL_ESCAPE in text
    if text.lstrip(_WHITESPACE).startswith("["):
        return _parse_array(text, source_name, may_hold_nul)
    return _parse_lines(text, source_name, may_hold_nul)


def one_object(text: str, what: str) -> dict[str, Any]:
    """The JSON object an option's value holds (``--settings '{"a": 1}'``), checked as a
    record is; BadInput naming ``what`` otherwise."""
    try:
        value = _DECODER.decode(text.strip(_WHITESPACE))
    except json.JSONDecodeError as error:
        raise BadInput(f"{what}: malformed JSON: {error.msg} (column {error.colno})") from error
    except _NotJson as error:
        raise BadInput(f"{what}: malformed JSON: {error}") from error
    except RecursionError as error:
        raise _too_deep(what) from error
    return _object(value, what, _NUL_ESCAPE in text, _brackets(text))


# Compact JSON from the C encoder, for values without a Decimal (most: arrays of names).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Compact JSON text for a parsed value, with its ``Decimal`` numbers written exactly."""
    try:
        return _COMPACT.encode(value)
    except TypeError:  # a Decimal somewhere inside: written by hand below, exactly
        pass
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        items = (f"{dumps(key)}:{dumps(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _parse_lines(text: str, source_name: str, may_hold_nul: bool) -> list[Record]:
    records: list[Record] = []
    # Split on newlines only: U+2028 and friends may stand unescaped inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip(_WHITESPACE):
            continue
        location = f"{source_name} line {number}"
        try:
            value = _DECODER.decode(line)
        except json.JSONDecodeError as error:
            message = f"{location}: malformed JSON: {error.msg} (column {error.colno})"
            raise BadInput(message) from error
        except _NotJson as error:
            raise BadInput(f"{location}: malformed JSON: {error}") from error
        except RecursionError as error:
            raise _too_deep(location) from error
        records.append((location, _object(value, location, may_hold_nul, _brackets(line))))
    return records


def _parse_array(text: str, source_name: str, may_hold_nul: bool) -> list[Record]:
    """Walk the array element by element, so that an error knows its line and every record
    its index."""
    records: list[Record] = []
    position = _skip_whitespace(text, text.index("[") + 1)
    closed = text.startswith("]", position)
    while not closed:
        start = position
        location = f"{source_name} [{len(records)}]"
        try:
            value, position = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise _malformed(source_name, text, error.pos, error.msg) from error
        except _NotJson as error:
            raise _malformed(source_name, text, position, str(error)) from error
        except RecursionError as error:
            raise _too_deep(location) from error
        brackets = _brackets(text, start, position)
        records.append((location, _object(value, location, may_hold_nul, brackets)))
        position = _skip_whitespace(text, position)
        if text.startswith(",", position):
            position = _skip_whitespace(text, position + 1)
        elif text.startswith("]", position):
            closed = True
        else:
            raise _malformed(source_name, text, position, "expected ',' or ']'")
    if text[position + 1 :].strip(_WHITESPACE):
        raise _malformed(source_name, text, _skip_whitespace(text, position + 1), "extra data")
    return records


def _skip_whitespace(text: str, position: int) -> int:
    while position < len(text) and text[position] in _WHITESPACE:
        position += 1
    return position


def _malformed(source_name: str, text: str, position: int, message: str) -> BadInput:
    line = text.count("\n", 0, position) + 1
    return BadInput(f"{source_name} line {line}: malformed JSON: {message}")


def _object(value: Any, location: str, may_hold_nul: bool, brackets: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput(f"{location}: expected a JSON object, got {_json_type(value)}")
    if may_hold_nul and _holds_nul(value):
        raise BadInput(f"{location}: a string holds \\u0000, which PostgreSQL cannot store")
    # A record can only be as deep as its text has brackets: most records are counted, in C,
    # and not walked.
    if brackets > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise _too_deep(location)
    return value


def _brackets(text: str, start: int = 0, end: int | None = None) -> int:
    return text.count("{", start, end) + text.count("[", start, end)


def _depth(value: Any) -> int:
    """How many objects and arrays deep ``value`` is, level by level (no recursion)."""
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
    return depth


def _too_deep(location: str) -> BadInput:
    return BadInput(f"{location}: nested deeper than {MAX_DEPTH} levels of objects and arrays")


def _holds_nul(value: Any) -> bool:
    """A NUL character anywhere in the record, keys included: neither text nor jsonb can hold
    one, and the database's own error would not say which record it was."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"
