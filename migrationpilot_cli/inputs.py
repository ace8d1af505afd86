"""The input boundary: every argument and option of every command, and every text read from a
file or stdin, is decoded and checked here before any command runs.

* Text must be UTF-8. Python hands an argument's bytes that are not UTF-8 over as lone
  surrogates, which PostgreSQL, psycopg and native code (the murmur3 of `routing resolve`)
  cannot take: such an argument is refused, naming the option, for every command at once.
* A whole number must be ASCII digits in the range of SQL ``integer`` (every integer the
  schema stores is one), so `--max-projects 99999999999` is not PostgreSQL's "integer out of
  range" and 5,001 digits are not Python's "Exceeds the limit".
* A decimal number must be finite and hold its value as a float: `nan`, `inf`, `1e999` and
  `1e-9999999999999999999` (which a float would silently make 0) are refused; `-0` is 0.
* A path's parts must fit the file system (255 bytes a name, 4096 a path), so a long name
  is refused naming the option rather than failing half way through a command.

The app applies :func:`harden` to every command as it is built (app._LazyCommands), so a
new command gets these checks without asking. A refusal is Click's usage error: one line,
``Invalid value for '--key': ...``, exit 2.
"""

from __future__ import annotations

import copy
import io
import math
import re
import sys
from typing import Any, BinaryIO, cast

from typer._click import types
from typer.models import TyperPath

from migrationpilot_cli.errors import BadInput

SQL_INTEGER = (-(2**31), 2**31 - 1)
NAME_MAX = 255  # bytes in one file name (Linux, and most file systems)
PATH_MAX = 4096  # bytes in a whole path (Linux)
_SHOWN = 40  # characters of a bad value a message repeats

# Patterns, not compiled objects: every process imports this module, few need them, and the
# re module compiles (and caches) a pattern on its first use.
_NOT_UTF8 = "[\ud800-\udfff]"
_INTEGER = r"(?a)[+-]?[0-9]+"
_DECIMAL = r"(?a)[+-]?(?P<digits>[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"


def shown(value: str) -> str:
    """A bad value as a message repeats it: quoted, cut to a few words, with bytes that are
    not UTF-8 written as ``\\xff`` (the terminal gets no raw control characters either)."""
    cut = value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
    return repr(cut).replace("\\udc", "\\x")


def utf8_problem(value: str) -> str | None:
    """Why ``value`` (an argument, a file name) is not UTF-8 text, or None when it is."""
    if value.isascii():  # nearly every argument: no search needed
        return None
    found = re.search(_NOT_UTF8, value)
    if found is None:
        return None
    character = ord(found[0])
    byte = f"byte 0x{character - 0xDC00:02x}" if character >= 0xDC80 else "a lone surrogate"
    return f"{shown(value)} is not UTF-8 text ({byte} at character {found.start() + 1})"


def _number_problem(param_type: types.ParamType, value: str) -> str | None:
    if isinstance(param_type, types.IntParamType):
        low, high = SQL_INTEGER
        text = value.strip()
        # A long run of digits is out of range whatever it says: int() is not asked.
        if not re.fullmatch(_INTEGER, text) or len(text) > 20 or not low <= int(text) <= high:
            return f"{shown(value)} is not a whole number from {low} to {high}"
    elif isinstance(param_type, types.FloatParamType):
        decimal = re.fullmatch(_DECIMAL, value.strip())
        if decimal is None:
            return f"{shown(value)} is not a decimal number (such as 0.5 or 10)"
        number = float(decimal[0])
        if math.isinf(number) or (number == 0 and decimal["digits"].strip("0.")):
            return f"{shown(value)} is out of range: too large or too small a number"
    return None


def _path_problem(value: str) -> str | None:
    encoded = value.encode("utf-8")
    if len(encoded) >= PATH_MAX:
        return f"{shown(value)} is {len(encoded)} bytes long; a path has at most {PATH_MAX - 1}"
    longest = max(encoded.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        return (
            f"a part of {shown(value)} is {len(longest)} bytes long; a file name has at most"
            f" {NAME_MAX}"
        )
    return None


def problem(param_type: types.ParamType, value: str) -> str | None:
    """What is wrong with ``value`` as the text of a parameter of ``param_type``, or None."""
    found = utf8_problem(value) or _number_problem(param_type, value)
    if found is None and isinstance(param_type, TyperPath):
        found = _path_problem(value)
    return found


class _Checked(types.ParamType):
    """Mixed into a parameter's own type (see :func:`_checked`): the checks first, then the
    type's own conversion. The type stays an instance of its class, so help and completion
    (which look at IntRange, Choice, ...) see no difference."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str):
            found = problem(self, value)
            if found is not None:
                self.fail(found, param, ctx)
        result = super().convert(value, param, ctx)
        if isinstance(result, float) and result == 0:
            return 0.0  # -0 is 0: `--timeout -0` must not print as "-0s"
        return result


_CHECKED_CLASSES: dict[type[types.ParamType], type[types.ParamType]] = {}


def _checked_class(kind: type[types.ParamType]) -> type[types.ParamType]:
    if kind not in _CHECKED_CLASSES:
        _CHECKED_CLASSES[kind] = type(kind.__name__, (_Checked, kind), {})
    return _CHECKED_CLASSES[kind]


def _checked(param_type: types.ParamType) -> types.ParamType:
    if isinstance(param_type, _Checked):
        return param_type
    checked = copy.copy(param_type)
    checked.__class__ = _checked_class(type(param_type))
    return checked


def harden(command: Any) -> Any:
    """``command`` (a Click command or group) with every parameter's text checked."""
    for param in command.params:
        param.type = _checked(param.type)
    return command


def open_binary(argument: str, option: str | None = None) -> BinaryIO:
    """The bytes of the file named ``argument`` (the caller closes it), or of stdin when it is
    ``-``, to be read as a stream; an unreadable file is one line naming ``option``."""
    if argument == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is not None:
            return cast(BinaryIO, stream)
        return io.BytesIO(sys.stdin.read().encode(errors="surrogateescape"))
    try:
        return open(argument, "rb")
    except OSError as error:
        named = f"{option} {argument}" if option else argument
        raise BadInput(f"{named}: cannot read ({error.strerror})") from error


def read_bytes(argument: str, option: str | None = None) -> bytes:
    """All the bytes of the file named ``argument``, or of stdin when it is ``-``."""
    if argument == "-":
        return open_binary(argument).read()  # stdin stays open
    with open_binary(argument, option) as data:
        return data.read()


def read_text(argument: str, option: str | None = None) -> str:
    """The UTF-8 text of the file named ``argument``, or of stdin when it is ``-``; the bytes
    are decoded here, strictly, so invalid UTF-8 is one line naming the line it is on."""
    where = "stdin" if argument == "-" else argument
    data = read_bytes(argument, option)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = f"byte 0x{data[error.start]:02x} at offset {error.start}"
        raise BadInput(f"{where} line {line}: not UTF-8 text ({byte})") from error
