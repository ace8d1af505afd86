"""The whole-text line counters against the per-line rules they replaced.

``count_lines`` counts COBOL, Fortran and JCL with regular expressions over the whole text
(an import counts a million lines). The counts stored must not change, so the per-line
functions they replaced are kept here, verbatim, as the reference, and Hypothesis looks for
a text on which the two disagree: lines around the columns that matter (6, 7, 72, 73),
every kind of whitespace Python knows, directives, CRLF, no final newline, empty texts.
"""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrationpilot_cli.sourcecode import LineCounts, count_lines

# --- the reference: the per-line rules as they were, verbatim ----------------------------

_SOURCE_DIRECTIVE = re.compile(
    r"(?:.{6})?\s*>>\s*SOURCE\s+(?:FORMAT\s+)?(?:IS\s+)?(FREE|FIXED)\b", re.IGNORECASE
)
_SET_DIRECTIVE = re.compile(
    r"(?:.{6})?\s*\$\s*SET\b.*?\bSOURCEFORMAT\s*[\"'(]\s*(FREE|FIXED)\b", re.IGNORECASE
)


def _split_lines(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _directive(line: str) -> str | None:
    if ">>" in line:
        match = _SOURCE_DIRECTIVE.match(line)
    elif "$" in line:
        match = _SET_DIRECTIVE.match(line)
    else:
        return None
    return match.group(1).lower() if match else None


def _cobol(lines: list[str]) -> tuple[int, int, int]:
    code = comment = blank = 0
    start, free = 0, False
    for index, line in enumerate(lines):
        directive = _directive(line)
        if directive is None:
            continue
        counts = _cobol_section(lines[start:index], free)
        code, comment, blank = code + counts[0] + 1, comment + counts[1], blank + counts[2]
        start, free = index + 1, directive == "free"
    counts = _cobol_section(lines[start:], free)
    return code + counts[0], comment + counts[1], blank + counts[2]


def _cobol_section(lines: list[str], free: bool) -> tuple[int, int, int]:
    return _first_nonblank(lines, "*>") if free else _cobol_fixed(lines)


def _cobol_fixed(lines: list[str]) -> tuple[int, int, int]:
    code = comment = blank = 0
    for line in lines:
        area = line[6:72]
        if not area or area.isspace():
            blank += 1
        elif area[0] in "*/" or ("*>" in area and area[1:].lstrip().startswith("*>")):
            comment += 1
        else:
            code += 1
    return code, comment, blank


def _fortran_fixed(lines: list[str]) -> tuple[int, int, int]:
    code = comment = blank = 0
    for line in lines:
        statement = line[:72]
        if not statement or statement.isspace():
            blank += 1
        elif statement[0] in "Cc*!" or ("!" in statement and _bang_comment(statement)):
            comment += 1
        else:
            code += 1
    return code, comment, blank


def _bang_comment(statement: str) -> bool:
    stripped = statement.lstrip()
    return stripped.startswith("!") and len(statement) - len(stripped) != 5


def _first_nonblank(lines: list[str], marker: str) -> tuple[int, int, int]:
    code = comment = blank = 0
    for line in lines:
        if not line or line.isspace():
            blank += 1
        elif marker in line and line.lstrip().startswith(marker):
            comment += 1
        else:
            code += 1
    return code, comment, blank


def _jcl(lines: list[str]) -> tuple[int, int, int]:
    code = comment = blank = 0
    for line in lines:
        if not line or line.isspace():
            blank += 1
        elif line.startswith("//*"):
            comment += 1
        else:
            code += 1
    return code, comment, blank


def reference(text: str, kind: str, fixed_form: bool) -> LineCounts:
    lines = _split_lines(text)
    if kind in ("cobol", "cobol-copybook"):
        counts = _cobol(lines)
    elif kind == "fortran":
        counts = _fortran_fixed(lines) if fixed_form else _first_nonblank(lines, "!")
    else:
        counts = _jcl(lines)
    return LineCounts(len(lines), *counts)


# --- the texts ----------------------------------------------------------------------------

# Every character Python calls whitespace, and the marks the rules look for.
WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c) != "\n"]
_MARKS = ["*", "/", "*>", "!", "-", "D", "C", "c", "//*", "//", ">>SOURCE FREE", ">>SOURCE FIXED"]
_FILL = st.sampled_from([" ", " ", "\t", "0", "A", *WHITESPACE])
# Leading text that puts the next mark on or around a column that counts (1-8, 60-75).
_LEAD = st.one_of(
    st.lists(_FILL, max_size=8).map("".join),
    st.tuples(st.integers(59, 74), _FILL).map(lambda width_fill: width_fill[1] * width_fill[0]),
)
_PART = st.tuples(_LEAD, st.sampled_from(_MARKS)).map("".join)
# A line: one or two marks at such columns, then anything.
LINE = st.tuples(
    st.lists(_PART, max_size=2).map("".join), st.text(alphabet="AB *!/>$", max_size=40)
).map("".join)


@st.composite
def texts(draw: st.DrawFn) -> str:
    lines = draw(st.lists(LINE, max_size=12))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = ending.join(lines)
    if lines and draw(st.booleans()):
        text += ending  # a final newline, or none
    return text


KINDS = [("cobol", False), ("cobol-copybook", False), ("fortran", True)]
KINDS += [("fortran", False), ("jcl", False)]


@pytest.mark.parametrize(("name", "fixed_form"), KINDS)
@settings(max_examples=400, derandomize=True)
@given(text=texts())
def test_whole_text_counts_equal_the_per_line_rules(name: str, fixed_form: bool, text: str) -> None:
    assert count_lines(text, name, fixed_form=fixed_form) == reference(text, name, fixed_form)


@pytest.mark.parametrize(("name", "fixed_form"), KINDS)
def test_every_mark_at_every_column_that_counts(name: str, fixed_form: bool) -> None:
    # Random texts rarely put a mark exactly on a boundary (a "!" after exactly five
    # blanks, a "*>" ending in column 72): try each mark after each lead that matters.
    leads = [
        fill * width for fill in (" ", "\t", "0", "\u3000") for width in (*range(9), *range(60, 76))
    ]
    for line in (lead + mark + tail for lead in leads for mark in _MARKS for tail in ("", " x")):
        expected = reference(line + "\n", name, fixed_form)
        assert count_lines(line + "\n", name, fixed_form=fixed_form) == expected, repr(line)


@given(text=st.text(max_size=300), kind=st.sampled_from(KINDS))
def test_any_text_counts_equal_the_per_line_rules(text: str, kind: tuple[str, bool]) -> None:
    name, fixed_form = kind
    assert count_lines(text, name, fixed_form=fixed_form) == reference(text, name, fixed_form)


@pytest.mark.parametrize("space", WHITESPACE)
@pytest.mark.parametrize(("name", "fixed_form"), KINDS)
def test_every_whitespace_character_is_blank_as_str_isspace_says(
    space: str, name: str, fixed_form: bool
) -> None:
    # The regex class \s and str.isspace() must agree on every code point, or a line of
    # U+3000 or \x1c would count differently.
    text = f"{space * 80}\n      {space}{space}*> x\n{space}! y\n"
    assert count_lines(text, name, fixed_form=fixed_form) == reference(text, name, fixed_form)
