"""Rule documents without a database: every record checked, errors naming the record and the
field; the Markdown review report."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from migrationpilot_cli import jsonrecords, rulefiles
from migrationpilot_cli.errors import BadInput

RULE = {
    "name": "Monthly interest",
    "category": "calculation",
    "confidence": 0.95,
    "source_file": "src/INTEREST.cbl",
    "source_start_line": 10,
    "source_end_line": 12,
    "description": "Interest for one month of a loan.",
    "logic": "balance times the yearly rate over twelve",
}


def read(text: str, name: str = "rules.jsonl") -> list[rulefiles.RuleRecord]:
    return list(rulefiles.checked(jsonrecords.parse(text, name)))


def lines(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def test_required_fields_only_gives_defaults_for_the_optional_ones() -> None:
    [rule] = read(lines(RULE))
    assert rule == rulefiles.RuleRecord(
        location="rules.jsonl line 1",
        name="Monthly interest",
        category="calculation",
        confidence=Decimal("0.95"),
        source_file="src/INTEREST.cbl",
        source_start_line=10,
        source_end_line=12,
        description="Interest for one month of a loan.",
        logic="balance times the yearly rate over twelve",
    )
    assert (rule.inputs, rule.outputs, rule.formula, rule.source_code) == ([], [], None, None)


def test_every_field_json_array_and_exact_numbers() -> None:
    full = {
        **RULE,
        "name": "  Padded name  ",
        "confidence": 1,
        "description": "d",
        "logic": "l",
        "formula": "f",
        "source_code": "COMPUTE X = Y.",
        "inputs": [{"name": "rate", "max": 0.125}],
        "outputs": ["interest"],
    }
    [first, second] = read(json.dumps([RULE, full], indent=2), "rules.json")
    assert (first.location, second.location) == ("rules.json [0]", "rules.json [1]")
    assert second.name == "Padded name"
    assert second.confidence == Decimal(1)
    assert second.inputs == [{"name": "rate", "max": Decimal("0.125")}]
    assert (second.description, second.logic, second.formula) == ("d", "l", "f")
    assert second.source_code == "COMPUTE X = Y."


@pytest.mark.parametrize(
    "change, message",
    [
        ({"confidence": 1.5}, "rules.jsonl line 2: confidence 1.5 is not between 0 and 1"),
        ({"confidence": -0.1}, "rules.jsonl line 2: confidence -0.1 is not between 0 and 1"),
        ({"confidence": True}, "rules.jsonl line 2: confidence true is not a number"),
        ({"confidence": "0.9"}, "rules.jsonl line 2: confidence '0.9' is not a number"),
        (
            {"category": "math"},
            "rules.jsonl line 2: category 'math' is not one of calculation, validation,"
            " decision, transformation, workflow, constraint",
        ),
        ({"name": "  "}, "rules.jsonl line 2: name '  ' must be a non-empty string"),
        ({"name": None}, "rules.jsonl line 2: missing name"),
        ({"source_file": 7}, "rules.jsonl line 2: source_file 7 must be a non-empty string"),
        (
            {"source_start_line": 0},
            "rules.jsonl line 2: source_start_line 0 must be a positive integer",
        ),
        (
            {"source_end_line": 2.5},
            "rules.jsonl line 2: source_end_line 2.5 must be a positive integer",
        ),
        (
            {"source_end_line": True},
            "rules.jsonl line 2: source_end_line true must be a positive integer",
        ),
        (
            {"source_start_line": 2**31},
            "rules.jsonl line 2: source_start_line 2147483648 must be a positive integer",
        ),
        (
            {"source_end_line": 9},
            "rules.jsonl line 2: source_end_line 9 is before source_start_line 10",
        ),
        ({"inputs": "rate"}, "rules.jsonl line 2: inputs 'rate' must be an array"),
        ({"outputs": {"a": 1}}, 'rules.jsonl line 2: outputs {"a":1} must be an array'),
        # The description and the logic are required (NOT NULL in the schema): text, not blank.
        ({"logic": ["x"]}, 'rules.jsonl line 2: logic ["x"] must be a non-empty string'),
        ({"logic": " \n "}, "rules.jsonl line 2: logic ' \\n ' must be a non-empty string"),
        ({"logic": None}, "rules.jsonl line 2: missing logic"),
        ({"description": 7}, "rules.jsonl line 2: description 7 must be a non-empty string"),
        ({"description": ""}, "rules.jsonl line 2: description '' must be a non-empty string"),
        ({"description": None}, "rules.jsonl line 2: missing description"),
        ({"formula": ["x"]}, 'rules.jsonl line 2: formula ["x"] must be a string or null'),
        ({"source_code": 1}, "rules.jsonl line 2: source_code 1 must be a string or null"),
        (
            {"confidance": 0.9},
            "rules.jsonl line 2: unknown field 'confidance' (did you mean 'confidence'?)",
        ),
        (
            {"zzz": 1},
            "rules.jsonl line 2: unknown field 'zzz' (expected name, description, category,"
            " logic, confidence, source_file, source_start_line, source_end_line, formula,"
            " source_code, inputs, outputs)",
        ),
        (
            {"review_status": "approved"},
            "rules.jsonl line 2: review_status is set by `migrationpilot review`, not by an import",
        ),
    ],
)
def test_a_bad_field_names_the_line_and_the_field(change: dict[str, Any], message: str) -> None:
    second = {**RULE, "name": "Second", **change}
    with pytest.raises(BadInput) as refused:
        read(lines(RULE, second))
    assert refused.value.message.startswith(message)
    assert refused.value.exit_code == 2


def test_missing_fields_are_named_together_and_arrays_name_their_index() -> None:
    with pytest.raises(BadInput, match=r"^rules\.json \[1\]: missing category, source_end_line$"):
        read(json.dumps([RULE, {**RULE, "category": None, "source_end_line": None}]), "rules.json")
    bare = {k: v for k, v in RULE.items() if k not in ("description", "logic")}
    with pytest.raises(BadInput, match=r"^rules\.jsonl line 2: missing description, logic$"):
        read(lines(RULE, bare))
    with pytest.raises(BadInput, match=r"^rules\.json \[0\]: category 'math' is not one of "):
        read(json.dumps([{**RULE, "category": "math"}]), "rules.json")


def test_malformed_json_names_its_line() -> None:
    with pytest.raises(BadInput, match=r"^rules\.jsonl line 3: malformed JSON"):
        read(lines(RULE, {**RULE, "name": "Two"}) + '{"name": "oops",\n')


def test_a_nul_character_is_found_escaped_anywhere_and_refused_raw() -> None:
    """JSON spells a NUL only as the escape \\u0000, which is all the parser looks for before
    searching a record; a raw NUL is not JSON at all, and a literal backslash-u0000 is text."""
    nested = {**RULE, "inputs": [{"names": ["ok", "a\x00b"]}]}
    in_key = {**RULE, "outputs": [{"x\x00": 1}]}
    for record in (nested, in_key):
        with pytest.raises(BadInput, match=r"^rules\.jsonl line 2: a string holds"):
            read(lines(RULE, record))
        with pytest.raises(BadInput, match=r"^rules\.json \[1\]: a string holds"):
            read(json.dumps([RULE, record]), "rules.json")
    with pytest.raises(BadInput, match=r"^rules\.jsonl line 1: malformed JSON"):
        read(lines({**RULE, "logic": "@"}).replace("@", "\x00"))
    [rule] = read(lines({**RULE, "logic": "\\u0000"}))
    assert rule.logic == "\\u0000"


FIRST = UUID("3f2a9c1e-0000-4000-8000-000000000001")


def _report_rule(**values: Any) -> dict[str, Any]:
    return {
        "id": FIRST,
        "name": "Monthly interest",
        "category": "calculation",
        "confidence": Decimal("0.950"),
        "review_status": "pending",
        "reviewed_by": None,
        "reviewed_at": None,
        "review_comments": None,
        "description": None,
        "logic": None,
        "formula": None,
        "inputs": [],
        "outputs": [],
        "source_file": "src/INTEREST.cbl",
        "source_start_line": 10,
        "source_end_line": 12,
        **values,
    }


def _report(rules: list[dict[str, Any]]) -> str:
    """The report of ``rules`` (in report order), with the groups the database would count."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for rule in rules:
        key = (rule["category"], rule["review_status"])
        group = groups.setdefault(key, {"category": key[0], "review_status": key[1], "rules": 0,
                                        "confidence": Decimal(0)})  # fmt: skip
        group["rules"] += 1
        group["confidence"] += rule["confidence"]
    project = {"name": "Loans core", "source_language": "cobol", "target_language": "java"}
    exported = dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.UTC)
    return "".join(rulefiles.review_report(project, list(groups.values()), rules, exported))


def test_review_report_has_a_summary_and_a_section_per_category() -> None:
    reviewed = dt.datetime(2025, 3, 4, 9, 30, tzinfo=dt.UTC)
    report = _report(
        [
            _report_rule(
                review_status="approved",
                reviewed_by="ana@acme.test",
                reviewed_at=reviewed,
                review_comments="checked with\nfinance",
                description="Interest | per month",
                logic="balance * rate / 12",
                formula="a `b` c",
                inputs=["balance", "rate"],
                outputs=["interest"],
            ),
            _report_rule(
                id=UUID("3f2a9c1e-0000-4000-8000-000000000003"),
                name="Age",
                category="validation",
                confidence=Decimal("0.7"),
                source_end_line=10,
            ),
            _report_rule(
                id=UUID("3f2a9c1e-0000-4000-8000-000000000002"),
                name="Floor",
                category="constraint",
                confidence=Decimal("0.5"),
            ),
        ]
    )
    assert report.startswith(
        "# Business rules of Loans core\n\ncobol to java, 3 rules, exported 2025-03-05 12:00 UTC\n"
    )
    assert (
        "| category | rules | pending | approved | rejected | needs_clarification |"
        " average confidence |"
    ) in report
    assert "| calculation | 1 | 0 | 1 | 0 | 0 | 0.950 |" in report
    assert "| **total** | 3 | 2 | 1 | 0 | 0 | 0.717 |" in report
    # Categories in the database's order, only those with rules.
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings == ["## Calculation (1)", "## Validation (1)", "## Constraint (1)"]
    # The whole id: two rules may share the 8 hex digits a table shows (as these do).
    assert f"### Monthly interest (rule {FIRST})" in report
    assert "- **Review:** approved by ana@acme.test on 2025-03-04" in report
    assert "- **Reviewer's comment:** checked with finance" in report
    assert "- **Source:** `src/INTEREST.cbl` lines 10-12" in report
    assert "- **Inputs:** `balance`, `rate`" in report
    assert "Interest \\| per month" in report
    assert "**Logic:** balance * rate / 12" in report
    assert "**Formula:** ``a `b` c``" in report
    assert "- **Source:** `src/INTEREST.cbl` line 10\n" in report
    assert "- **Review:** pending\n" in report
