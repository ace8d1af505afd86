"""Legacy source files before they are stored: their kind, their text, their line counts.

Pure logic on bytes and strings, no I/O and nothing beyond the standard library: the import
command loads it at command time and runs it over tens of thousands of files.

* ``classify`` maps a relative path to the ``source_file_kind`` database enum.
* ``decode`` turns the original bytes into the text stored in ``source_files.content`` and
  names the encoding it used; a file it cannot represent faithfully is refused, never stored
  half-decoded.
* ``count_lines`` splits lines into code, comment and blank by the rules of each format
  (COBOL fixed and free format, Fortran fixed and free form, VB6/VBA, Java, JCL).
"""

from __future__ import annotations

import codecs
import posixpath
import re
from dataclasses import dataclass
from operator import itemgetter

SOURCE_FILE_KINDS = ("cobol", "cobol-copybook", "fortran", "vb6", "vba", "java", "jcl")
"""The values of the ``source_file_kind`` database enum, in its order."""

_SOURCE_LANGUAGES = frozenset({"cobol", "fortran", "vb6", "vba", "java-legacy"})

_KIND_BY_EXTENSION = {
    ".cbl": "cobol",
    ".cob": "cobol",
    ".cobol": "cobol",
    ".cpy": "cobol-copybook",
    ".f": "fortran",
    ".for": "fortran",
    ".ftn": "fortran",
    ".f77": "fortran",
    ".f90": "fortran",
    ".f95": "fortran",
    ".f03": "fortran",
    ".frm": "vb6",
    ".ctl": "vb6",
    ".vbp": "vb6",
    ".vba": "vba",
    ".java": "java",
    ".jcl": "jcl",
}
# Standard modules and class modules share their extensions between VB6 and the VBA editor's
# exports; only the project says which dialect they are.
_VB_SHARED_EXTENSIONS = frozenset({".bas", ".cls"})
_FORTRAN_FIXED_FORM_EXTENSIONS = frozenset({".f", ".for", ".ftn", ".f77"})


@dataclass(frozen=True, slots=True)
class LineCounts:
    total: int
    """Physical lines; a final line without a newline counts, an empty text has none."""
    code: int
    comment: int
    blank: int
    """Lines with nothing but whitespace once the format's ignored columns are removed."""


class BinaryFile(ValueError):
    """The bytes hold a NUL: a binary file, never stored as half-decoded text."""


class UndecodableFile(ValueError):
    """The bytes are not valid in the encoding the user forced."""


# --- classify -----------------------------------------------------------------------------


def extension(path: str) -> str:
    """The lower-case extension of a path's last segment, with its dot ('' if none)."""
    # Only the last segment: a directory named "old.cbl/" must not classify its README.
    return posixpath.splitext(posixpath.basename(path))[1].lower()


def classify(path: str, source_language: str) -> str | None:
    """The source_file_kind for a relative path, or None for an unknown extension (skipped).

    ``source_language`` is the project's (the ``source_language`` enum); it decides whether
    ``.bas``/``.cls`` modules are VBA or VB6. An unknown language raises ValueError, so a
    misspelt one cannot silently turn VBA modules into VB6.
    """
    if source_language not in _SOURCE_LANGUAGES:
        raise ValueError(f"unknown source language {source_language!r}")
    suffix = extension(path)
    if suffix in _VB_SHARED_EXTENSIONS:
        return "vba" if source_language == "vba" else "vb6"
    return _KIND_BY_EXTENSION.get(suffix)


def fortran_fixed_form(path: str) -> bool:
    """Whether a Fortran file is fixed form (``.f .for .ftn .f77``) rather than free form.

    Compilers decide by extension too, so the path is a better witness than the text.
    """
    return extension(path) in _FORTRAN_FIXED_FORM_EXTENSIONS


# --- decode -------------------------------------------------------------------------------


def _normalize_newlines(text: str) -> str:
    if "\r" not in text:  # the common case costs one scan and no copy
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _refuse_nul(data: bytes) -> None:
    offset = data.find(b"\x00")
    if offset >= 0:
        raise BinaryFile(
            f"NUL byte at offset {offset}: a binary file "
            "(or UTF-16/UTF-32 text, which needs its encoding named)"
        )


def _codec_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None


def _is_ebcdic(codec: str) -> bool:
    # EBCDIC code pages put "A" at 0xC1; no ASCII-based one does.
    try:
        return "A".encode(codec) == b"\xc1"
    except (UnicodeError, LookupError):
        return False


def _strip_utf8_bom(data: bytes) -> tuple[bytes, int]:
    """The data without a UTF-8 BOM, and how many bytes were removed (to keep offsets true)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
    return data, 0


def _decode_forced(data: bytes, encoding: str) -> tuple[str, str]:
    codec = _codec_name(encoding)
    # UTF-16 and UTF-32 text is full of NUL bytes; every other encoding keeps NUL for NUL.
    if not codec.startswith(("utf-16", "utf-32")):
        _refuse_nul(data)
    skipped = 0
    if codec == "utf-8":  # a BOM is a marker, not content, whoever named the encoding
        data, skipped = _strip_utf8_bom(data)
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as error:
        offset = skipped + error.start
        raise UndecodableFile(
            f"not valid {codec}: byte 0x{error.object[error.start]:02x} at offset {offset} "
            f"({error.reason})"
        ) from None
    except LookupError:  # a codec that exists but is no text encoding, e.g. rot13
        raise ValueError(f"{encoding!r} is not a text encoding") from None
    if _is_ebcdic(codec):
        # z/OS Unix files end lines with EBCDIC NL (0x15), which decodes to U+0085.
        text = text.replace("\x85", "\n")
    return _normalize_newlines(text), codec


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding used), with every line ending normalized to ``\\n``.

    Without ``encoding``: UTF-8 (a BOM is stripped and the result still reported as
    ``utf-8``), then cp1252 (VB and most PC exports), then latin-1, which never fails.
    A forced ``encoding`` is used or the file refused: UndecodableFile names the first bad
    byte's offset; an encoding Python does not know raises ValueError. With an EBCDIC code
    page, NL (U+0085) also ends a line. A NUL byte anywhere raises BinaryFile, checked before
    decoding, except for a forced UTF-16/32.

    The encoding is reported as Python's canonical codec name ('utf-8', 'cp1252',
    'iso8859-1', 'cp037', ...), so files decoded the same way are recorded the same way.
    """
    if encoding is not None:
        return _decode_forced(data, encoding)
    _refuse_nul(data)
    try:
        return _normalize_newlines(_strip_utf8_bom(data)[0].decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return _normalize_newlines(data.decode("cp1252")), "cp1252"
    except UnicodeDecodeError:  # cp1252 leaves 0x81 0x8D 0x8F 0x90 0x9D undefined
        return _normalize_newlines(data.decode("latin-1")), "iso8859-1"


# --- count_lines --------------------------------------------------------------------------
# Each counter makes one pass over the lines and returns (code, comment, blank). They are
# flat loops with local counters that call no function for the common line: at a million
# lines, a call per line is a noticeable share of the time.


def _split_lines(text: str) -> list[str]:
    # Not str.splitlines: it also breaks at form feeds (page ejects in old listings), at
    # \x1c-\x1e and at U+2028, none of which ends a line for a compiler.
    lines = _normalize_newlines(text).split("\n")
    if lines[-1] == "":  # the newline ending the last line opens no new line
        lines.pop()
    return lines


# >>SOURCE [FORMAT] [IS] FREE|FIXED (COBOL 2002), after an optional sequence area.
_SOURCE_DIRECTIVE = re.compile(
    r"(?:.{6})?\s*>>\s*SOURCE\s+(?:FORMAT\s+)?(?:IS\s+)?(FREE|FIXED)\b", re.IGNORECASE
)
# Micro Focus and GnuCOBOL: $SET ... SOURCEFORMAT"FREE" (or 'FREE' or (FREE)), in column 7.
_SET_DIRECTIVE = re.compile(
    r"(?:.{6})?\s*\$\s*SET\b.*?\bSOURCEFORMAT\s*[\"'(]\s*(FREE|FIXED)\b", re.IGNORECASE
)
_SET_ANYWHERE = re.compile(r"\$\s*SET\b", re.IGNORECASE)


def _may_hold_cobol_directives(text: str, has_gt: bool) -> bool:
    # One scan of the whole text spares most files a directive test on every line. "$" alone
    # is not enough to say yes: PIC $$$,$$9.99 is everywhere in financial code.
    return (has_gt and ">>" in text) or ("$" in text and _SET_ANYWHERE.search(text) is not None)


def _cobol_format_directive(line: str) -> str | None:
    """'free' or 'fixed' when the line switches the source format, else None."""
    if ">>" in line:  # substring tests rule out nearly every line before a regex runs
        match = _SOURCE_DIRECTIVE.match(line)
    elif "$" in line:
        match = _SET_DIRECTIVE.match(line)
    else:
        return None
    return match.group(1).lower() if match else None


def _count_cobol(lines: list[str], text: str) -> tuple[int, int, int]:
    """Fixed format (the default) until a directive says free, and back at a FIXED one.

    Directives: ``>>SOURCE [FORMAT] [IS] FREE|FIXED`` and Micro Focus ``$SET
    SOURCEFORMAT"FREE"|"FIXED"``, any case; other formats (VARIABLE, ...) are not recognized.
    The directive lines are code (the compiler reads them). A file whose free-format text has
    no directive (a free-format copybook, typically) is counted as fixed format.
    """
    # ">" begins both a >>SOURCE directive and a floating *> comment. A search for one
    # character runs at memchr speed, ten times a search for two: for most fixed-format files
    # it rules both out (10,000 files: 57 ms of searching became 6).
    has_gt = ">" in text
    if not _may_hold_cobol_directives(text, has_gt):
        return _count_cobol_fixed(lines, floating=has_gt)
    code = comment = blank = 0
    start, free = 0, False
    for index, line in enumerate(lines):
        directive = _cobol_format_directive(line)
        if directive is None:
            continue
        counts = _count_cobol_section(lines[start:index], free)
        code, comment, blank = code + counts[0] + 1, comment + counts[1], blank + counts[2]
        start, free = index + 1, directive == "free"
    counts = _count_cobol_section(lines[start:], free)
    return code + counts[0], comment + counts[1], blank + counts[2]


def _count_cobol_section(lines: list[str], free: bool) -> tuple[int, int, int]:
    # Free format: a floating *> first on the line makes a comment, wherever the line starts.
    return _count_first_nonblank(lines, "*>") if free else _count_cobol_fixed(lines)


_AREA = itemgetter(slice(6, 72))  # indicator (column 7) and areas A and B (columns 8-72)
_FIRST = itemgetter(0)


def _count_cobol_fixed(lines: list[str], *, floating: bool = True) -> tuple[int, int, int]:
    """Columns 1-6 (sequence) and 73+ (identification) are ignored; column 7 is the indicator.

    ``*`` or ``/`` (page eject) in column 7 makes a comment, and so does area A/B text that
    starts with the floating ``*>`` (looked for only when ``floating``: the caller knows the
    text has no ``>``). ``D`` (debugging line), ``-`` (continuation) and any other indicator
    leave the line code. Tabs are not expanded.

    Whole-list operations (map, count, join) instead of a loop with a test per line: a
    quarter less time at a million lines.
    """
    areas = list(map(_AREA, lines))
    blank = areas.count("") + sum(map(str.isspace, areas))
    # The indicator of every non-empty area; a blank area's is blank, never * or /.
    indicators = "".join(map(_FIRST, filter(None, areas)))
    comment = indicators.count("*") + indicators.count("/")
    if floating:
        comment += sum(
            1
            for area in areas
            if "*>" in area and area[0] not in "*/" and area[1:].lstrip().startswith("*>")
        )
    return len(areas) - blank - comment, comment, blank


def _count_fortran_fixed(lines: list[str]) -> tuple[int, int, int]:
    """``C``, ``c``, ``*`` or ``!`` in column 1, or ``!`` as first non-blank, is a comment.

    Columns 73+ (the old card sequence field) are ignored. A ``!`` in column 6 is a
    continuation mark, so it is code, not a comment.
    """
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
    """A ``!`` first on the line, unless in column 6 where it marks a continuation."""
    stripped = statement.lstrip()
    return stripped.startswith("!") and len(statement) - len(stripped) != 5


def _count_first_nonblank(lines: list[str], marker: str) -> tuple[int, int, int]:
    """A line whose first non-blank text is ``marker`` is a comment.

    The rule of free-form Fortran (``!``) and free-format COBOL (``*>``).
    """
    code = comment = blank = 0
    for line in lines:
        if not line or line.isspace():
            blank += 1
        elif marker in line and line.lstrip().startswith(marker):
            comment += 1
        else:
            code += 1
    return code, comment, blank


def _is_rem_comment(stripped: str) -> bool:
    # Rem must be a whole word: "Remaining = 0" is code.
    return stripped[:3].lower() == "rem" and (len(stripped) == 3 or stripped[3] in " \t")


def _count_vb(lines: list[str]) -> tuple[int, int, int]:
    """``'`` or the word ``Rem`` first is a comment, and so is its continuation.

    A comment ending in the line-continuation `` _`` carries on into the next line, which
    the VB editor also shows as comment.
    """
    code = comment = blank = 0
    continues_comment = False
    for line in lines:
        stripped = line.strip()
        if not stripped:
            blank += 1
            continues_comment = False
        elif (
            continues_comment
            or stripped[0] == "'"
            or (stripped[0] in "Rr" and _is_rem_comment(stripped))
        ):
            comment += 1
            continues_comment = stripped.endswith(" _") or stripped == "_"
        else:
            code += 1
    return code, comment, blank


# What can start or hide a comment on a Java line: the two comment openers and the string and
# char literals (a literal still open at the end of the line ends there: no multi-line strings
# before text blocks).
_JAVA_TOKEN = re.compile(r"""//|/\*|"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?""")


def _scan_java_line(line: str, in_block: bool) -> tuple[bool, bool, bool]:
    """(has code, has comment, still inside a block comment at the end of the line).

    The scan jumps from token to token, so ``"/*"`` in a string opens nothing and the text
    between tokens is looked at once.
    """
    has_code = has_comment = False
    i, length = 0, len(line)
    while i < length:
        if in_block:
            has_comment = True
            end = line.find("*/", i)
            if end < 0:
                return has_code, True, True
            i, in_block = end + 2, False
            continue
        token = _JAVA_TOKEN.search(line, i)
        stop = length if token is None else token.start()
        if not has_code and stop > i and not line[i:stop].isspace():
            has_code = True
        if token is None:
            break
        if token.group() == "//":
            return has_code, True, False
        if token.group() == "/*":
            has_comment = in_block = True
        else:  # a string or char literal
            has_code = True
        i = token.end()
    return has_code, has_comment, in_block


def _count_java(lines: list[str]) -> tuple[int, int, int]:
    """``//`` and ``/* */`` comments; a line with any code outside them is code.

    A whitespace-only line is blank even inside a block comment, as cloc counts it.
    """
    code = comment = blank = 0
    in_block = False
    for line in lines:
        if not line or line.isspace():
            blank += 1
        elif not in_block and "/" not in line and '"' not in line and "'" not in line:
            code += 1  # nothing on the line can start a comment: skip the character scan
        else:
            has_code, has_comment, in_block = _scan_java_line(line, in_block)
            if has_code:
                code += 1
            elif has_comment:
                comment += 1
            else:
                blank += 1
    return code, comment, blank


def _count_jcl(lines: list[str]) -> tuple[int, int, int]:
    """``//*`` in column 1 is a comment; everything else (``//`` end of job too) is code."""
    code = comment = blank = 0
    for line in lines:
        if not line or line.isspace():
            blank += 1
        elif line.startswith("//*"):
            comment += 1
        else:
            code += 1
    return code, comment, blank


def count_lines(text: str, kind: str, *, fixed_form: bool | None = None) -> LineCounts:
    """Code, comment and blank lines of ``text`` (as returned by ``decode``) for a file kind.

    A line holding both code and a comment counts as code. ``fixed_form`` is required for
    ``fortran`` (see ``fortran_fixed_form``: the form follows the file's extension, which the
    text does not carry) and ignored for every other kind.
    """
    if kind not in SOURCE_FILE_KINDS:
        raise ValueError(f"unknown source file kind {kind!r}")
    lines = _split_lines(text)
    if kind in ("cobol", "cobol-copybook"):
        code, comment, blank = _count_cobol(lines, text)
    elif kind == "fortran":
        if fixed_form is None:
            raise ValueError("fortran needs fixed_form: see fortran_fixed_form(path)")
        if fixed_form:
            code, comment, blank = _count_fortran_fixed(lines)
        else:
            code, comment, blank = _count_first_nonblank(lines, "!")
    elif kind in ("vb6", "vba"):
        code, comment, blank = _count_vb(lines)
    elif kind == "java":
        code, comment, blank = _count_java(lines)
    else:
        code, comment, blank = _count_jcl(lines)
    return LineCounts(total=len(lines), code=code, comment=comment, blank=blank)
