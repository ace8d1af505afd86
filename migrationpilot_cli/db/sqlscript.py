"""Split a SQL script into statements, the way psql does, without touching a database.

The migrator runs a file one statement at a time so that a failure names the file, the line
and the statement, and so that a no-transaction file can run ``CREATE INDEX CONCURRENTLY``
(which PostgreSQL refuses inside a multi-statement query string). The scanner knows what
can hide a semicolon: comments (``--`` and nested ``/* */``), string literals (standard and
``E''`` with backslash escapes), quoted identifiers, dollar-quoted bodies, and SQL-standard
``BEGIN ATOMIC ... END`` function bodies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")


@dataclass(frozen=True)
class Statement:
    text: str
    line: int
    """1-based line of the file on which the statement starts."""

    @property
    def summary(self) -> str:
        first = self.text.strip().splitlines()[0]
        return first if len(first) <= 80 else first[:77] + "..."


def _skip_quoted(script: str, start: int, quote: str, backslash_escapes: bool) -> int:
    """Index just past the literal opened at ``start``; a doubled quote stays inside."""
    i = start + 1
    while i < len(script):
        char = script[i]
        if backslash_escapes and char == "\\":
            i += 2
            continue
        if char == quote:
            if script.startswith(quote, i + 1):
                i += 2
                continue
            return i + 1
        i += 1
    return len(script)


def _skip_block_comment(script: str, start: int) -> int:
    depth, i = 0, start
    while i < len(script):
        if script.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif script.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(script)


def tokens(script: str) -> Iterator[tuple[str, int]]:
    """Yield ``(word_or_semicolon, offset)`` for every bare word and every statement-ending
    semicolon candidate; everything inside comments, literals and quotes is skipped."""
    i, length = 0, len(script)
    while i < length:
        char = script[i]
        if script.startswith("--", i):
            end = script.find("\n", i)
            i = length if end < 0 else end
        elif script.startswith("/*", i):
            i = _skip_block_comment(script, i)
        elif char == "'":
            i = _skip_quoted(script, i, "'", backslash_escapes=False)
        elif char == '"':
            i = _skip_quoted(script, i, '"', backslash_escapes=False)
        elif char == "$" and (tag := _DOLLAR_TAG.match(script, i)):
            end = script.find(tag.group(), tag.end())
            i = length if end < 0 else end + len(tag.group())
        elif word := _WORD.match(script, i):
            i = word.end()
            if word.group() in ("E", "e") and script.startswith("'", i):
                i = _skip_quoted(script, i, "'", backslash_escapes=True)
            else:
                yield word.group().lower(), word.start()
        elif char == ";":
            yield ";", i
            i += 1
        else:
            i += 1


def split_statements(script: str) -> list[Statement]:
    statements: list[Statement] = []
    start: int | None = None  # offset of the current statement's first word
    words: list[str] = []
    depth = 0  # BEGIN ATOMIC / CASE nesting inside a SQL-standard function body
    for token, offset in tokens(script):
        if token == ";":
            if depth == 0 and start is not None:
                statements.append(_statement(script, start, offset + 1))
                start, words = None, []
            continue
        if start is None:
            start = offset
        words.append(token)
        depth = _atomic_depth(words, depth)
    if start is not None:
        statements.append(_statement(script, start, len(script)))
    return statements


def _atomic_depth(words: list[str], depth: int) -> int:
    word = words[-1]
    if word == "atomic" and len(words) >= 2 and words[-2] == "begin" and words[0] == "create":
        return depth + 1
    if depth and word == "case":
        return depth + 1
    if depth and word == "end":
        return depth - 1
    return depth


def _statement(script: str, start: int, end: int) -> Statement:
    return Statement(script[start:end].rstrip(), script.count("\n", 0, start) + 1)


def mentions_word(script: str, word: str) -> bool:
    """True when ``word`` appears as SQL (not inside a comment or a literal)."""
    return any(token == word for token, _ in tokens(script))
