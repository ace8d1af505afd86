"""Property-based fuzzing of every command: whatever the arguments, options and stdin, the
CLI exits 0 (done), 2 (bad input) or 4 (not found), or 1 for a refusal by design (a role
check, a duplicate, an operator command run with --as), each with one line on stderr; never
a traceback, never an internal error, never a signal. Whatever it refuses leaves the
database exactly as it was.

The commands come from the app's own command tree, so one added later is fuzzed too; each
parameter gets values by its type and name: numbers of every form (huge, non-ASCII digits,
NaN), texts with control characters, surrogates and quotes, ids real and made up, JSON good,
malformed and nested deep, paths that exist, escape or are too long. Most examples run
through Typer's runner; a sample runs through the real console script with bytes that are
not UTF-8. Hypothesis is derandomized, so a run is repeatable.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.commandtree import leaves
from tests.conftest import CONSOLE_SCRIPT, Outcome, Server, run_cli, with_database
from tests.snapshots import digest

# Commands that manage the embedded server or open a full-screen app are out of scope here.
SKIPPED = {("db", "start"), ("db", "stop")}
# Always passed, so that no example writes outside the test's directory or starts a long run.
FIXED = {
    ("db", "new"): ["--migrations-dir", "migrations"],
    ("db", "verify"): ["--checksums-only"],
    ("review", "queue"): ["--no-tui"],
}
COMMANDS = [(path, command) for path, command in leaves() if path not in SKIPPED]
NASTY = ["'", '"', "';--", "\\", "%", "_", "\x1b[31m", "\x1b]0;t\x07", "\x00", "\udcff",
         "\u202e", "\U0001f600", "\r\n", " ", "", "-", "--", "-x", "NULL", "$1", "{}"]  # fmt: skip
TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=20),
    st.builds(
        lambda piece, n: piece * n,
        st.sampled_from(["x", "é", "\U0001f600"]),
        st.integers(200, 3000),
    ),
)
NUMBER_FORMS = ["²", "٣", "1e3", " 7", "0x10", "", "9" * 5001, "-0", "+5", "1_000", "nan",
                "inf", "-inf", "1e-9999999999999999999", "1e309", "0.5", "1.5", "½", "-1",
                "\uff11"]  # a superscript, Arabic-Indic and fullwidth digits  # fmt: skip
INTEGERS = st.one_of(st.integers(-(2**70), 2**70).map(str), st.sampled_from(NUMBER_FORMS))
DECIMALS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str), st.sampled_from(NUMBER_FORMS)
)


@dataclass(frozen=True)
class World:
    """The demo database, and real values to mix with made-up ones."""

    url: str
    directory: Path
    rule_ids: list[str]
    names: dict[str, list[str]]


@pytest.fixture(scope="module")
def world(
    server: Server, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    name = server.create_database(template=template_database)
    url = with_database(server.url, name)
    directory = tmp_path_factory.mktemp("fuzz")
    _files(directory)
    try:
        result = run_cli("--database-url", url, "demo", "load")
        assert result.exit_code == 0, result.stderr
        with psycopg.connect(url) as conn:
            rule_ids = [str(i) for (i,) in conn.execute("SELECT id FROM business_rules LIMIT 5")]
            names = {
                "project": [p for (p,) in conn.execute("SELECT name FROM projects")],
                "org": [s for (s,) in conn.execute("SELECT slug FROM organizations")],
                "tenant": [s for (s,) in conn.execute("SELECT slug FROM tenants")],
                "user": [e for (e,) in conn.execute("SELECT email FROM users")],
                "route": [s for (s,) in conn.execute("SELECT slug FROM routing_rules")],
                "path": [p for (p,) in conn.execute("SELECT path FROM source_files LIMIT 3")],
            }
        yield World(url, directory, rule_ids, names)
    finally:
        server.drop_database(name)


def _files(directory: Path) -> None:
    (directory / "tree").mkdir()
    (directory / "tree" / "A.cbl").write_text("       MOVE 1 TO X.\n")
    (directory / "good.jsonl").write_text(
        json.dumps(
            {
                "name": "n",
                "category": "validation",
                "confidence": 0.5,
                "description": "d",
                "logic": "l",
                "source_file": "src/LOANCALC.cbl",
                "source_start_line": 1,
                "source_end_line": 2,
            }
        )
        + "\n"
    )
    (directory / "deep.json").write_text("[" * 5000 + "]" * 5000)
    (directory / "bad.jsonl").write_text('{"name": "n"}\n{"name": \n')
    (directory / "latin1.jsonl").write_bytes(b'{"name": "caf\xe9"}\n')
    (directory / "migrations").mkdir()


PATHS = ["tree", "out", "missing", "good.jsonl", "d" * 300, "-", "../" * 30, "migrations"]
SOURCES = ["-", "good.jsonl", "deep.json", "bad.jsonl", "latin1.jsonl", "missing.jsonl", "tree",
           "../" * 30 + "etc/passwd"]  # fmt: skip
JSON_TEXTS = st.one_of(
    st.sampled_from(["", "[]", "{}", "[1]", '{"name": "x"}\n', "\x00", "[" * 3000, "nul\nl"]),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=8) | st.integers(),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=10,
    ).map(json.dumps),
)


def _value(draw: Any, world: World, param: Any) -> tuple[str, str | None]:
    """A value for ``param`` and, when it reads stdin, what stdin holds."""
    kind = type(param.type).__name__
    name = (param.name or "").lower()
    if kind in ("TyperChoice", "Choice"):
        return draw(st.one_of(st.sampled_from(list(param.type.choices)), TEXT)), None
    if kind in ("IntParamType", "IntRange"):
        return draw(INTEGERS), None
    if kind in ("FloatParamType", "FloatRange"):
        return draw(DECIMALS), None
    if name == "source":
        choice = draw(st.sampled_from(SOURCES))
        return choice, draw(JSON_TEXTS) if choice == "-" else None
    if kind == "TyperPath" or name in ("directory", "output", "keys_from", "migrations_dir"):
        return draw(st.sampled_from(PATHS) | TEXT), None
    if name in ("rule_ref", "ids", "case_ref", "resource", "rule"):
        real = world.rule_ids
        return draw(st.sampled_from(real) | st.sampled_from([i[:8] for i in real]) | TEXT), None
    for key in ("project", "org", "tenant", "user", "email", "route", "path"):
        if key in name or (key == "route" and name == "name"):
            known = world.names.get(key, world.names["user"] if key == "email" else [])
            return draw(st.sampled_from(known) | TEXT if known else TEXT), None
    return draw(TEXT), None


@st.composite
def invocations(draw: Any, world: World) -> tuple[list[str], str | None]:
    path, command = draw(st.sampled_from(COMMANDS))
    argv: list[str] = []
    stdin: str | None = None
    acting = draw(st.sampled_from([None, None, "lead@acme.test", "viewer@acme.test", "nobody"]))
    if acting is not None:
        argv += ["--as", acting]
    argv += [*path, *FIXED.get(path, [])]
    for param in command.params:
        if param.opts[0] in FIXED.get(path, []):
            continue  # given already
        if not param.required and draw(st.integers(0, 2)) != 0:
            continue
        if getattr(param, "is_flag", False):
            argv.append(param.opts[0])
            continue
        value, feeds = _value(draw, world, param)
        stdin = feeds if feeds is not None else stdin
        argv += [param.opts[0], value] if param.param_type_name == "option" else [value]
    return argv, stdin


FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check(outcome: Outcome, before: dict[str, str], after: dict[str, str]) -> None:
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert "internal error" not in outcome.stderr, outcome.stderr
    assert outcome.exit_code in (0, 1, 2, 4), (outcome.exit_code, outcome.stderr)
    if os.environ.get("FUZZ_LOG"):  # to see what the examples reach: FUZZ_LOG=file pytest ...
        with open(os.environ["FUZZ_LOG"], "a") as log:
            log.write(f"{outcome.exit_code} {outcome.stderr or chr(10)}")
    if outcome.exit_code == 0:
        return
    assert outcome.stderr.startswith("error: "), outcome.stderr
    assert outcome.stderr.count("\n") == 1, outcome.stderr
    assert after == before, outcome.stderr


@FUZZ
@given(data=st.data())
def test_any_input_to_any_command_is_done_or_refused_cleanly(
    world: World, data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(world.directory)  # relative paths stay in the test's directory
    argv, stdin = data.draw(invocations(world))
    with psycopg.connect(world.url, autocommit=True) as conn:
        before = digest(conn)
        outcome = run_cli("--database-url", world.url, *argv, input=stdin)
        check(outcome, before, digest(conn))


RAW = st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"caf\xe9", b"\x1b[2J", b"\x00x"[1:]]),
)
PROCESS_COMMANDS = [
    [b"routing", b"resolve", b"/x", b"-p", b"Loans core", b"--key", None],
    [b"rules", b"list", b"--search", None, b"--min-confidence", None],
    [b"rules", b"show", None],
    [b"review", b"approve", None],
    [b"projects", b"show", None],
    [b"files", b"show", None, b"-p", b"Loans core", b"--lines", None],
    [b"rules", b"import", b"-", b"-p", b"Loans core"],
    [b"users", b"add", None, b"--name", None, b"--org", b"acme-pay"],
]


@settings(FUZZ, max_examples=12)
@given(
    template=st.sampled_from(PROCESS_COMMANDS),
    values=st.lists(RAW, min_size=2, max_size=2),
    stdin=RAW,
)
def test_bytes_that_are_not_utf8_never_crash_the_process(
    world: World, template: list[bytes | None], values: list[bytes], stdin: bytes
) -> None:
    filled = iter(values)
    argv = [part if part is not None else next(filled) for part in template]
    with psycopg.connect(world.url, autocommit=True) as conn:
        before = digest(conn)
        completed = subprocess.run(
            [bytes(CONSOLE_SCRIPT), b"--database-url", world.url.encode(), *argv],
            input=stdin,
            capture_output=True,
            timeout=60,
            cwd=world.directory,
            env={**os.environ, "COLUMNS": "200"},
        )
        outcome = Outcome(
            completed.returncode,
            completed.stdout.decode(errors="replace"),
            completed.stderr.decode(errors="replace"),
        )
        assert completed.returncode >= 0, f"killed by signal {-completed.returncode}"
        check(outcome, before, digest(conn))
