"""`tests import | list | show`: test cases of business rules, imported all or nothing."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migrationpilot_cli import jsonrecords
from migrationpilot_cli.errors import BadInput
from tests.conftest import rows

ANA = ("--as", "ana@acme.test")
BOB = ("--as", "bob@globex.test")

# Amounts with more digits than a float holds: they must come back exactly.
CASES = """\
{"rule_id": RULE_A, "name": "standard rate", "inputs": {"principal": 1000, "rate": 0.0525}, \
"expected": {"interest": 4.375}}

{"rule_id": RULE_A, "name": "zero principal", "description": "edge", "inputs": {"principal": 0}, \
"expected": 0}
{"rule_id": RULE_B, "name": "big", "inputs": {}, "expected": 1234567890.12345678901234567890}
"""


def create_project(mp: Any, name: str, *acting: str) -> uuid.UUID:
    created = mp(*acting, "projects", "create", name, "--source", "cobol", "--target", "java", "-q")
    assert created.exit_code == 0, created.stderr
    return uuid.UUID(created.stdout.strip())


def insert_rule(conn: psycopg.Connection[Any], project_id: uuid.UUID, name: str) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO business_rules (organization_id, project_id, name, category, confidence,"
        " description, source_file, source_start_line, source_end_line, source_code, logic)"
        " SELECT organization_id, id, %s, 'calculation', 0.9, 'Interest on the principal.',"
        " 'src/LOANCALC.cbl', 1, 2, 'COMPUTE WS-INTEREST = WS-PRINCIPAL * WS-RATE.',"
        " 'interest = principal * rate' FROM projects WHERE id = %s"
        " RETURNING id",
        (name, project_id),
    ).fetchone()
    assert row is not None
    assert isinstance(row[0], uuid.UUID)
    return row[0]


@pytest.fixture
def world(acme: Any, conn: psycopg.Connection[Any]) -> dict[str, uuid.UUID]:
    """Loans core (acme-pay) with rules A and B, Cards (acme-cards) with rule C, Ops (globex)
    with rule G."""
    loans = create_project(acme, "Loans core", *ANA)
    cards = create_project(acme, "Cards", "--as", "carl@acme.test")
    ops = create_project(acme, "Ops", *BOB)
    return {
        "loans": loans,
        "A": insert_rule(conn, loans, "monthly interest"),
        "B": insert_rule(conn, loans, "large amounts"),
        "C": insert_rule(conn, cards, "card limit"),
        "G": insert_rule(conn, ops, "globex rule"),
    }


def with_rules(text: str, world: dict[str, uuid.UUID], *, quoted: bool = True) -> str:
    """RULE_A ... in a record become the rule's full uuid as a JSON string (in an expected
    message, with ``quoted=False``, the bare uuid as the CLI prints it); SHORT_A becomes the
    first 8 hex digits of rule A's id, as a table shows it, quoted."""
    for key in ("A", "B", "C", "G"):
        rule_id = str(world[key])
        text = text.replace(f"RULE_{key}", f'"{rule_id}"' if quoted else rule_id)
        text = text.replace(f"SHORT_{key}", f'"{world[key].hex[:8]}"')
    return text


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Files are named relative to the working directory, as a user types them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def import_cases(mp: Any, *args: str, input: str | None = None) -> Any:
    return mp(*ANA, "tests", "import", *args, "--project", "Loans core", input=input)


def stored(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return rows(
        conn,
        "SELECT rule_id, name, description, inputs::text, expected::text, project_id"
        " FROM test_cases ORDER BY name, rule_id",
    )


def test_import_json_lines_stores_every_case_exactly_and_audits(
    acme: Any, world: dict[str, uuid.UUID], workdir: Path, conn: psycopg.Connection[Any]
) -> None:
    (workdir / "cases.jsonl").write_text(with_rules(CASES, world))
    result = import_cases(acme, "cases.jsonl", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
        "waited_seconds": 0.0,
    }
    loans = world["loans"]
    assert stored(conn) == [
        (world["B"], "big", None, "{}", "1234567890.12345678901234567890", loans),
        (
            world["A"],
            "standard rate",
            None,
            '{"rate": 0.0525, "principal": 1000}',
            '{"interest": 4.375}',
            loans,
        ),
        (world["A"], "zero principal", "edge", '{"principal": 0}', "0", loans),
    ]
    assert rows(
        conn,
        "SELECT action, resource_type, metadata->>'count', metadata->>'client'"
        " FROM audit_logs WHERE resource_type = 'test_case'",
    ) == [("test_case.create", "test_case", "3", "migrationpilot tests import")]


def test_array_file_and_stdin_import_the_same_cases(
    acme: Any, world: dict[str, uuid.UUID], workdir: Path, conn: psycopg.Connection[Any]
) -> None:
    records = [line for line in with_rules(CASES, world).splitlines() if line]
    (workdir / "cases.json").write_text("[\n  " + ",\n  ".join(records) + "\n]\n")
    first = import_cases(acme, "cases.json", "--format", "json")
    assert json.loads(first.stdout) == {
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
        "waited_seconds": 0.0,
    }
    again = import_cases(acme, "-", "--format", "json", input=with_rules(CASES, world))
    assert json.loads(again.stdout) == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 3,
        "waited_seconds": 0.0,
    }
    assert len(stored(conn)) == 3


def test_reimport_is_idempotent_then_updates_changed_cases(
    acme: Any, world: dict[str, uuid.UUID], workdir: Path, conn: psycopg.Connection[Any]
) -> None:
    cases = workdir / "cases.jsonl"
    cases.write_text(with_rules(CASES, world))
    import_cases(acme, "cases.jsonl")
    before = rows(conn, "SELECT id, updated_at FROM test_cases ORDER BY id")
    same = import_cases(acme, "cases.jsonl", "--format", "json")
    assert json.loads(same.stdout) == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 3,
        "waited_seconds": 0.0,
    }
    assert rows(conn, "SELECT id, updated_at FROM test_cases ORDER BY id") == before

    changed = with_rules(CASES, world).replace('"description": "edge", ', "")
    changed += with_rules(
        '{"rule_id": RULE_B, "name": "new", "inputs": {}, "expected": []}\n', world
    )
    cases.write_text(changed)
    result = import_cases(acme, "cases.jsonl", "--format", "json")
    assert json.loads(result.stdout) == {
        "inserted": 1,
        "updated": 1,
        "unchanged": 2,
        "waited_seconds": 0.0,
    }
    assert rows(conn, "SELECT description FROM test_cases WHERE name = 'zero principal'") == [
        (None,)
    ]
    # Audited per statement: the first import's three cases, then the one changed and the one
    # added; the import that changed nothing wrote nothing.
    assert rows(
        conn,
        "SELECT action, metadata->>'count' FROM audit_logs WHERE resource_type = 'test_case'"
        " ORDER BY ctid",
    ) == [("test_case.create", "3"), ("test_case.update", "1"), ("test_case.create", "1")]


GOOD = '{"rule_id": RULE_A, "name": "ok", "inputs": {}, "expected": 1}\n'


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "cases.jsonl",
            GOOD + '{"rule_id": 1, "name":\n',
            "cases.jsonl line 2: malformed JSON: Expecting value (column 23)",
        ),
        (
            "cases.json",
            "[\n" + GOOD + ",\n  {oops}\n]",
            "cases.json line 4: malformed JSON: Expecting property name enclosed in double quotes",
        ),
        ("cases.json", "[" + GOOD + ", 5]", "cases.json [1]: expected a JSON object, got a number"),
        (
            "cases.jsonl",
            GOOD + '{"rule_id": RULE_A, "name": "x", "inputs": {}, "expect": 1}\n',
            "cases.jsonl line 2: unknown field 'expect'; a test case has rule_id, name,"
            " description, inputs, expected",
        ),
        (
            "cases.jsonl",
            '{"rule_id": RULE_A, "name": "x", "inputs": {}}\n',
            "cases.jsonl line 1: missing field 'expected'",
        ),
        (
            "cases.jsonl",
            '{"rule_id": "rule A", "name": "x", "inputs": {}, "expected": 1}\n',
            'cases.jsonl line 1: rule_id must be a rule\'s full uuid, got "rule A"',
        ),
        (  # the short form a table shows names a rule on the command line, not in a file
            "cases.jsonl",
            '{"rule_id": SHORT_A, "name": "x", "inputs": {}, "expected": 1}\n',
            "cases.jsonl line 1: rule_id must be a rule's full uuid, got SHORT_A",
        ),
        (  # an integer id, as before issue 17
            "cases.jsonl",
            '{"rule_id": 7, "name": "x", "inputs": {}, "expected": 1}\n',
            "cases.jsonl line 1: rule_id must be a rule's full uuid, got 7",
        ),
        (
            "cases.jsonl",
            '{"rule_id": true, "name": "x", "inputs": {}, "expected": 1}\n',
            "cases.jsonl line 1: rule_id must be a rule's full uuid, got true",
        ),
        (
            "cases.jsonl",
            '{"rule_id": 7.0, "name": "x", "inputs": {}, "expected": 1}\n',
            "cases.jsonl line 1: rule_id must be a rule's full uuid, got 7.0",
        ),
        (
            "cases.jsonl",
            '{"rule_id": RULE_A, "name": "  ", "inputs": {}, "expected": 1}\n',
            'cases.jsonl line 1: name must be a non-empty string, got "  "',
        ),
        (
            "cases.jsonl",
            '{"rule_id": RULE_A, "name": "x", "inputs": [1, 2], "expected": 1}\n',
            "cases.jsonl line 1: inputs must be an object, got [1,2]",
        ),
        (
            "cases.jsonl",
            '{"rule_id": RULE_A, "name": "x", "description": 5, "inputs": {}, "expected": 1}\n',
            "cases.jsonl line 1: description must be a string, got 5",
        ),
        (
            "cases.jsonl",
            GOOD + "\n" + GOOD,
            "cases.jsonl line 3: rule_id RULE_A already has a case named 'ok' (cases.jsonl line 1)",
        ),
        (
            "cases.jsonl",
            '{"rule_id": RULE_A, "name": "x", "inputs": {}, "expected": NaN}\n',
            "cases.jsonl line 1: malformed JSON: NaN is not a JSON value",
        ),
        ("cases.jsonl", "\n  \n", "no test cases in the input"),
        (
            "cases.jsonl",
            b"\xff\xfe{}",
            "cases.jsonl line 1: not UTF-8 text (byte 0xff at offset 0)",
        ),
    ],
)
def test_a_bad_record_fails_the_whole_import_naming_it(
    acme: Any,
    world: dict[str, uuid.UUID],
    workdir: Path,
    conn: psycopg.Connection[Any],
    name: str,
    content: str | bytes,
    message: str,
) -> None:
    path = workdir / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(with_rules(content, world))
    result = import_cases(acme, name)
    expected = with_rules(message, world, quoted=False)
    assert (result.exit_code, result.stderr) == (2, f"error: {expected}\n")
    assert stored(conn) == []
    assert rows(conn, "SELECT count(*) FROM audit_logs WHERE resource_type = 'test_case'") == [(0,)]


@pytest.mark.parametrize("rule", ["C", "G", "missing"])
def test_a_rule_outside_the_project_fails_the_whole_import(
    acme: Any, world: dict[str, uuid.UUID], workdir: Path, conn: psycopg.Connection[Any], rule: str
) -> None:
    """Another project's rule, another organization's (invisible under RLS), or none at all:
    the first offender is named, and nothing is written."""
    rule_id = world.get(rule, uuid.uuid4())
    other = f'{{"rule_id": "{rule_id}", "name": "x", "inputs": {{}}, "expected": 1}}\n'
    (workdir / "cases.jsonl").write_text(
        with_rules(GOOD, world) + other + other.replace('"x"', '"y"')
    )
    result = import_cases(acme, "cases.jsonl")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: cases.jsonl line 2: rule_id {rule_id} is not a rule of project 'Loans core';"
        " see `migrationpilot rules list --project ...`\n"
    )
    assert stored(conn) == []


def test_missing_file_and_invisible_project(
    acme: Any, world: dict[str, uuid.UUID], workdir: Path
) -> None:
    missing = import_cases(acme, "nope.jsonl")
    assert missing.exit_code == 2
    assert missing.stderr == "error: nope.jsonl: cannot read (No such file or directory)\n"
    (workdir / "cases.jsonl").write_text(with_rules(GOOD, world))
    foreign = acme(*BOB, "tests", "import", "cases.jsonl", "--project", "Loans core")
    assert foreign.exit_code == 4


@pytest.fixture
def imported(acme: Any, world: dict[str, uuid.UUID], workdir: Path) -> dict[str, uuid.UUID]:
    (workdir / "cases.jsonl").write_text(with_rules(CASES, world))
    assert import_cases(acme, "cases.jsonl").exit_code == 0
    cards = with_rules('{"rule_id": RULE_C, "name": "limit", "inputs": {}, "expected": 1}', world)
    (workdir / "cards.jsonl").write_text(cards)
    assert acme("tests", "import", "cards.jsonl", "--project", "Cards").exit_code == 0
    return world


def test_list_columns_filters_and_formats(
    acme: Any, imported: dict[str, uuid.UUID], conn: psycopg.Connection[Any]
) -> None:
    ids = {name: case_id for case_id, name in rows(conn, "SELECT id, name FROM test_cases")}
    # By rule, then by name; rules go in the order of their ids.
    order = [
        name
        for _, name in sorted(
            [
                (imported["A"], "standard rate"),
                (imported["A"], "zero principal"),
                (imported["B"], "big"),
            ]
        )
    ]
    listed = acme(*ANA, "tests", "list", "--project", "Loans core")
    assert listed.exit_code == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [line[3] for line in lines] == order
    first = next(line for line in lines if line[3] == "standard rate")
    assert first[:6] == [
        str(ids["standard rate"]),
        str(imported["A"]),
        "monthly interest",
        "standard rate",
        '{"rate":0.0525,"principal":1000}',
        '{"interest":4.375}',
    ]
    assert len(first) == 7 and first[6].startswith("20")
    for rule in (str(imported["B"]), imported["B"].hex[:8]):  # the full uuid or as listed
        by_rule = acme(*ANA, "tests", "list", "-p", "Loans core", "--rule", rule, "-q")
        assert (by_rule.exit_code, by_rule.stdout) == (0, f"{ids['big']}\n")
    as_json = json.loads(acme(*ANA, "tests", "list", "--format", "json").stdout)
    assert [case["name"] for case in as_json] == order
    assert as_json[order.index("big")]["id"] == str(ids["big"])
    assert set(as_json[0]) == {"id", "rule_id", "rule", "name", "inputs", "expected", "updated_at"}
    as_csv = acme(*ANA, "tests", "list", "--format", "csv").stdout.splitlines()
    assert as_csv[0] == "id,rule_id,rule,name,inputs,expected,updated_at"
    assert len(as_csv) == 4
    # Without --project: everything the caller can see (carl's Cards is not ana's).
    operator = acme("tests", "list", "-q")
    assert sorted(operator.stdout.split()) == sorted(str(i) for i in ids.values())
    assert acme(*BOB, "tests", "list").stdout == ""


def test_show_one_case_and_refuse_an_invisible_one(
    acme: Any, imported: dict[str, uuid.UUID], conn: psycopg.Connection[Any]
) -> None:
    [(case_id,)] = rows(conn, "SELECT id FROM test_cases WHERE name = 'zero principal'")
    shown = json.loads(acme(*ANA, "tests", "show", str(case_id), "--format", "json").stdout)
    assert {k: shown[k] for k in ("rule_id", "rule", "project", "name", "description")} == {
        "rule_id": str(imported["A"]),
        "rule": "monthly interest",
        "project": "Loans core",
        "name": "zero principal",
        "description": "edge",
    }
    assert (shown["inputs"], shown["expected"]) == ({"principal": 0}, 0)
    assert shown["id"] == str(case_id)
    tsv = acme(*ANA, "tests", "show", case_id.hex[:8]).stdout.splitlines()  # the id as listed
    assert "inputs.principal\t0" in tsv
    assert f"id\t{case_id}" in tsv
    hidden = acme(*BOB, "tests", "show", str(case_id))
    assert (hidden.exit_code, hidden.stderr) == (
        4,
        f"error: no test case {case_id}; see `migrationpilot tests list`\n",
    )


def test_jsonrecords_locations_byte_order_mark_and_exact_numbers() -> None:
    """The shared parser on its own: what every bulk import relies on."""
    lines = '\ufeff{"a": 1.10}\n\n{"b": "x\u2028y", "c": [2e5, null]}\r\n'
    assert jsonrecords.parse(lines, "in.jsonl") == [
        ("in.jsonl line 1", {"a": Decimal("1.10")}),
        ("in.jsonl line 3", {"b": "x\u2028y", "c": [Decimal("2e5"), None]}),
    ]
    array = jsonrecords.parse(' \n[ {"a": 1},\n {"b": {"c": true}} ]\n', "in.json")
    assert [location for location, _ in array] == ["in.json [0]", "in.json [1]"]
    assert jsonrecords.dumps({"é": [Decimal("0.0525"), 1, None, {"x": "ü"}]}) == (
        '{"é":[0.0525,1,null,{"x":"ü"}]}'
    )
    with pytest.raises(BadInput, match=r"^in.json line 2: malformed JSON: extra data$"):
        jsonrecords.parse('[{"a": 1}]\n[]', "in.json")
    with pytest.raises(BadInput, match=r"^in.json line 1: malformed JSON: expected ',' or ']'$"):
        jsonrecords.parse('[{"a": 1} {"b": 2}]', "in.json")
