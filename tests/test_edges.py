"""The input and output edges (issue 19, first stage): bytes that are not UTF-8, numbers
out of any sane range, deep JSON, long paths and names, each refused with its exact one-line
message, exit 2 and the database unchanged; every libpq form of a password masked; control
characters in data shown escaped to a person and kept exact in the machine formats.

The bad-bytes cases run the installed console script with bytes arguments (an argv that is
not UTF-8 cannot be passed as str), as a shell would.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migrationpilot_cli.db.connect import mask_password
from migrationpilot_cli.output import printable
from tests.conftest import CONSOLE_SCRIPT, Server, run_cli, with_database
from tests.snapshots import digest

P = b"Loans core"
AS_LEAD = [b"--as", b"lead@acme.test"]
DEEP = 100_000

# (id, arguments, stdin, the exact stderr line). {dir} is a directory of input files (below),
# {long} a path whose last part is 300 characters. Every case exits 2 with nothing on stdout.
CASES: list[tuple[str, list[bytes], bytes | None, str]] = [
    ("key not UTF-8 (was a segfault)",
     [b"routing", b"resolve", b"/api/loans/1/interest", b"-p", P, b"--key", b"\xff"], None,
     "Invalid value for '--key': '\\xff' is not UTF-8 text (byte 0xff at character 1)"
     " (see `migrationpilot routing resolve --help`)"),
    ("lone surrogate in an argument",
     [b"projects", b"create", b"ab\xed\xa0\x80", b"--source", b"cobol", b"--target", b"java",
      b"--org", b"acme-lending"], None,
     "Invalid value for 'name': 'ab\\xed\\xa0\\x80' is not UTF-8 text (byte 0xed at character"
     " 3) (see `migrationpilot projects create --help`)"),
    ("lone surrogate in a global option",
     [b"--as", b"\xed\xa0\x80@acme.test", b"projects", b"list"], None,
     "Invalid value for '--as': '\\xed\\xa0\\x80@acme.test' is not UTF-8 text (byte 0xed at"
     " character 1) (see `migrationpilot --help`)"),
    ("5001-digit integer",
     [b"rules", b"list", b"--limit", b"9" * 5001], None,
     "Invalid value for '--limit': '" + "9" * 40 + "...' is not a whole number from"
     " -2147483648 to 2147483647 (see `migrationpilot rules list --help`)"),
    ("integer past SQL integer",
     [b"tenants", b"create", b"T", b"--slug", b"tee", b"--max-projects", b"99999999999"], None,
     "Invalid value for '--max-projects': '99999999999' is not a whole number from"
     " -2147483648 to 2147483647 (see `migrationpilot tenants create --help`)"),
    ("number a float makes 0",
     [b"rules", b"list", b"--min-confidence", b"1e-9999999999999999999"], None,
     "Invalid value for '--min-confidence': '1e-9999999999999999999' is out of range: too"
     " large or too small a number (see `migrationpilot rules list --help`)"),
    ("timeout nan", [b"db", b"wait", b"--timeout", b"nan"], None,
     "Invalid value for '--timeout': 'nan' is not a decimal number (such as 0.5 or 10)"
     " (see `migrationpilot db wait --help`)"),
    ("timeout inf", [b"db", b"wait", b"--timeout", b"inf"], None,
     "Invalid value for '--timeout': 'inf' is not a decimal number (such as 0.5 or 10)"
     " (see `migrationpilot db wait --help`)"),
    ("timeout negative", [b"db", b"wait", b"--timeout", b"-1"], None,
     "Invalid value for '--timeout': -1.0 is not in the range x>=0."
     " (see `migrationpilot db wait --help`)"),
    ("a digit that is not ASCII", [*AS_LEAD, b"review", b"approve", "²".encode()], None,
     "argument: '²' is not an id: give the id shown in a listing (e.g. 3f2a9c1e), at least 4"
     " of its first hex digits, or the full uuid"),
    ("stdin not UTF-8", [b"rules", b"import", b"-", b"-p", P],
     b'{"name": "ok"}\n{"name": "\xff"}\n',
     "stdin line 2: not UTF-8 text (byte 0xff at offset 25)"),
    ("JSON nested 100,000 levels", [b"rules", b"import", b"{dir}/deep.jsonl", b"-p", P], None,
     "{dir}/deep.jsonl line 1: nested deeper than 100 levels of objects and arrays"),
    ("JSON array element nested too deep", [b"rules", b"import", b"{dir}/deep.json", b"-p", P],
     None, "{dir}/deep.json [0]: nested deeper than 100 levels of objects and arrays"),
    ("source file name not UTF-8", [b"files", b"import", b"{dir}/tree", b"-p", P], None,
     "file name 'src/bad\\xff.cbl' is not UTF-8 text (byte 0xff at character 8): rename the"
     " file or --exclude it"),
    ("300-character export path", [b"rules", b"export", b"-p", P, b"--output", b"{long}"], None,
     "Invalid value for '--output' / '-o': a part of '{long40}...' is 300 bytes long; a file"
     " name has at most 255 (see `migrationpilot rules export --help`)"),
    ("300-character export directory", [b"generated", b"export", b"{long}", b"-p", P], None,
     "Invalid value for 'directory': a part of '{long40}...' is 300 bytes long; a file name"
     " has at most 255 (see `migrationpilot generated export --help`)"),
    ("10,000-character project name",
     [b"projects", b"create", b"x" * 10_000, b"--source", b"cobol", b"--target", b"java",
      b"--org", b"acme-lending"], None,
     "the project name is too long: 10000 characters, at most 255"),
]  # fmt: skip


@dataclass(frozen=True)
class Demo:
    url: str
    directory: Path


@pytest.fixture(scope="module")
def demo(
    server: Server, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    name = server.create_database(template=template_database)
    url = with_database(server.url, name)
    directory = tmp_path_factory.mktemp("edges")
    (directory / "deep.jsonl").write_text('{"a":' * DEEP + "1" + "}" * DEEP + "\n")
    (directory / "deep.json").write_text("[" + "[" * DEEP + "]" * DEEP + "]")
    (directory / "tree" / "src").mkdir(parents=True)
    (directory / "tree" / "src" / "GOOD.cbl").write_text("       IDENTIFICATION DIVISION.\n")
    (directory / "tree" / "src").joinpath(os.fsdecode(b"bad\xff.cbl")).write_text("X\n")
    try:
        result = run_cli("--database-url", url, "demo", "load")
        assert result.exit_code == 0, result.stderr
        yield Demo(url, directory)
    finally:
        server.drop_database(name)


def _console(
    arguments: list[bytes], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [bytes(CONSOLE_SCRIPT), *arguments],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("arguments", "stdin", "message"),
    [pytest.param(arguments, stdin, message, id=name) for name, arguments, stdin, message in CASES],
)
def test_bad_bytes_and_numbers_are_one_line_exit_2_and_no_change(
    demo: Demo, arguments: list[bytes], stdin: bytes | None, message: str
) -> None:
    long = str(demo.directory / ("d" * 300))
    words = {b"{dir}": str(demo.directory), b"{long}": long}
    argv = [os.fsencode(words[a]) if a in words else a for a in arguments]
    argv = [a.replace(b"{dir}", os.fsencode(demo.directory)) for a in argv]
    expected = message.replace("{dir}", str(demo.directory)).replace("{long40}", long[:40])
    with psycopg.connect(demo.url, autocommit=True) as conn:
        before = digest(conn)
        completed = _console([b"--database-url", demo.url.encode(), *argv], stdin)
        after = digest(conn)
    stderr = completed.stderr.decode()
    assert (completed.returncode, completed.stdout) == (2, b""), stderr
    assert stderr == f"error: {expected}\n"
    assert after == before


def test_a_timeout_of_minus_zero_is_zero(database_url: str) -> None:
    result = run_cli("--database-url", database_url, "db", "wait", "--timeout", "-0")
    assert (result.exit_code, result.stderr) == (0, "")


def test_a_sticky_key_is_hashed_as_its_bytes() -> None:
    """What `routing resolve` does with a key: its bytes go to murmur3, UTF-8 as Unleash's
    SDKs send them; a line of --keys-from that is not UTF-8 (read with surrogateescape) as
    the bytes it was, as the proxies hash a header (issue 24; an argument that is not UTF-8
    is still refused, see CASES). Nothing else that is not text reaches native code."""
    import mmh3

    from migrationpilot_cli.routing.decision import bucket

    assert bucket("g", "user-1") == mmh3.hash(b"g:user-1", 0, signed=False) % 100 + 1
    assert bucket("g", "\udcff") == mmh3.hash(b"g:\xff", 0, signed=False) % 100 + 1
    with pytest.raises(UnicodeEncodeError):
        bucket("g", "\ud800")  # never reaches native code


# ---------------------------------------------------------------------------------------------
# Secrets: every libpq form
# ---------------------------------------------------------------------------------------------

SECRET = "Pw-s3cret-4711"
MASKED = [
    (f"POSTGRESQL://u:{SECRET}@host/db", "POSTGRESQL://u:***@host/db"),
    (f"Postgres://u:{SECRET}@h1,h2:5433/db", "Postgres://u:***@h1,h2:5433/db"),
    (f"postgresql://u@h/db?PASSWORD={SECRET}", "postgresql://u@h/db?PASSWORD=***"),
    (f"postgresql://u@h/db?sslmode=require&password={SECRET}&connect_timeout=2",
     "postgresql://u@h/db?sslmode=require&password=***&connect_timeout=2"),
    (f"postgresql://u@h/db?Password={SECRET}#x", "postgresql://u@h/db?Password=***#x"),
    (f"postgresql://u@h/db?sslpassword={SECRET}", "postgresql://u@h/db?sslpassword=***"),
    (f"host=h password={SECRET} dbname=d", "host=h password=*** dbname=d"),
    (f"host=h PASSWORD={SECRET}", "host=h PASSWORD=***"),
    (f"host=h password='{SECRET} x' dbname=d", "host=h password=*** dbname=d"),
    (f"host=h password = {SECRET} dbname=d", "host=h password = *** dbname=d"),
    (f"password='{SECRET}\\' x' host=h", "password=*** host=h"),
    (f"password={SECRET}\\ x host=h", "password=*** host=h"),
    (f"password='{SECRET}", "password=***"),  # unterminated: all of it
    (f"host=h sslpassword={SECRET}", "host=h sslpassword=***"),
    (f"cannot connect to postgresql://u:{SECRET}@h/db: refused",
     "cannot connect to postgresql://u:***@h/db: refused"),
    ("service=prod passfile=/home/u/.pgpass", "service=prod passfile=/home/u/.pgpass"),
    ("postgresql://u@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require"),
]  # fmt: skip


@pytest.mark.parametrize(("given", "shown"), MASKED)
def test_every_form_of_password_is_masked(given: str, shown: str) -> None:
    assert mask_password(given) == shown


@pytest.mark.parametrize(
    "url",
    [
        f"POSTGRESQL://mp:{SECRET}@127.0.0.1:1/mp",
        f"postgresql://mp@127.0.0.1:1/mp?PASSWORD={SECRET}",
        f"host=127.0.0.1 port=1 PASSWORD={SECRET}",
        f"host=127.0.0.1 port=1 password = '{SECRET} x'",
    ],
)
def test_no_connection_error_or_debug_traceback_shows_a_password(url: str, tmp_path: Path) -> None:
    for debug in ([], ["--debug"]):
        completed = subprocess.run(
            [str(CONSOLE_SCRIPT), *debug, "--database-url", url, "db", "status"],
            env={**os.environ, "MIGRATIONPILOT_HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode in (2, 3), completed.stderr
        assert SECRET not in completed.stdout + completed.stderr
        assert ("Traceback" in completed.stderr) == bool(debug)
        assert completed.stderr.splitlines()[-1].startswith("error: ")


# ---------------------------------------------------------------------------------------------
# Terminal output
# ---------------------------------------------------------------------------------------------

HOSTILE = "Evil\x1b[31mred\x1b]0;title\x07\rX\x9b1m\x00\x7f"
SHOWN = "Evil\\x1b[31mred\\x1b]0;title\\x07\\x0dX\\x9b1m\\x00\\x7f"


def test_printable_escapes_controls_and_keeps_layout_only_when_asked() -> None:
    assert printable(HOSTILE.replace("\x00", "")) == SHOWN.replace("\\x00", "")
    assert printable("a\tb\nc") == "a\tb\nc"
    assert printable("a\tb\nc", keep_layout=False) == "a\\x09b\\x0ac"
    assert printable("bad\udcff") == "bad\\xff"
    assert printable("naïve ünïcode \u2028") == "naïve ünïcode \u2028"


def test_control_characters_are_escaped_in_tables_and_records(mp: Any) -> None:
    name = HOSTILE.replace("\x00", "")
    description = f"one\ttwo\r\n{name}"
    assert mp("tenants", "create", "T", "--slug", "tee").exit_code == 0
    assert mp("orgs", "create", "O", "--slug", "oh", "--tenant", "tee").exit_code == 0
    created = mp("projects", "create", name, "--description", description, "--source",
                 "cobol", "--target", "java", "--org", "oh", "--format", "json")  # fmt: skip
    assert created.exit_code == 0, created.stderr
    shown = SHOWN.replace("\\x00", "")
    for command in (
        ["projects", "list", "--format", "table"],
        ["projects", "show", created_id(created.stdout), "--format", "table"],
    ):
        result = mp(*command)
        assert result.exit_code == 0, result.stderr
        assert shown in result.stdout
        assert not set(result.stdout) & {"\x1b", "\x07", "\r", "\x9b", "\x7f"}
    # A message naming the value escapes it too, and stays one line.
    missing = mp("projects", "show", name + "\n2")
    assert missing.exit_code == 4 and missing.stderr.startswith("error: no project 'Evil")
    assert missing.stderr.count("\n") == 1 and "\x1b" not in missing.stderr


def created_id(stdout: str) -> str:
    return str(json.loads(stdout)["id"])


def test_machine_formats_keep_control_characters_exact(mp: Any) -> None:
    name = HOSTILE.replace("\x00", "") + "\ttab\nnewline\\"
    assert mp("tenants", "create", "T", "--slug", "tee").exit_code == 0
    assert mp("orgs", "create", "O", "--slug", "oh", "--tenant", "tee").exit_code == 0
    created = mp("projects", "create", name, "--source", "cobol", "--target", "java",
                 "--org", "oh", "--format", "json")  # fmt: skip
    assert created.exit_code == 0, created.stderr
    assert json.loads(created.stdout)["name"] == name

    listed = mp("projects", "list", "--format", "json").stdout
    assert [p["name"] for p in json.loads(listed)] == [name]
    assert "\x9b" not in listed and "\\u009b" in listed  # C1 escaped, the value the same
    line = mp("projects", "list", "--format", "jsonl").stdout
    assert json.loads(line)["name"] == name and line.count("\n") == 1
    table = list(csv.reader(io.StringIO(mp("projects", "list", "--format", "csv").stdout)))
    assert table[1][1] == name
    tsv = mp("projects", "list", "--format", "tsv").stdout
    assert tsv.count("\n") == 1 and len(tsv.split("\t")) == 8  # one row, eight cells
    cell = tsv.split("\t")[1]
    assert cell == name.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace(
        "\r", "\\r"
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_wait_from_the_environment_must_be_finite(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MIGRATIONPILOT_WAIT", value)
    result = run_cli("db", "status")
    assert (result.exit_code, result.stdout) == (2, "")
    assert (
        result.stderr
        == f"error: MIGRATIONPILOT_WAIT='{value}': expected a number of seconds >= 0\n"
    )
