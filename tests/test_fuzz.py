"""Injection fuzzing: every free-text input of the CLI, with quotes, semicolons, backslashes,
LIKE wildcards, right-to-left text, emoji, control characters and very long strings.

Each value is either stored and read back exactly (through ``--format json``; names, comments
and reasons lose surrounding whitespace by design) or refused with one line on stderr: exit 2
for a NUL character, which PostgreSQL cannot store, or for a value that is blank. Never
executed, never a traceback. Hypothesis runs derandomized with a modest number of examples;
each test function gets its own database with the demo loaded.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Outcome

ADMIN = "lead@acme.test"
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


def verdict(value: str, *, stripped: bool = True) -> str:
    """What the CLI must do with ``value`` in a free-text field."""
    if "\x00" in value:
        return "nul"
    if stripped and not value.strip():
        return "blank"
    return "stored"


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
    @given(name=TEXT, description=TEXT, framework=TEXT)
    def check(name: str, description: str, framework: str) -> None:
        expected = "nul" if "\x00" in name + description + framework else verdict(name)
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


def test_rule_edits_keep_any_text_and_reason(demo: Callable[..., Outcome]) -> None:
    @FUZZ
    @given(name=TEXT, description=TEXT, logic=TEXT, formula=TEXT, reason=TEXT)
    def check(name: str, description: str, logic: str, formula: str, reason: str) -> None:
        verdicts = [verdict(v) for v in (name, reason)] + [
            verdict(v, stripped=False) for v in (description, logic, formula)
        ]
        expected = "nul" if "nul" in verdicts else "blank" if "blank" in verdicts else "stored"
        result = demo(
            "rules", "edit", "1", "--name", name, "--description", description,
            "--logic", logic, "--formula", formula, "--reason", reason, "--format", "json",
        )  # fmt: skip
        if not assert_refused_or(result, expected):
            return
        edit = json_of(result)
        rule = json_of(demo("rules", "show", "1", "--format", "json"))
        assert (rule["name"], rule["description"], rule["logic"], rule["formula"]) == (
            name.strip(),
            _or_none(description),
            _or_none(logic),
            _or_none(formula),
        )
        if edit["outcome"] == "updated":
            history = json_of(demo("rules", "history", "1", "--format", "json"))
            assert history[-1]["change_reason"] == reason.strip()

    check()


def test_search_terms_are_matched_literally(
    demo: Callable[..., Outcome], conn: psycopg.Connection[Any]
) -> None:
    """A rule named after the term is found; a term of LIKE wildcards matches only rules
    that contain those characters."""
    counter = itertools.count()

    @FUZZ
    @given(term=TEXT)
    def check(term: str) -> None:
        name = f"probe {next(counter)} {term} end"  # inside: names lose outer whitespace
        edited = demo("rules", "edit", "2", "--name", name, "--reason", "search probe")
        if not assert_refused_or(edited, verdict(term, stripped=False)):
            assert not assert_refused_or(
                demo("rules", "list", "--search", term), verdict(term, stripped=False)
            )
            return
        found = json_of(demo("rules", "list", "--search", term, "--format", "json"))
        assert 2 in [rule["id"] for rule in found]
        if set(term) <= set("%_\\"):
            literal = conn.execute(
                "SELECT id FROM business_rules WHERE strpos(name, %(t)s) > 0"
                " OR strpos(description, %(t)s) > 0 OR strpos(logic, %(t)s) > 0"
                " OR strpos(formula, %(t)s) > 0 ORDER BY id",
                {"t": term},
            ).fetchall()
            assert sorted(rule["id"] for rule in found) == [i for (i,) in literal]

    check()


def test_review_comments_are_kept_verbatim(demo: Callable[..., Outcome]) -> None:
    verbs = itertools.cycle(["reject", "clarify"])  # alternate, so every review changes the rule

    @FUZZ
    @given(comment=TEXT)
    def check(comment: str) -> None:
        verb = next(verbs)
        result = demo("review", verb, "3", "--comment", comment, "--format", "json")
        if not assert_refused_or(result, verdict(comment)):
            next(verbs)  # the rule did not change: keep the alternation
            return
        rule = json_of(demo("rules", "show", "3", "--format", "json"))
        assert rule["review_comments"] == comment.strip()

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
        name = f"imported {next(counter)} {text}"
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
        expected = "nul" if "\x00" in text + item else "stored"
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
    demo: Callable[..., Outcome], conn: psycopg.Connection[Any]
) -> None:
    counter = itertools.count()

    @FUZZ
    @given(text=TEXT, key=TEXT)
    def check(text: str, key: str) -> None:
        name = f"case {next(counter)} {text}"
        record = {
            "rule_id": 1,
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
        assert (case["description"], case["inputs"], case["expected"]) == (
            text,
            record["inputs"],
            record["expected"],
        )

    check()
