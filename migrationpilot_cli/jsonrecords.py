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

import codecs
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO

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


def stream(argument: str) -> Iterator[Record]:
    """The records of the file named ``argument``, or of stdin when it is ``-``, one at a time
    as they are read: an import holds one record in memory, not the file. The file is opened
    now (an unreadable one is bad input before any work), read as the records are taken."""
    from migrationpilot_cli.inputs import open_binary

    data = open_binary(argument)
    if argument == "-":
        return _records(data, "stdin")
    return _closing(data, _records(data, argument))


def _closing(data: BinaryIO, records: Iterator[Record]) -> Iterator[Record]:
    with data:
        yield from records


def parse(text: str, source_name: str) -> list[Record]:
    """``(location, record)`` for every record of ``text``, in order; BadInput (exit 2) naming
    the line for malformed JSON, and the location for a record that is not an object."""
    return list(_records(io.BytesIO(text.encode()), source_name))


def _records(data: BinaryIO, source_name: str) -> Iterator[Record]:
    text = _Text(data, source_name)
    text.skip_whitespace()
    if text.peek() == "[":
        return _array_records(text, source_name)
    return _line_records(text, source_name)


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
    return _object(value, what, text)


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


def _line_records(text: _Text, source_name: str) -> Iterator[Record]:
    for number, line in text.lines():
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
        yield location, _object(value, location, line)


def _array_records(text: _Text, source_name: str) -> Iterator[Record]:
    """Walk the array element by element, so that an error knows its line and every record
    its index."""
    text.advance(1)  # the [
    text.skip_whitespace()
    closed = text.peek() == "]"
    if closed:
        text.advance(1)
        text.skip_whitespace()
    index = 0
    while not closed:
        location = f"{source_name} [{index}]"
        try:
            value, element = text.decode_value()
        except _NotJson as error:
            raise text.malformed(str(error)) from error
        except RecursionError as error:
            raise _too_deep(location) from error
        yield location, _object(value, location, element)
        index += 1
        text.skip_whitespace()
        following = text.peek()
        if following not in (",", "]"):
            raise text.malformed("expected ',' or ']'")
        text.advance(1)
        closed = following == "]"
        text.skip_whitespace()
    if text.peek():
        raise text.malformed("extra data")


def _cut_off(error: json.JSONDecodeError, buffer: str) -> bool:
    """Whether the decoder stopped because the text read so far ends inside the value: at
    the end of the buffer (a few characters before it for a cut ``\\u`` escape or literal),
    or inside a string (reported where the string starts)."""
    return error.pos >= len(buffer) - 6 or error.msg.startswith("Unterminated string")


class _Text:
    """The UTF-8 text of a byte stream, decoded strictly and read forward in chunks, which
    knows the line it is on: for the array form, whose elements span lines and chunks."""

    CHUNK = 1 << 20

    def __init__(self, data: BinaryIO, source_name: str) -> None:
        self.data, self.source_name = data, source_name
        self.buffer, self.position = "", 0
        self.lines_before = 0  # line breaks in text already dropped from the buffer
        self.bytes_read, self.ended = 0, False
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.started = False

    def _read(self, size: int) -> bool:
        """Append about ``size`` more bytes of text; False at the end of the stream."""
        if self.ended:
            return False
        chunk = self.data.read(size)
        self.ended = not chunk
        try:
            decoded = self.decoder.decode(chunk, final=self.ended)
        except UnicodeDecodeError as error:
            raise self._not_utf8(error, len(chunk)) from error
        self.bytes_read += len(chunk)
        if not self.started:
            decoded, self.started = decoded.removeprefix("\ufeff"), bool(decoded)
        if self.position > self.CHUNK:  # drop what is read, keeping the line count
            self.lines_before += self.buffer.count("\n", 0, self.position)
            self.buffer, self.position = self.buffer[self.position :], 0
        self.buffer += decoded
        return bool(decoded) or not self.ended

    def _not_utf8(self, error: UnicodeDecodeError, chunk_size: int) -> BadInput:
        # The decoder's bytes are the chunk after what it kept of the one before.
        kept = len(error.object) - chunk_size
        line = (
            self.lines_before + self.buffer.count("\n") + error.object.count(b"\n", 0, error.start)
        )
        offset = self.bytes_read - kept + error.start
        byte = f"byte 0x{error.object[error.start]:02x} at offset {offset}"
        return BadInput(f"{self.source_name} line {line + 1}: not UTF-8 text ({byte})")

    def lines(self) -> Iterator[tuple[int, str]]:
        """``(number, line)`` for every line from here on, split on \\n only: U+2028 and
        friends may stand unescaped inside JSON strings."""
        number = self.lines_before + self.buffer.count("\n", 0, self.position) + 1
        while True:
            end = self.buffer.find("\n", self.position)
            while end < 0 and self._read(self.CHUNK):
                end = self.buffer.find("\n", self.position)
            if end < 0:
                if self.position < len(self.buffer):
                    yield number, self.buffer[self.position :]
                return
            yield number, self.buffer[self.position : end]
            self.position, number = end + 1, number + 1

    def peek(self) -> str:
        while self.position >= len(self.buffer):
            if not self._read(self.CHUNK):
                return ""
        return self.buffer[self.position]

    def advance(self, characters: int) -> None:
        self.position += characters

    def skip_whitespace(self) -> None:
        while True:
            end = len(self.buffer)
            while self.position < end and self.buffer[self.position] in _WHITESPACE:
                self.position += 1
            if self.position < end or not self._read(self.CHUNK):
                return

    def decode_value(self) -> tuple[Any, str]:
        """The JSON value that starts here, and its text; reads on while the value may just
        be cut off by the end of the buffer."""
        size = self.CHUNK
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as error:
                if not (_cut_off(error, self.buffer) and self._read(size)):
                    self.position = error.pos
                    raise self.malformed(error.msg) from error
                size *= 2  # a long element: fewer retries of its decoding
                continue
            if end < len(self.buffer) or self.ended or not self._read(size):
                element = self.buffer[self.position : end]
                self.position = end
                return value, element

    def malformed(self, message: str) -> BadInput:
        line = self.lines_before + self.buffer.count("\n", 0, self.position) + 1
        return BadInput(f"{self.source_name} line {line}: malformed JSON: {message}")


def _object(value: Any, location: str, text: str) -> dict[str, Any]:
    """``value`` (parsed from ``text``) as a record: an object, with no NUL character and no
    deeper than MAX_DEPTH. JSON can only spell a NUL as the escape \\u0000 (the decoder
    refuses raw control characters), and a record can only be as deep as its text has
    brackets: most records are searched and counted, in C, and never walked."""
    if not isinstance(value, dict):
        raise BadInput(f"{location}: expected a JSON object, got {_json_type(value)}")
    if _NUL_ESCAPE in text and _holds_nul(value):
        raise BadInput(f"{location}: a string holds \\u0000, which PostgreSQL cannot store")
    if text.count("{") + text.count("[") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise _too_deep(location)
    return value


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
