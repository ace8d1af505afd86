"""Injection fuzzing: every free-text input of the CLI, with quotes, semicolons, backslashes,
LIKE wildcards, right-to-left text, emoji, control characters and very long strings.

Each value is either stored and read back exactly (through ``--format json``; names, comments
and reasons lose surrounding whitespace by design) or refused with one line on stderr: exit 2
for a NUL character, which PostgreSQL cannot store, for a value that is blank, or for one
longer than its column (the design's varchar lengths). Never executed, never a traceback.
Hypothesis runs derandomized with a modest number of examples; each test function gets its
own database with the demo loaded.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Outcome

ADMIN = "lead@acme.test"
# The design's varchar lengths of the free-text columns these tests fill.
NAME_LENGTH = 255  # projects.name, business_rules.name
FRAMEWORK_LENGTH = 100  # projects.target_framework
NASTY = [
    "'",
    '"',
    "';",
    "'; DROP TABLE users; --",
    "\\",
    "\\'",
    "%",
    "_",
    "%_%",
    "\\%",
    "a\tb",
    "a\nb",
    "\r\n",
    "\u202e\u05e9\u05dc\u05d5\u05dd",  # right-to-left override, Hebrew
    "\u0645\u0631\u062d\u0628\u0627",  # Arabic
    "\U0001f600\U0001f469\u200d\U0001f469\u200d\U0001f467",  # emoji, a ZWJ sequence
    "\u2028",
    "$1",
    "%s",
    "%(x)s",
    "{}",
    "{0}",
    "NULL",
    "--",
    "/*",
    "$$",
    "\x1b[31m",
    "[bold]x[/bold]",
    " ",
]
_PIECES = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)
TEXT = st.one_of(
    st.lists(_PIECES, min_size=1, max_size=6).map("".join),
    st.builds(lambda piece, n: piece * n, st.sampled_from([*NASTY, "x"]), st.integers(500, 2000)),
)


def up_to(limit: int) -> st.SearchStrategy[str]:
    """Text for a column of ``limit`` characters: as often cut to fit (so the longest values
    that fit, multi-byte characters included, are stored) as left whole (so those that do not
    are refused)."""
    return st.one_of(TEXT.map(lambda text: text[:limit]), TEXT)


FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def demo(mp: Any, conn: psycopg.Connection[Any]) -> Callable[..., Outcome]:
    """The demo, with room for many projects; returns the CLI acting as its admin."""
    for command in (("demo", "load"), ("tenants", "set", "acme-bank", "--max-projects", "10000")):
        result = mp(*command)
        assert result.exit_code == 0, result.stderr
    return lambda *args, input=None: mp("--as", ADMIN, *args, input=input)


@pytest.fixture
def rule_ids(demo: Any, conn: psycopg.Connection[Any]) -> list[UUID]:
    """The demo's rules, in a stable order (their source location, then name)."""
    return [
        rule_id
        for (rule_id,) in conn.execute(
            "SELECT id FROM business_rules ORDER BY source_file, source_start_line, name"
        )
    ]


def verdict(value: str, *, stripped: bool = True, limit: int | None = None) -> str:
    """What the CLI must do with ``value`` in a free-text field (of at most ``limit``
    characters, as stored)."""
    if "\x00" in value:
        return "nul"
    if stripped and not value.strip():
        return "blank"
    if limit is not None and len(value.strip() if stripped else value) > limit:
        return "long"
    return "stored"


def first_refusal(verdicts: list[str]) -> str:
    """The refusal a command with several fields gives: the CLI checks NUL characters and
    blanks before anything reaches the database, which refuses a value too long."""
    return next((v for v in ("nul", "blank", "long") if v in verdicts), "stored")


def assert_refused_or(result: Outcome, expected: str) -> bool:
    """True when the value was stored (exit 0); otherwise the refusal is the expected one:
    exit 2, one line. Never a traceback."""
    assert "Traceback" not in result.stderr
    if expected == "stored":
        assert result.exit_code == 0, result.stderr
        return True
    assert result.exit_code == 2, (expected, result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert ("NUL" in result.stderr or "u0000" in result.stderr) == (expected == "nul")
    assert ("too long" in result.stderr) == (expected == "long"), result.stderr
    return False


def json_of(result: Outcome) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _or_none(value: str) -> str | None:
    return value.strip() or None


def test_projects_keep_any_name_description_and_framework(demo: Callable[..., Outcome]) -> None:
    seen: set[str] = set()
    counter = itertools.count()

    @FUZZ
    @given(name=up_to(NAME_LENGTH), description=TEXT, framework=up_to(FRAMEWORK_LENGTH))
    def check(name: str, description: str, framework: str) -> None:
        expected = first_refusal(
            [
                verdict(name, limit=NAME_LENGTH),
                verdict(description, stripped=False),
                verdict(framework, stripped=False, limit=FRAMEWORK_LENGTH),
            ]
        )
        # `--` ends the options, so that a name such as "--" or "-x" is the name.
        if expected == "stored" and name.strip() in seen:
            result = demo("projects", "create", "--source", "cobol", "--target", "java", "--", name)
            assert result.exit_code == 1 and "already exists" in result.stderr
            return
        result = demo(
            "projects", "create", "--source", "cobol", "--target", "java",
            "--description", description, "--framework", framework, "--format", "json", "--", name,
        )  # fmt: skip
        if not assert_refused_or(result, expected):
            return
        seen.add(name.strip())
        created = json_of(result)
        shown = json_of(demo("projects", "show", "--format", "json", "--", name.strip()))
        for record in (created, shown):
            assert (record["name"], record["description"], record["target_framework"]) == (
                name.strip(),
                description,
                framework,
            )
        next(counter)

    check()
    assert next(counter) > 10  # most examples were stored, not refused


def test_rule_edits_keep_any_text_and_reason(
    demo: Callable[..., Outcome], rule_ids: list[UUID]
) -> None:
    rule_id = rule_ids[0]
    short = rule_id.hex[:8]  # as a table shows it

    @FUZZ
    @given(name=up_to(NAME_LENGTH), description=TEXT, logic=TEXT, formula=TEXT, reason=TEXT)
    def check(name: str, description: str, logic: str, formula: str, reason: str) -> None:
        # A rule always has a name, a description and its logic: none of them can be blank.
        verdicts = [verdict(name, limit=NAME_LENGTH)] + [
            verdict(v) for v in (description, logic, reason)
        ]
        verdicts.append(verdict(formula, stripped=False))
        result = demo(
            "rules", "edit", short, "--name", name, "--description", description,
            "--logic", logic, "--formula", formula, "--reason", reason, "--format", "json",
        )  # fmt: skip
        if not assert_refused_or(result, first_refusal(verdicts)):
            return
        edit = json_of(result)
        assert edit["id"] == str(rule_id)
        rule = json_of(demo("rules", "show", short, "--format", "json"))
        assert rule["id"] == str(rule_id)
        assert (rule["name"], rule["description"], rule["logic"], rule["formula"]) == (
            name.strip(),
            description.strip(),
            logic.strip(),
            _or_none(formula),
        )
        if edit["outcome"] == "updated":
            history = json_of(demo("rules", "history", short, "--format", "json"))
            assert history[-1]["change_reason"] == reason.strip()

    check()


def test_search_terms_are_matched_literally(
    demo: Callable[..., Outcome], conn: psycopg.Connection[Any], rule_ids: list[UUID]
) -> None:
    """A rule described by the term is found; a term of LIKE wildcards matches only rules
    that contain those characters. (The description, not the name: a term may be longer
    than a name may be.)"""
    counter = itertools.count()
    probe = rule_ids[1]

    @FUZZ
    @given(term=TEXT)
    def check(term: str) -> None:
        text = f"probe {next(counter)} {term} end"  # inside: the text loses outer whitespace
        edited = demo(
            "rules", "edit", str(probe), "--description", text, "--reason", "search probe"
        )
        if not assert_refused_or(edited, verdict(term, stripped=False)):
            assert not assert_refused_or(
                demo("rules", "list", "--search", term), verdict(term, stripped=False)
            )
            return
        found = json_of(demo("rules", "list", "--search", term, "--format", "json"))
        assert str(probe) in [rule["id"] for rule in found]
        if set(term) <= set("%_\\"):
            literal = conn.execute(
                "SELECT id FROM business_rules WHERE strpos(name, %(t)s) > 0"
                " OR strpos(description, %(t)s) > 0 OR strpos(logic, %(t)s) > 0"
                " OR strpos(formula, %(t)s) > 0",
                {"t": term},
            ).fetchall()
            assert sorted(rule["id"] for rule in found) == sorted(str(i) for (i,) in literal)

    check()


def test_review_comments_are_kept_verbatim(
    demo: Callable[..., Outcome], rule_ids: list[UUID]
) -> None:
    verbs = itertools.cycle(["reject", "clarify"])  # alternate, so every review changes the rule
    rule = str(rule_ids[2])

    @FUZZ
    @given(comment=TEXT)
    def check(comment: str) -> None:
        verb = next(verbs)
        result = demo("review", verb, rule, "--comment", comment, "--format", "json")
        if not assert_refused_or(result, verdict(comment)):
            next(verbs)  # the rule did not change: keep the alternation
            return
        assert [row["id"] for row in json_of(result)] == [rule]
        shown = json_of(demo("rules", "show", rule, "--format", "json"))
        assert shown["review_comments"] == comment.strip()

    check()


def test_routing_names_patterns_and_targets_are_stored_or_refused(
    demo: Callable[..., Outcome],
) -> None:
    @FUZZ
    @given(name=TEXT, pattern=TEXT.map(lambda t: "/" + t), target=TEXT)
    def check(name: str, pattern: str, target: str) -> None:
        result = demo(
            "routing", "add", "-p", "Loans core", "--name", name, "--pattern", pattern,
            "--target", target, "--format", "json",
        )  # fmt: skip
        assert "Traceback" not in result.stderr
        assert result.exit_code in (0, 2), result.stderr
        if result.exit_code:
            assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
            return
        shown = json_of(demo("routing", "show", "-p", "Loans core", "--format", "json", "--", name))
        assert (shown["name"], shown["pattern"], shown["target"]) == (name, pattern, target)
        resolved = demo("routing", "resolve", "-p", "Loans core", "--", pattern)
        assert resolved.exit_code == 0, resolved.stderr
        assert demo("routing", "remove", "-p", "Loans core", "--", name).exit_code == 0

    check()


def test_lookups_by_any_text_find_nothing_or_refuse_cleanly(demo: Callable[..., Outcome]) -> None:
    @FUZZ
    @given(text=TEXT)
    def check(text: str) -> None:
        for command in (
            ["projects", "show", "--", text],
            ["files", "show", "-p", "Loans core", "--", text],
            ["generated", "show", "-p", "Loans core", "--", text],
            ["users", "show", "--", text],
            ["orgs", "show", "--", text],
            ["routing", "show", "-p", "Loans core", "--", text],
            ["routing", "resolve", "-p", "Loans core", "--key", text, "--", text],
            ["rules", "list", "--file", text],
        ):
            result = demo(*command)
            assert "Traceback" not in result.stderr
            if result.exit_code:
                assert result.exit_code in (2, 4), (command, result.stderr)
                assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1

    check()


RULE = {
    "category": "decision",
    "confidence": 0.5,
    "source_file": "src/LOANCALC.cbl",
    "source_start_line": 1,
    "source_end_line": 2,
}


def test_imported_rule_fields_are_kept_verbatim(
    demo: Callable[..., Outcome], conn: psycopg.Connection[Any]
) -> None:
    counter = itertools.count()

    @FUZZ
    @given(text=TEXT, item=TEXT, ascii_only=st.booleans())
    def check(text: str, item: str, ascii_only: bool) -> None:
        # Cut to fit the column: the fields under test here are the long texts below (for a
        # name too long, see test_an_imported_name_too_long_is_refused_naming_its_line).
        name = f"imported {next(counter)} {text}"[:NAME_LENGTH]
        record = {
            **RULE,
            "name": name,
            "description": text,
            "logic": text,
            "formula": text,
            "source_code": text,
            "inputs": [item, {item: text}],
            "outputs": [text],
        }
        line = json.dumps(record, ensure_ascii=ascii_only)
        result = demo("rules", "import", "-", "-p", "Loans core", input=line + "\n")
        # The description and the logic are required: not blank.
        expected = first_refusal(["nul" if "\x00" in item else "stored", verdict(text)])
        if not assert_refused_or(result, expected):
            assert "stdin line 1" in result.stderr
            return
        row = conn.execute("SELECT id FROM business_rules WHERE name = %s", (name.strip(),))
        (rule_id,) = row.fetchone() or (None,)
        rule = json_of(demo("rules", "show", str(rule_id), "--format", "json"))
        for field in ("description", "logic", "formula", "source_code", "inputs", "outputs"):
            assert rule[field] == record[field], field

    check()


def test_imported_test_cases_are_kept_verbatim(
    demo: Callable[..., Outcome], conn: psycopg.Connection[Any], rule_ids: list[UUID]
) -> None:
    counter = itertools.count()

    @FUZZ
    @given(text=TEXT, key=TEXT)
    def check(text: str, key: str) -> None:
        name = f"case {next(counter)} {text}"
        record = {
            "rule_id": str(rule_ids[0]),
            "name": name,
            "description": text,
            "inputs": {key: text},
            "expected": [text, {key: None}],
        }
        result = demo("tests", "import", "-", "-p", "Loans core", input=json.dumps(record) + "\n")
        expected = "nul" if "\x00" in text + key else "stored"
        if not assert_refused_or(result, expected):
            return
        row = conn.execute("SELECT id FROM test_cases WHERE name = %s", (name.strip(),))
        (case_id,) = row.fetchone() or (None,)
        case = json_of(demo("tests", "show", str(case_id), "--format", "json"))
        assert (case["rule_id"], case["description"], case["inputs"], case["expected"]) == (
            record["rule_id"],
            text,
            record["inputs"],
            record["expected"],
        )

    check()


def test_a_framework_too_long_is_refused_not_cut(
    demo: Callable[..., Outcome], conn: psycopg.Connection[Any]
) -> None:
    """Stored exactly or refused, also past the column's length, where PostgreSQL cuts the
    trailing spaces of a varchar silently instead of refusing."""
    fits = "\U0001f600" * FRAMEWORK_LENGTH  # characters, not bytes
    created = demo(
        "projects", "create", "--source", "cobol", "--target", "java", "--framework", fits,
        "--format", "json", "--", "Fits",
    )  # fmt: skip
    assert json_of(created)["target_framework"] == fits
    before = conn.execute("SELECT count(*) FROM projects").fetchone()
    for n, framework in enumerate(["x" * (FRAMEWORK_LENGTH + 1), "x" + " " * FRAMEWORK_LENGTH]):
        result = demo(
            "projects", "create", "--source", "cobol", "--target", "java", "--framework",
            framework, "--", f"Too long {n}",
        )  # fmt: skip
        assert not assert_refused_or(result, "long"), repr(framework)
    assert conn.execute("SELECT count(*) FROM projects").fetchone() == before


def test_an_imported_name_too_long_is_refused_naming_its_line(
    demo: Callable[..., Outcome], conn: psycopg.Connection[Any]
) -> None:
    """A bulk command's error names the offending input (DESIGN.md), also when the value is
    longer than its column."""

    def record(name: str) -> str:
        return json.dumps({**RULE, "name": name, "description": "d", "logic": "l"}) + "\n"

    fits = "\u00e9" * NAME_LENGTH  # characters, not bytes
    stored = demo("rules", "import", "-", "-p", "Loans core", input=record(fits))
    assert stored.exit_code == 0, stored.stderr
    before = conn.execute("SELECT count(*) FROM business_rules").fetchone()
    result = demo(
        "rules", "import", "-", "-p", "Loans core",
        input=record("fine") + record("n" * (NAME_LENGTH + 1)),
    )  # fmt: skip
    assert not assert_refused_or(result, "long")
    assert "stdin line 2" in result.stderr and "name" in result.stderr, result.stderr
    assert conn.execute("SELECT count(*) FROM business_rules").fetchone() == before
