"""The bad-input catalogue: one row per mistake a user makes, across the commands, each with
its exit code and the words of its one-line message, and the database byte-for-byte unchanged
(the owner's digest of every table before and after). Then secrets: a password given in the
connection string never shows up in any output, error or traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from migrationpilot_cli import refs
from tests.conftest import CONSOLE_SCRIPT, Server, run_cli, with_database
from tests.snapshots import digest

RULE = {
    "name": "a",
    "category": "decision",
    "confidence": 0.5,
    "source_file": "src/LOANCALC.cbl",
    "source_start_line": 1,
    "source_end_line": 2,
    "description": "the rule",
    "logic": "if a then b",
}
# Well-formed ids that name nothing: a whole uuid no row has (ids are random, version 4), a
# start of an id too long to start one by chance, and two rules the fixture adds whose ids
# share the start TWINS.
UNKNOWN = "5e1f0000-0000-4000-8000-00000000dead"
UNKNOWN_START = "5e1f00000000400"
TWINS = "abcd0000"


def _jsonl(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


# Input files the catalogue refers to as {dir}/NAME.
FILES: dict[str, str | bytes] = {
    "malformed.jsonl": _jsonl(RULE) + '{"name": "b", oops}\n',
    "confidence.jsonl": _jsonl({**RULE, "confidence": 1.5}),
    "typo.jsonl": _jsonl({**RULE, "confidance": 0.5}),
    "category.jsonl": _jsonl({**RULE, "category": "wizardry"}),
    "not-utf8.jsonl": b'{"name": "\xff"}\n',
    "unknown-file.jsonl": _jsonl({**RULE, "source_file": "src/NOPE.cbl"}),
    "past-the-end.jsonl": _jsonl({**RULE, "source_end_line": 99999}),
    "backwards.jsonl": _jsonl({**RULE, "source_start_line": 5, "source_end_line": 2}),
    "twice.jsonl": _jsonl(RULE, RULE),
    "scalar.json": '[42, {"name": "x"}]',  # the first bad record in the file is named
    "nan.jsonl": '{"name": "a", "confidence": NaN}\n',
    "empty.jsonl": "\n\n",
    "case-rule-text.jsonl": _jsonl({"rule_id": "one", "name": "x", "inputs": {}, "expected": 1}),
    "case-rule-number.jsonl": _jsonl({"rule_id": 7, "name": "x", "inputs": {}, "expected": 1}),
    "case-rule-short.jsonl": _jsonl(
        {"rule_id": UNKNOWN[:8], "name": "x", "inputs": {}, "expected": 1}
    ),
    "case-unknown-rule.jsonl": _jsonl(
        {"rule_id": UNKNOWN, "name": "x", "inputs": {}, "expected": 1}
    ),
    "case-inputs-array.json": json.dumps(
        [{"rule_id": UNKNOWN, "name": "x", "inputs": [], "expected": 1}]
    ),
    "nul.jsonl": _jsonl({**RULE, "logic": "a\u0000b"}),
    "keys.tsv": "/api/loans/1/interest\tuser-1\nno-slash\tuser-2\n",
}

# (id, arguments, exit code, fragment of the one-line message). {dir} is the input files'
# directory, {p} the demo project's id, {r} a demo rule's id as a table shows it (its first 8
# hex digits); --as is lead@acme.test, the demo's admin.
CATALOGUE: list[tuple[str, list[str], int, str]] = [
    # wrong enum values
    ("target language", ["projects", "create", "X", "--source", "cobol", "--target", "rust",
                         "--org", "acme-lending"], 2, "Invalid value for '--target'"),
    ("source language", ["projects", "create", "X", "--source", "basic", "--target", "java",
                         "--org", "acme-lending"], 2, "Invalid value for '--source'"),
    ("project status filter", ["projects", "list", "--status", "done"], 2,
     "Invalid value for '--status'"),
    ("user role", ["users", "set-role", "ana@acme.test", "overlord"], 2,
     "Invalid value for 'role'"),
    ("routing export format", ["routing", "export", "-p", "{p}", "--format", "apache"], 2,
     "Invalid value for '--format'"),
    ("file language", ["files", "list", "-p", "{p}", "--language", "klingon"], 2,
     "--language 'klingon': expected one of"),
    ("rule sort key", ["rules", "list", "--sort", "bogus"], 2, "--sort 'bogus': expected one of"),
    ("missing enum option", ["projects", "create", "X", "--target", "java", "--org",
                             "acme-lending"], 2, "Missing option '--source'. Choose from: cobol,"),
    # out-of-range numbers
    ("min confidence 1.5", ["rules", "list", "--min-confidence", "1.5"], 2,
     "--min-confidence 1.5: expected a number between 0 and 1"),
    ("confidence range inverted", ["rules", "list", "--min-confidence", "0.9",
                                   "--max-confidence", "0.1"], 2, "is above --max-confidence"),
    ("limit 0", ["rules", "list", "--limit", "0"], 2, "Invalid value for '--limit'"),
    ("edit confidence 1.5", ["--as", "lead@acme.test", "rules", "edit", "{r}", "--confidence",
                             "1.5", "--reason", "x"], 2, "--confidence 1.5: expected a number"),
    ("traffic 101", ["--as", "lead@acme.test", "routing", "add", "-p", "{p}", "--name", "x",
                     "--pattern", "/x", "--target", "x-svc", "--traffic", "101"], 2,
     "--traffic 101: expected a percentage from 0 to 100"),
    ("set traffic -1", ["--as", "lead@acme.test", "routing", "set", "loan-interest", "-p", "{p}",
                        "--traffic", "-1"], 2, "--traffic -1"),
    ("retention 0", ["tenants", "create", "X", "--slug", "okslug", "--retention-days", "0"], 2,
     "--retention-days must be at least 1"),
    ("lines past the end", ["files", "show", "src/LOANCALC.cbl", "-p", "{p}", "--lines",
                            "500-600"], 2, "the file has lines 1-98"),
    ("version past the last", ["rules", "diff", "{r}", "--to", "99"], 4, "has no version 99"),
    # malformed JSON and bad records, named by line or index
    ("malformed JSON on line 2", ["rules", "import", "{dir}/malformed.jsonl", "-p", "{p}"], 2,
     "malformed.jsonl line 2: malformed JSON"),
    ("malformed JSON on stdin line 2", ["rules", "import", "-", "-p", "{p}", "<malformed.jsonl"],
     2, "stdin line 2: malformed JSON"),
    ("record confidence 1.5", ["rules", "import", "{dir}/confidence.jsonl", "-p", "{p}"], 2,
     "line 1: confidence 1.5 is not between 0 and 1"),
    ("misspelt field", ["rules", "import", "{dir}/typo.jsonl", "-p", "{p}"], 2,
     "unknown field 'confidance' (did you mean 'confidence'?)"),
    ("record category", ["rules", "import", "{dir}/category.jsonl", "-p", "{p}"], 2,
     "category 'wizardry' is not one of"),
    ("not UTF-8", ["rules", "import", "{dir}/not-utf8.jsonl", "-p", "{p}"], 2, "not UTF-8 text"),
    ("source file not in project", ["rules", "import", "{dir}/unknown-file.jsonl", "-p", "{p}"],
     2, "source_file 'src/NOPE.cbl' is not a file of project"),
    ("line range past the end", ["rules", "import", "{dir}/past-the-end.jsonl", "-p", "{p}"],
     2, "source_end_line 99999 is past the end"),
    ("line range backwards", ["rules", "import", "{dir}/backwards.jsonl", "-p", "{p}"], 2,
     "source_end_line 2 is before source_start_line 5"),
    ("the same rule twice", ["rules", "import", "{dir}/twice.jsonl", "-p", "{p}"], 2,
     "line 2: the same rule as line 1"),
    ("array element not an object", ["rules", "import", "{dir}/scalar.json", "-p", "{p}"], 2,
     "scalar.json [0]: expected a JSON object, got a number"),
    ("NaN", ["rules", "import", "{dir}/nan.jsonl", "-p", "{p}"], 2, "NaN is not a JSON value"),
    ("NUL character in a record", ["rules", "import", "{dir}/nul.jsonl", "-p", "{p}"], 2,
     "nul.jsonl line 1: a string holds \\u0000, which PostgreSQL cannot store"),
    ("no records", ["rules", "import", "{dir}/empty.jsonl", "-p", "{p}"], 2, "no rules found"),
    ("case rule_id as text", ["tests", "import", "{dir}/case-rule-text.jsonl", "-p", "{p}"], 2,
     "case-rule-text.jsonl line 1: rule_id must be a rule's full uuid, got \"one\""),
    ("case rule_id a number", ["tests", "import", "{dir}/case-rule-number.jsonl", "-p", "{p}"],
     2, "case-rule-number.jsonl line 1: rule_id must be a rule's full uuid, got 7"),
    ("case rule_id a start", ["tests", "import", "{dir}/case-rule-short.jsonl", "-p", "{p}"], 2,
     f"case-rule-short.jsonl line 1: rule_id must be a rule's full uuid, got \"{UNKNOWN[:8]}\""),
    ("case of an unknown rule", ["tests", "import", "{dir}/case-unknown-rule.jsonl", "-p", "{p}"],
     2, f"case-unknown-rule.jsonl line 1: rule_id {UNKNOWN} is not a rule of project"),
    ("case inputs not an object", ["tests", "import", "{dir}/case-inputs-array.json", "-p",
                                   "{p}"], 2, "inputs must be an object"),
    ("bad path in --keys-from", ["routing", "resolve", "-p", "{p}", "--keys-from",
                                 "{dir}/keys.tsv"], 2, "keys.tsv line 2"),
    # unknown ids and names
    ("unknown rule", ["rules", "show", UNKNOWN], 4, f"no rule {UNKNOWN}"),
    ("unknown start of a rule id", ["rules", "show", UNKNOWN_START], 4,
     f"no rule with an id starting {UNKNOWN_START} (or not visible to you)"),
    ("ambiguous start of a rule id", ["rules", "show", TWINS], 2,
     f"{TWINS} is ambiguous: {TWINS}-0000-4000-8000-000000000001, {TWINS}-0000-4000-8000-"),
    ("rule id not hex", ["rules", "show", "abcx"], 2,
     "argument: 'abcx' is not an id: give the id shown in a listing (e.g. 3f2a9c1e), at least"
     " 4 of its first hex digits, or the full uuid"),
    ("rule id too short", ["rules", "show", "999"], 2, "argument: '999' is not an id"),
    ("unknown test case", ["tests", "show", UNKNOWN], 4, f"no test case {UNKNOWN}"),
    ("unknown start of a test case id", ["tests", "show", UNKNOWN_START], 4,
     f"no test case with an id starting {UNKNOWN_START} (or not visible to you)"),
    ("unknown project", ["projects", "show", "No such"], 4, "no project 'No such'"),
    ("unknown file", ["files", "show", "nope.cbl", "-p", "{p}"], 4, "no file 'nope.cbl'"),
    ("unknown routing rule", ["--as", "lead@acme.test", "routing", "set", "nope", "-p", "{p}",
                              "--traffic", "5"], 4, "no routing rule 'nope'"),
    ("unknown organization", ["users", "add", "x@y.test", "--name", "X", "--org", "nope"], 4,
     "no organization 'nope'"),
    ("unknown tenant", ["orgs", "create", "X", "--slug", "x", "--tenant", "nope"], 4,
     "no tenant 'nope'"),
    ("unknown rule in a review", ["--as", "lead@acme.test", "review", "approve", "{r}",
                                  UNKNOWN], 4,
     f"rule {UNKNOWN} not found or not visible to you; nothing was reviewed"),
    ("unknown start in a review", ["--as", "lead@acme.test", "review", "approve", "{r}",
                                   UNKNOWN_START], 4,
     f"no rule with an id starting {UNKNOWN_START}"),
    ("ambiguous start in a review", ["--as", "lead@acme.test", "review", "approve", TWINS], 2,
     f"{TWINS} is ambiguous"),
    ("review id not a number", ["--as", "lead@acme.test", "review", "approve", "abc"], 2,
     "'abc' is not an id"),
    ("unknown acting user", ["--as", "nobody@acme.test", "projects", "list"], 4,
     "no user with email nobody@acme.test"),
    # other bad values
    ("slug with a space", ["tenants", "create", "X", "--slug", "Bad Slug"], 2, "--slug 'Bad Slug'"),
    ("not an email", ["users", "add", "not-an-email", "--name", "X", "--org", "acme-lending"], 2,
     "'not-an-email' is not an email address"),
    ("blank project name", ["projects", "create", "  ", "--source", "cobol", "--target", "java",
                            "--org", "acme-lending"], 2, "the project name must not be empty"),
    ("blank review comment", ["--as", "lead@acme.test", "review", "reject", "{r}", "--comment",
                              " "], 2, "--comment must not be empty"),
    ("blank edit reason", ["--as", "lead@acme.test", "rules", "edit", "{r}", "--name", "x",
                           "--reason", " "], 2, "--reason must not be empty"),
    ("nothing to edit", ["--as", "lead@acme.test", "rules", "edit", "{r}", "--reason", "x"], 2,
     "nothing to change"),
    ("blank target", ["--as", "lead@acme.test", "routing", "add", "-p", "{p}", "--name", "x",
                      "--pattern", "/x", "--target", "  "], 2, "--target '  ': must not be blank"),
    ("target with a line break", ["--as", "lead@acme.test", "routing", "add", "-p", "{p}",
                                  "--name", "x", "--pattern", "/x", "--target", "a\nb"], 2,
     "--target 'a\\nb': no control characters"),
    ("target too long", ["--as", "lead@acme.test", "routing", "add", "-p", "{p}", "--name", "x",
                         "--pattern", "/x", "--target", "s" * 51], 2,
     "--target: 51 characters; at most 50"),
    ("pattern without a slash", ["--as", "lead@acme.test", "routing", "add", "-p", "{p}",
                                 "--name", "x", "--pattern", "x", "--target", "x-svc"], 2,
     "a pattern is a path starting with '/'"),
    ("routing name taken", ["--as", "lead@acme.test", "routing", "add", "-p", "{p}", "--name",
                            "loan-interest", "--pattern", "/zz", "--target", "x-svc"], 2,
     "already has a rule with that name"),
    ("sticky header with a space", ["routing", "export", "-p", "{p}", "--format", "nginx",
                                    "--sticky-header", "bad header"], 2, "--sticky-header"),
    ("unknown encoding", ["files", "import", "{dir}", "-p", "{p}", "--encoding", "bogus"], 2,
     "--encoding 'bogus': unknown encoding"),
    ("bad lock timeout", ["db", "migrate", "--lock-timeout", "forever"], 2,
     "--lock-timeout 'forever'"),
    ("unknown migration target", ["db", "migrate", "--target", "0"], 2,
     "no migration file has that version"),
    ("review without an acting user", ["review", "approve", "{r}"], 2,
     "reviews need an acting user"),
    ("workflow skips a state", ["projects", "set-status", "{p}", "completed"], 1,
     "cannot move from analysis_complete to completed"),
    # unreadable paths and paths that escape a directory
    ("missing file", ["rules", "import", "{dir}/missing.jsonl", "-p", "{p}"], 2,
     "missing.jsonl: cannot read (No such file or directory)"),
    ("a directory for a file", ["rules", "import", "{dir}", "-p", "{p}"], 2,
     "cannot read (Is a directory)"),
    ("missing --keys-from", ["routing", "resolve", "/x", "-p", "{p}", "--keys-from",
                             "{dir}/missing.tsv"], 2, "--keys-from"),
    ("missing source tree", ["files", "import", "{dir}/missing", "-p", "{p}"], 2,
     "not a directory"),
    ("missing generated tree", ["generated", "import", "{dir}/missing", "-p", "{p}"], 2,
     "not a directory"),
    ("export into a missing directory", ["rules", "export", "-p", "{p}", "--output",
                                         "{dir}/missing/rules.md"], 2, "cannot write"),
    ("export through a symlink out of the directory", ["generated", "export", "{dir}/escape",
                                                       "-p", "{p}"], 2, "lead outside"),
    # bad connection strings (the database the test uses is untouched by definition)
    ("unparsable URL", ["--database-url", "not a url", "db", "status"], 2,
     "not a valid connection string"),
    ("bad sslmode", ["--database-url", "postgresql://u@127.0.0.1:1/db?sslmode=bogus", "db",
                     "status"], 3, 'invalid sslmode value: "bogus"'),
]  # fmt: skip


@dataclass(frozen=True)
class Demo:
    url: str
    project: UUID
    rule: str
    directory: Path


@pytest.fixture(scope="module")
def demo(
    server: Server, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    name = server.create_database(template=template_database)
    url = with_database(server.url, name)
    directory = tmp_path_factory.mktemp("bad-inputs")
    for file_name, content in FILES.items():
        path = directory / file_name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (directory / "escape").mkdir()
    (directory / "escape" / "src").symlink_to(tmp_path_factory.mktemp("outside"))
    try:
        result = run_cli("--database-url", url, "demo", "load")
        assert result.exit_code == 0, result.stderr
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT id FROM projects WHERE name = 'Loans core'").fetchone()
            assert row is not None
            rule = conn.execute(
                "SELECT id FROM business_rules WHERE project_id = %s"
                " ORDER BY source_file, source_start_line, name LIMIT 1",
                (row[0],),
            ).fetchone()
            assert rule is not None
            # Two more rules whose ids share a start (TWINS), for the ambiguous references.
            conn.execute(
                "INSERT INTO business_rules (id, project_id, name, description, category,"
                " source_file, source_start_line, source_end_line, source_code, logic,"
                " confidence)"
                " SELECT (%s || '-0000-4000-8000-00000000000' || n)::uuid, %s, 'twin ' || n,"
                " 'a twin', 'decision', 'src/LOANCALC.cbl', 1, 2, 'X', 'x', 0.5"
                " FROM generate_series(1, 2) AS n",
                (TWINS, row[0]),
            )
        yield Demo(url, row[0], refs.short(rule[0]), directory)
    finally:
        server.drop_database(name)


def test_the_catalogue_is_large_and_its_names_are_unique() -> None:
    names = [name for name, *_ in CATALOGUE]
    assert len(names) >= 30
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("arguments", "code", "fragment"),
    [
        pytest.param(arguments, code, fragment, id=name)
        for name, arguments, code, fragment in CATALOGUE
    ],
)
def test_bad_input_is_one_line_an_exit_code_and_no_change(
    demo: Demo, arguments: list[str], code: int, fragment: str
) -> None:
    stdin = None
    words = [a.format(dir=demo.directory, p=demo.project, r=demo.rule) for a in arguments]
    if words[-1].startswith("<"):
        stdin = (demo.directory / words.pop()[1:]).read_text()
    with psycopg.connect(demo.url, autocommit=True) as conn:
        before = digest(conn)
        result = run_cli("--database-url", demo.url, *words, input=stdin)
        after = digest(conn)
    assert (result.exit_code, result.stdout) == (code, ""), result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr
    assert after == before


# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------

SECRET = "Pw-s3cret-4711"
UNREACHABLE = [
    f"postgresql://mp:{SECRET}@127.0.0.1:1/mp",
    f"postgresql://mp@127.0.0.1:1/mp?password={SECRET}",
    f"host=127.0.0.1 port=1 user=mp password={SECRET} dbname=mp",
    f"host=127.0.0.1 port=1 user=mp password='{SECRET} x' dbname=mp",
]
UNPARSABLE = [
    f"postgresql://mp:{SECRET}%ZZ@127.0.0.1:1/mp",  # libpq quotes the bad token: the password
    f"host=127.0.0.1 password={SECRET} dbname",
    f"postgresql://mp:{SECRET}@127.0.0.1:1/mp?nonsense=1",
]


def _with_password(url: str) -> tuple[str, str, str]:
    """The test database as a URL and as key=value, each with a password, and the password:
    the server's own where it needs one (so the commands work), else an invented one (a
    trusting server ignores it)."""
    parts = psycopg.conninfo.conninfo_to_dict(url)
    secret = str(parts.pop("password", None) or SECRET)
    keywords = psycopg.conninfo.make_conninfo(
        **{k: str(v) for k, v in parts.items()}, password=secret
    )
    query = "&".join(f"{k}={v}" for k, v in parts.items() if k not in ("user", "dbname"))
    uri = f"postgresql://{parts.get('user', '')}:{secret}@/{parts['dbname']}?{query}"
    return uri, keywords, secret


@pytest.mark.parametrize("form", ["uri", "keywords"])
@pytest.mark.parametrize(
    "variable", ["--database-url", "MIGRATIONPILOT_DATABASE_URL", "DATABASE_URL"]
)
def test_a_password_of_a_working_connection_appears_in_no_output(
    database_url: str, monkeypatch: pytest.MonkeyPatch, form: str, variable: str
) -> None:
    uri, keywords, secret = _with_password(database_url)
    url = uri if form == "uri" else keywords
    given: list[str] = []
    if variable == "--database-url":
        given = ["--database-url", url]
    else:
        monkeypatch.setenv(variable, url)
    outputs = []
    for command, code in (
        (["db", "info", "--format", "json"], 0),
        (["db", "status", "--format", "json"], 0),
        (["db", "migrate"], 0),
        (["db", "verify"], 0),
        (["projects", "list", "--format", "json"], 0),
        (["projects", "show", "nope"], 4),
        (["--as", "nobody@x.test", "rules", "list"], 4),
    ):
        result = run_cli(*given, *command)
        assert result.exit_code == code, (command, result.stderr)
        outputs.append(result.stdout + result.stderr)
    assert not [output for output in outputs if secret in output]
    info = json.loads(run_cli(*given, "db", "info", "--format", "json").stdout)
    assert "***" in info["database_url"]


@pytest.mark.parametrize("url", UNREACHABLE + UNPARSABLE)
def test_a_password_appears_in_no_connection_error(url: str) -> None:
    result = run_cli("--database-url", url, "db", "status")
    assert result.exit_code == (3 if url in UNREACHABLE else 2)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("url", [UNREACHABLE[0], UNREACHABLE[2], UNPARSABLE[0]])
def test_debug_tracebacks_carry_no_password(url: str, tmp_path: Path) -> None:
    """--debug shows the traceback (Python's, without local variables): the messages in it are
    the masked ones, and the parse error that quotes the password is cut from the chain."""
    completed = subprocess.run(
        [str(CONSOLE_SCRIPT), "--debug", "db", "status"],
        env={
            **os.environ,
            "MIGRATIONPILOT_DATABASE_URL": url,
            "MIGRATIONPILOT_HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode != 0
    assert "Traceback" in completed.stderr
    assert SECRET not in completed.stdout + completed.stderr
