"""`rules import | list | show | history | diff | edit | export | revalidate` against a real
project with real COBOL sources, checked the way a user checks: output, exit code, and the
rows in the database."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from tests.conftest import CONSOLE_SCRIPT, probe_cli, rows

ANA = ("--as", "ana@acme.test")

INTEREST = """\
       IDENTIFICATION DIVISION.
       PROGRAM-ID. INTEREST.
       DATA DIVISION.
       WORKING-STORAGE SECTION.
       01  WS-BALANCE     PIC 9(9)V99.
       01  WS-RATE        PIC 9V9(4).
       01  WS-INTEREST    PIC 9(9)V99.
       PROCEDURE DIVISION.
           IF WS-RATE < 0.025
               MOVE 0.025 TO WS-RATE
           END-IF.
           COMPUTE WS-INTEREST ROUNDED =
               WS-BALANCE * WS-RATE / 12.
           STOP RUN.
"""
ELIGIBLE = """\
       IDENTIFICATION DIVISION.
       PROGRAM-ID. ELIGIBLE.
       PROCEDURE DIVISION.
           IF APPLICANT-AGE < 18
               MOVE 'N' TO ELIGIBLE-FLAG
           END-IF.
           IF ANNUAL-INCOME < 12000
               MOVE 'N' TO ELIGIBLE-FLAG
           END-IF.
           STOP RUN.
"""
LOANREC = "       01  LOAN-REC.\n           05 LOAN-AMOUNT PIC 9(7)V99.\n"

FLOOR = {
    "name": "Rate floor of 2.5%",
    "category": "constraint",
    "confidence": 0.93,
    "source_file": "src/INTEREST.cbl",
    "source_start_line": 9,
    "source_end_line": 11,
    "description": "The rate never goes below 2.5%.",
    "logic": "if rate < 2.5% then use 2.5%",
    "inputs": ["rate"],
    "outputs": ["rate"],
}
MONTHLY = {
    "name": "Monthly interest",
    "category": "calculation",
    "confidence": 0.98,
    "source_file": "src/INTEREST.cbl",
    "source_start_line": 12,
    "source_end_line": 13,
    "description": "Interest of the month on the outstanding balance.",
    "logic": "balance times the yearly rate over 12, rounded half up to cents",
    "formula": "interest = round_half_up(balance * rate / 12, 2)",
    "inputs": ["balance", "rate"],
    "outputs": ["interest"],
}
ADULT = {
    "name": "Applicant must be an adult",
    "category": "validation",
    "confidence": 0.71,
    "source_file": "src/ELIGIBLE.cbl",
    "source_start_line": 4,
    "source_end_line": 6,
    "description": "Applicants under 18 are not eligible.",
    "logic": "refuse an applicant younger than 18",
}
RULES = (FLOOR, MONTHLY, ADULT)
LOAN_RECORD = {
    "name": "Loan amount has two decimals",
    "category": "constraint",
    "confidence": 0.6,
    "source_file": "copy/LOANREC.cpy",
    "source_start_line": 1,
    "source_end_line": 2,
    "description": "Amounts are stored in cents.",
    "logic": "the loan amount has two decimals",
}


def write_tree(root: Path, **overrides: str) -> Path:
    files = {
        "src/INTEREST.cbl": INTEREST,
        "src/ELIGIBLE.cbl": ELIGIBLE,
        "copy/LOANREC.cpy": LOANREC,
    }
    for relative, text in {**files, **overrides}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def jsonl(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def excerpt(text: str, start: int, end: int) -> str:
    return "\n".join(text.split("\n")[start - 1 : end])


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "legacy")


@pytest.fixture
def loans(acme: Any, tree: Path) -> UUID:
    """Ana's project "Loans core" with the COBOL tree imported."""
    created = acme(
        *ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "java", "-q"
    )
    assert created.exit_code == 0, created.stderr
    imported = acme(*ANA, "files", "import", str(tree), "--project", "Loans core")
    assert imported.exit_code == 0, imported.stderr
    return UUID(created.stdout.strip())


def import_rules(mp: Any, path: Path, *records: dict[str, Any], as_user: bool = True) -> Any:
    path.write_text(jsonl(*records))
    acting = ANA if as_user else ()
    return mp(*acting, "rules", "import", str(path), "--project", "Loans core", "--format", "json")


def rule_ids(conn: psycopg.Connection[Any]) -> dict[str, UUID]:
    return dict(rows(conn, "SELECT name, id FROM business_rules"))  # type: ignore[arg-type]


def stored_state(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    """Everything an import may write: rules, versions, audit rows."""
    return (
        rows(conn, "SELECT id, version, updated_at FROM business_rules ORDER BY id"),
        rows(conn, "SELECT count(*) FROM rule_versions"),
        rows(conn, "SELECT count(*) FROM audit_logs WHERE resource_type = 'rule'"),
    )


# ---------------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------------


def test_import_json_lines_cuts_the_source_and_hashes_its_lines(
    acme: Any, loans: UUID, tmp_path: Path, conn: psycopg.Connection[Any]
) -> None:
    result = import_rules(acme, tmp_path / "rules.jsonl", *RULES)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
        "reopened": 0,
        "waited_seconds": 0.0,
    }
    stored = rows(
        conn,
        "SELECT r.name, category::text, confidence::text, source_code, source_hash, inputs,"
        " outputs, review_status::text, version, r.organization_id = p.organization_id"
        " FROM business_rules r JOIN projects p ON p.id = r.project_id"
        " ORDER BY r.source_file DESC, r.source_start_line",  # INTEREST, then ELIGIBLE
    )
    floor_code = excerpt(INTEREST, 9, 11)
    assert stored[0] == (
        "Rate floor of 2.5%",
        "constraint",
        "0.930",
        floor_code,
        sha256(floor_code),
        ["rate"],
        ["rate"],
        "pending",
        1,
        True,
    )
    assert floor_code.startswith("           IF WS-RATE < 0.025") and floor_code.endswith("END-IF.")
    assert [row[4] for row in stored] == [
        sha256(excerpt(INTEREST, 9, 11)),
        sha256(excerpt(INTEREST, 12, 13)),
        sha256(excerpt(ELIGIBLE, 4, 6)),
    ]
    assert (
        rows(
            conn,
            "SELECT v.version, v.change_reason, u.email FROM rule_versions v"
            " JOIN users u ON u.id = v.changed_by",
        )
        == [(1, "import", "ana@acme.test")] * 3
    )
    # One audit row for the statement that stored the three rules, naming them.
    assert rows(
        conn,
        "SELECT resource_type, resource_id, actor_email, metadata FROM audit_logs"
        " WHERE action = 'rule.create'",
    ) == [
        (
            "rule",
            None,
            "ana@acme.test",
            {
                "client": "migrationpilot rules import",
                "reason": "import",
                "count": 3,
                "ids": sorted(str(rule_id) for rule_id in rule_ids(conn).values()),
            },
        )
    ]


def test_import_json_array_from_a_file_and_json_lines_from_stdin(
    acme: Any, loans: UUID, tmp_path: Path, conn: psycopg.Connection[Any]
) -> None:
    given_code = {**MONTHLY, "source_code": "COMPUTE WS-INTEREST = WS-BALANCE * WS-RATE / 12."}
    array = tmp_path / "rules.json"
    array.write_text(json.dumps([FLOOR, given_code], indent=2))
    result = acme(*ANA, "rules", "import", str(array), "-p", "Loans core")
    assert result.exit_code == 0, result.stderr
    # Piped: tsv field/value lines.
    assert (
        result.stdout == "inserted\t2\nupdated\t0\nunchanged\t0\nreopened\t0\nwaited_seconds\t0.0\n"
    )
    # A given source_code is kept; the hash is always of the stored lines.
    assert rows(
        conn, "SELECT source_code, source_hash FROM business_rules WHERE name = 'Monthly interest'"
    ) == [(given_code["source_code"], sha256(excerpt(INTEREST, 12, 13)))]

    piped = acme(
        *ANA,
        "rules",
        "import",
        "-",
        "-p",
        "Loans core",
        "--format",
        "json",
        input=jsonl(ADULT, FLOOR),
    )
    assert piped.exit_code == 0, piped.stderr
    assert json.loads(piped.stdout) == {
        "inserted": 1,
        "updated": 0,
        "unchanged": 1,
        "reopened": 0,
        "waited_seconds": 0.0,
    }
    assert rows(conn, "SELECT count(*) FROM business_rules") == [(3,)]


def test_reimport_is_idempotent_and_a_changed_rule_gets_a_new_version(
    acme: Any, loans: UUID, tmp_path: Path, conn: psycopg.Connection[Any]
) -> None:
    path = tmp_path / "rules.jsonl"
    import_rules(acme, path, *RULES)
    before = stored_state(conn)[:2]
    again = import_rules(acme, path, *RULES)
    assert json.loads(again.stdout) == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 3,
        "reopened": 0,
        "waited_seconds": 0.0,
    }
    assert stored_state(conn)[:2] == before

    monthly = rule_ids(conn)["Monthly interest"]
    conn.execute(
        "UPDATE business_rules SET review_status = 'approved', review_comments = 'ok'"
        " WHERE id = %s",
        (monthly,),
    )
    changed = {**MONTHLY, "confidence": 0.99, "formula": "interest = balance * rate / 1200"}
    new_rule = {**ADULT, "name": "Income of at least 12000", "source_start_line": 7,
                "source_end_line": 9}  # fmt: skip
    result = import_rules(acme, path, FLOOR, changed, ADULT, new_rule)
    assert json.loads(result.stdout) == {
        "inserted": 1,
        "updated": 1,
        "unchanged": 2,
        "reopened": 1,
        "waited_seconds": 0.0,
    }
    assert rows(
        conn,
        "SELECT version, confidence::text, formula, review_status::text, review_comments"
        " FROM business_rules WHERE id = %s",
        monthly,
    ) == [(3, "0.990", "interest = balance * rate / 1200", "pending", None)]
    assert rows(
        conn,
        "SELECT version, change_reason, snapshot->>'review_status' FROM rule_versions"
        " WHERE rule_id = %s ORDER BY version",
        monthly,
    ) == [(1, "import", "pending"), (2, None, "approved"), (3, "reimport", "pending")]
    assert rows(conn, "SELECT count(*) FROM business_rules") == [(4,)]


@pytest.mark.parametrize(
    "records, message",
    [
        (
            (FLOOR, {**MONTHLY, "confidence": 1.5}),
            "rules.jsonl line 2: confidence 1.5 is not between 0 and 1",
        ),
        (
            (FLOOR, MONTHLY, {**ADULT, "category": "math"}),
            "rules.jsonl line 3: category 'math' is not one of calculation, validation,",
        ),
        (
            ({**FLOOR, "confidance": 0.5},),
            "rules.jsonl line 1: unknown field 'confidance' (did you mean 'confidence'?)",
        ),
        (
            (FLOOR, {**MONTHLY, "source_end_line": 11}),
            "rules.jsonl line 2: source_end_line 11 is before source_start_line 12",
        ),
        (
            (FLOOR, {k: v for k, v in MONTHLY.items() if k != "source_file"}),
            "rules.jsonl line 2: missing source_file",
        ),
        (
            (FLOOR, MONTHLY, {**ADULT, "source_file": "src/NOPE.cbl"}),
            "rules.jsonl line 3: source_file 'src/NOPE.cbl' is not a file of project 'Loans core'",
        ),
        (
            (FLOOR, {**MONTHLY, "source_end_line": 15}),
            "rules.jsonl line 2: source_end_line 15 is past the end of src/INTEREST.cbl (14 lines)",
        ),
        (
            (FLOOR, {**FLOOR, "confidence": 0.1}),
            "rules.jsonl line 2: the same rule as line 1 (same name, source_file and lines)",
        ),
    ],
)
def test_a_bad_record_fails_the_whole_import_naming_it(
    acme: Any,
    loans: UUID,
    tmp_path: Path,
    conn: psycopg.Connection[Any],
    records: tuple[dict[str, Any], ...],
    message: str,
) -> None:
    import_rules(acme, tmp_path / "first.jsonl", LOAN_RECORD)
    before = stored_state(conn)
    result = import_rules(acme, tmp_path / "rules.jsonl", *records)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path}/{message}")
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""
    assert stored_state(conn) == before


def test_malformed_json_and_array_index_and_unreadable_files(
    acme: Any, loans: UUID, tmp_path: Path, conn: psycopg.Connection[Any]
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(jsonl(FLOOR, MONTHLY) + '{"name": "half a rule",\n')
    result = acme(*ANA, "rules", "import", str(broken), "-p", "Loans core")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {broken} line 3: malformed JSON")

    array = tmp_path / "rules.json"
    array.write_text(json.dumps([FLOOR, {**MONTHLY, "source_file": "src/GONE.cbl"}]))
    outside = acme(*ANA, "rules", "import", str(array), "-p", "Loans core")
    assert outside.exit_code == 2
    assert outside.stderr == (
        f"error: {array} [1]: source_file 'src/GONE.cbl' is not a file of project 'Loans core'"
        " (see `migrationpilot files list`)\n"
    )
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps([FLOOR, MONTHLY, {**FLOOR, "confidence": 0.2}]))
    repeated = acme(*ANA, "rules", "import", str(twice), "-p", "Loans core")
    assert (repeated.exit_code, repeated.stderr) == (
        2,
        f"error: {twice} [2]: the same rule as [0] (same name, source_file and lines)\n",
    )
    missing = acme(*ANA, "rules", "import", str(tmp_path / "nope.jsonl"), "-p", "Loans core")
    assert (missing.exit_code, "cannot read" in missing.stderr) == (2, True)
    empty = acme(*ANA, "rules", "import", "-", "-p", "Loans core", input="\n")
    assert (empty.exit_code, "no rules found" in empty.stderr) == (2, True)
    assert rows(conn, "SELECT count(*) FROM business_rules") == [(0,)]


# The resident size of the same command before the import streamed its file: 534 MB for
# 200,000 rules, growing with the file. Streamed, it is about 45 MB whatever the file's size.
STREAMED_IMPORT_MB = 150


def test_a_file_larger_than_any_buffer_is_streamed_and_refused_at_its_last_line(
    acme: Any, loans: UUID, tmp_path: Path, conn: psycopg.Connection[Any], database_url: str
) -> None:
    """200,000 good rules (60 MB) then a bad one: every record is read, checked and copied to
    the server as it comes, so the whole file passes through the import and its memory stays
    flat; the last line is refused by name and nothing is written."""
    import subprocess
    import sys

    from tests.conftest import CONSOLE_SCRIPT

    count = 200_000
    big = tmp_path / "big.jsonl"
    with big.open("w") as out:
        for number in range(count):
            out.write(json.dumps({**FLOOR, "name": f"rule {number}"}) + "\n")
        out.write(json.dumps({**FLOOR, "name": "last", "confidence": 1.5}) + "\n")
    before = stored_state(conn)
    command = [str(CONSOLE_SCRIPT), "--database-url", database_url, "--as", ANA[1],
               "rules", "import", str(big), "-p", "Loans core"]  # fmt: skip
    # A parent of its own, so that its children's peak is this command's alone.
    measured = (
        "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode;"
        " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", measured, *command], capture_output=True, text=True, timeout=600
    )
    peak_mb = int(completed.stdout) / 1024  # ru_maxrss is in KiB on Linux
    assert completed.returncode == 2
    assert completed.stderr == (
        f"error: {big} line {count + 1}: confidence 1.5 is not between 0 and 1\n"
    )
    assert stored_state(conn) == before
    assert peak_mb < STREAMED_IMPORT_MB, f"peak {peak_mb:.0f} MB"


def test_import_into_an_invisible_project_is_not_found(
    acme: Any, loans: UUID, tmp_path: Path, conn: psycopg.Connection[Any]
) -> None:
    path = tmp_path / "rules.jsonl"
    path.write_text(jsonl(FLOOR))
    result = acme("--as", "bob@globex.test", "rules", "import", str(path), "-p", "Loans core")
    assert result.exit_code == 4
    assert rows(conn, "SELECT count(*) FROM business_rules") == [(0,)]


# ---------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------

# (name, category, confidence, status, file, start, description, logic, formula, extracted)
LISTED = [
    ("Rate floor", "constraint", "0.930", "pending", "src/A.cbl", 10, None, "rate < 2.5", None, 3),
    ("Monthly interest", "calculation", "0.980", "pending", "src/A.cbl", 20, "per month",
     None, "b * r / 12", 1),
    ("Adult applicant", "validation", "0.710", "approved", "src/B.cbl", 4, "age >= 18", None,
     None, 5),
    ("Income check", "validation", "0.930", "rejected", "src/B.cbl", 7, None, None, None, 2),
    ("Late fee 50%", "calculation", "0.500", "pending", "src/C.cbl", 1, "fee is 50% of due",
     None, None, 4),
    ("Route a_b", "workflow", "0.930", "needs_clarification", "src/C.cbl", 9, None,
     "route to a_b", None, 6),
    ("rating table", "decision", "0.200", "pending", "src/A.cbl", 30, None, None, None, 7),
    ("Zero confidence", "transformation", "0.000", "pending", "src/D.cbl", 2, None, None, None, 8),
    ("Full confidence", "calculation", "1.000", "approved", "src/D.cbl", 5, None, None,
     "x = 1 \\ 2", 9),
]  # fmt: skip


@pytest.fixture
def listed(acme: Any, conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rules written by plain SQL: Ana's "Loans core" (acme-pay), and one rule in Carl's
    project (acme-cards) that Ana must not see. Returns the project ids."""
    for who, name in (("ana@acme.test", "Loans core"), ("carl@acme.test", "Cards")):
        acme("--as", who, "projects", "create", name, "--source", "cobol", "--target", "java")
    projects = dict(rows(conn, "SELECT name, id FROM projects"))  # type: ignore[arg-type]
    for index, (name, category, confidence, status, file, start, *texts, days) in enumerate(LISTED):
        conn.execute(
            "INSERT INTO business_rules (organization_id, project_id, name, category,"
            " confidence, review_status, source_file, source_start_line, source_end_line,"
            " description, logic, formula, extracted_at, source_code)"
            " SELECT organization_id, id, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, ''),"
            " coalesce(%s, ''), %s,"
            " now() - make_interval(days => %s), '' FROM projects WHERE name = %s",
            (name, category, confidence, status, file, start, start + index, *texts, days,
             "Loans core"),
        )  # fmt: skip
    conn.execute(
        "INSERT INTO business_rules (organization_id, project_id, name, category, confidence,"
        " source_file, source_start_line, source_end_line, description, source_code, logic)"
        " SELECT organization_id, id, 'Card limit', 'constraint', 0.95, 'src/A.cbl', 1, 1,"
        " '', '', '' FROM projects WHERE name = 'Cards'"
    )
    return projects


def listed_ids(mp: Any, *options: str, acting: tuple[str, ...] = ANA) -> list[int]:
    result = mp(*acting, "rules", "list", "-q", *options)
    assert result.exit_code == 0, result.stderr
    return [UUID(line) for line in result.stdout.split()]


def sql_ids(conn: psycopg.Connection[Any], where: str, order: str = "confidence DESC") -> list[int]:
    query = sql.SQL(
        "SELECT r.id FROM business_rules r JOIN projects p ON p.id = r.project_id"
        " WHERE p.name = 'Loans core' AND ({where}) ORDER BY {order}, r.id"
    ).format(where=sql.SQL(where), order=sql.SQL(order))
    return [row[0] for row in conn.execute(query).fetchall()]


@pytest.mark.parametrize(
    "options, where",
    [
        ((), "true"),
        (("--pending",), "review_status = 'pending'"),
        (("--status", "approved"), "review_status = 'approved'"),
        (("--status", "needs_clarification"), "review_status = 'needs_clarification'"),
        (("--category", "validation"), "category = 'validation'"),
        (("--min-confidence", "0.93"), "confidence >= 0.93"),
        (("--max-confidence", "0.5"), "confidence <= 0.5"),
        (("--min-confidence", "0", "--max-confidence", "1"), "true"),
        (
            ("--min-confidence", "0.9", "--pending"),
            "confidence >= 0.9 AND review_status = 'pending'",
        ),
        (("--file", "src/A.cbl"), "source_file = 'src/A.cbl'"),
        (("--file", "src/a.cbl"), "false"),
        (("--search", "RAT"), "r.name ILIKE '%rat%' OR logic ILIKE '%rat%'"),
        (("--search", "per MONTH"), "r.description = 'per month'"),
        (("--search", "50%"), "r.name = 'Late fee 50%'"),
        (("--search", "a_b"), "r.name = 'Route a_b'"),
        (("--search", "1 \\ 2"), "formula = 'x = 1 \\ 2'"),
        (("--search", "_"), "r.name = 'Route a_b'"),
        (("--category", "calculation", "--search", "interest"), "r.name = 'Monthly interest'"),
    ],
)
def test_every_filter_matches_plain_sql(
    acme: Any,
    listed: dict[str, int],
    conn: psycopg.Connection[Any],
    options: tuple[str, ...],
    where: str,
) -> None:
    assert listed_ids(acme, *options) == sql_ids(conn, where)
    assert listed_ids(acme, *options, "--project", "Loans core") == sql_ids(conn, where)


@pytest.mark.parametrize(
    "sort, order",
    [
        ("-confidence", "confidence DESC"),
        ("confidence", "confidence"),
        ("name", "r.name"),
        ("-name", "r.name DESC"),
        ("file", "source_file, source_start_line"),
        ("-file", "source_file DESC, source_start_line DESC"),
        ("extracted", "extracted_at"),
        ("-extracted", "extracted_at DESC"),
    ],
)
def test_every_sort_matches_plain_sql_with_id_as_the_tiebreak(
    acme: Any, listed: dict[str, int], conn: psycopg.Connection[Any], sort: str, order: str
) -> None:
    assert listed_ids(acme, f"--sort={sort}") == sql_ids(conn, "true", order)
    assert listed_ids(acme, "--sort", sort, "--limit", "3") == sql_ids(conn, "true", order)[:3]


def test_without_project_each_user_sees_their_organization_and_the_operator_all(
    acme: Any, listed: dict[str, int], conn: psycopg.Connection[Any]
) -> None:
    everything = [row[0] for row in rows(conn, "SELECT id FROM business_rules ORDER BY id")]
    assert sorted(listed_ids(acme, acting=())) == everything
    card_rule = rows(conn, "SELECT id FROM business_rules WHERE name = 'Card limit'")[0][0]
    assert listed_ids(acme, acting=("--as", "carl@acme.test")) == [card_rule]
    assert card_rule not in listed_ids(acme)
    assert listed_ids(acme, acting=("--as", "bob@globex.test")) == []
    assert listed_ids(acme, "--org", "acme-cards", acting=()) == [card_rule]
    hidden = acme("--as", "carl@acme.test", "rules", "list", "--project", "Loans core")
    assert hidden.exit_code == 4


def test_list_formats_carry_every_column(acme: Any, listed: dict[str, int]) -> None:
    as_json = json.loads(acme(*ANA, "rules", "list", "--limit", "2", "--format", "json").stdout)
    assert [list(row) for row in as_json] == [
        [
            "id",
            "project",
            "name",
            "category",
            "confidence",
            "review_status",
            "source_file",
            "source_start_line",
            "source_end_line",
            "version",
            "extracted_at",
        ]
    ] * 2
    assert {k: as_json[0][k] for k in ("project", "name", "confidence", "review_status")} == {
        "project": "Loans core",
        "name": "Full confidence",
        "confidence": 1.0,
        "review_status": "approved",
    }
    as_csv = list(csv.reader(io.StringIO(acme(*ANA, "rules", "list", "--format", "csv").stdout)))
    assert as_csv[0][:3] == ["id", "project", "name"]
    assert len(as_csv) == 1 + len(LISTED)
    tsv = acme(*ANA, "rules", "list", "--pending", "--limit", "1").stdout
    assert tsv.split("\t")[1:6] == [
        "Loans core",
        "Monthly interest",
        "calculation",
        "0.980",
        "pending",
    ]
    table = acme(*ANA, "rules", "list", "--format", "table").stdout
    assert "Rules" in table and "Monthly interest" in table and "extracted" not in table


@pytest.mark.parametrize(
    "options, message",
    [
        (("--pending", "--status", "approved"), "--pending and --status cannot be combined"),
        (("--min-confidence", "1.5"), "--min-confidence 1.5: expected a number between 0 and 1"),
        (("--max-confidence", "-0.1"), "--max-confidence -0.1: expected a number between 0 and 1"),
        (
            ("--min-confidence", "0.9", "--max-confidence", "0.5"),
            "--min-confidence 0.9 is above --max-confidence 0.5",
        ),
        (("--sort", "bogus"), "--sort 'bogus': expected one of confidence, name, file, extracted"),
        (("--sort", "-id"), "--sort '-id'"),
        (("--limit", "0"), "--limit"),
        (("--status", "done"), "--status"),
        (("--category", "math"), "--category"),
    ],
)
def test_bad_list_options_exit_2(
    acme: Any, listed: dict[str, int], options: tuple[str, ...], message: str
) -> None:
    result = acme(*ANA, "rules", "list", *options)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_ids_pipe_into_review_approve_through_real_processes(
    acme: Any, listed: dict[str, int], conn: psycopg.Connection[Any], database_url: str
) -> None:
    base = [str(CONSOLE_SCRIPT), "--database-url", database_url, *ANA]
    listing = subprocess.run(
        [*base, "rules", "list", "--pending", "--min-confidence", "0.9", "-q"],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = sql_ids(conn, "confidence >= 0.9 AND review_status = 'pending'")
    approved = subprocess.run(
        [*base, "review", "approve", "-", "--comment", "bulk"],
        input=listing.stdout,
        capture_output=True,
        text=True,
    )
    assert approved.returncode == 0, approved.stderr
    assert [UUID(line) for line in listing.stdout.split()] == expected
    assert rows(
        conn,
        "SELECT name FROM business_rules WHERE review_comments = 'bulk' ORDER BY name",
    ) == [("Monthly interest",), ("Rate floor",)]


def test_the_queue_loads_only_what_it_runs(
    listed: dict[str, int], conn: psycopg.Connection[Any], database_url: str
) -> None:
    # The reviewers' queue runs in loops: it must not pay for pydantic (Typer 0.29's option
    # conversion), for the import modules of its own sub-app, or for a TOML parser without a
    # config file; and of the rules sub-app, Typer builds the `list` command only.
    argv = ["--database-url", database_url, "rules", "list", "--pending", "-q"]
    result = probe_cli(
        argv,
        before="import typer.main\n"
        "built = []\n"
        "build = typer.main.get_command_from_info\n"
        "typer.main.get_command_from_info = lambda info, **kw: built.append(info.name) or"
        " build(info, **kw)\n",
        after="loaded = {'pydantic', 'tomllib', 'migrationpilot_cli.rulefiles',"
        " 'migrationpilot_cli.jsonrecords'} & sys.modules.keys()\n"
        "print(sorted(loaded), built, file=sys.stderr)\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "[] ['list']"
    pending = [row[0] for row in conn.execute(
        "SELECT id FROM business_rules WHERE review_status = 'pending'"
        " ORDER BY confidence DESC, id"
    ).fetchall()]  # fmt: skip
    assert [UUID(line) for line in result.stdout.split()] == pending != []


# ---------------------------------------------------------------------------------------------
# show, history, diff, edit
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def imported(
    acme: Any, loans: UUID, tmp_path: Path, conn: psycopg.Connection[Any]
) -> dict[str, UUID]:
    result = import_rules(acme, tmp_path / "rules.jsonl", *RULES)
    assert result.exit_code == 0, result.stderr
    return rule_ids(conn)


def test_show_renders_every_field_and_the_numbered_source(
    acme: Any, imported: dict[str, UUID], conn: psycopg.Connection[Any]
) -> None:
    floor = imported["Rate floor of 2.5%"]
    conn.execute(
        "UPDATE business_rules SET review_status = 'approved', reviewed_at = now(),"
        " reviewed_by = (SELECT id FROM users WHERE email = 'ana@acme.test') WHERE id = %s",
        (floor,),
    )
    # The short form a table shows (the first 8 hex digits) names the rule as well.
    shown = json.loads(acme(*ANA, "rules", "show", floor.hex[:8], "--format", "json").stdout)
    assert {k: shown[k] for k in ("id", "project", "name", "reviewed_by", "source_code")} == {
        "id": str(floor),
        "project": "Loans core",
        "name": "Rate floor of 2.5%",
        "reviewed_by": "ana@acme.test",
        "source_code": excerpt(INTEREST, 9, 11),
    }
    assert shown["inputs"] == ["rate"] and shown["version"] == 2
    assert shown["source_hash"] == sha256(excerpt(INTEREST, 9, 11))

    piped = acme(*ANA, "rules", "show", str(floor))
    fields = dict(line.split("\t", 1) for line in piped.stdout.splitlines())
    assert (fields["name"], fields["confidence"], fields["source_file"]) == (
        "Rate floor of 2.5%",
        "0.930",
        "src/INTEREST.cbl",
    )
    assert "source_code" not in fields
    with_source = acme(*ANA, "rules", "show", str(floor), "--source").stdout
    assert "source_code\t           IF WS-RATE < 0.025\\n" in with_source

    table = acme(*ANA, "rules", "show", str(floor), "--format", "table").stdout
    assert "Rate floor of 2.5%" in table
    numbered = [" ".join(line.split()) for line in table.splitlines() if "WS-RATE" in line]
    assert numbered == ["9 IF WS-RATE < 0.025", "10 MOVE 0.025 TO WS-RATE"]


def test_show_history_diff_and_edit_of_an_invisible_rule_are_not_found(
    acme: Any, imported: dict[str, UUID]
) -> None:
    floor = str(imported["Rate floor of 2.5%"])
    for user in ("bob@globex.test", "carl@acme.test"):
        for command in (
            ("show", floor),
            ("history", floor),
            ("diff", floor),
            ("edit", floor, "--name", "x", "--reason", "y"),
        ):
            result = acme("--as", user, "rules", *command)
            assert result.exit_code == 4, (user, command)
            assert result.stderr == (
                f"error: no rule {floor} (or it is not visible to you);"
                " see `migrationpilot rules list`\n"
            )
    assert acme(*ANA, "rules", "show", "999999").exit_code == 4


def test_edit_versions_history_and_diff(
    acme: Any, imported: dict[str, UUID], conn: psycopg.Connection[Any]
) -> None:
    monthly = str(imported["Monthly interest"])
    edited = acme(
        *ANA,
        "rules",
        "edit",
        monthly,
        "--formula",
        "interest = balance * rate / 1200",
        "--confidence",
        "0.9",
        "--name",
        "Monthly interest",  # the same as now: not a change
        "--reason",
        "rate is a percentage",
        "--format",
        "json",
    )
    assert edited.exit_code == 0, edited.stderr
    assert json.loads(edited.stdout) == {
        "id": monthly,
        "outcome": "updated",
        "version": 2,
        "changes": {
            "formula": {
                "from": "interest = round_half_up(balance * rate / 12, 2)",
                "to": "interest = balance * rate / 1200",
            },
            "confidence": {"from": 0.98, "to": 0.9},
        },
    }
    assert rows(
        conn,
        "SELECT metadata FROM audit_logs WHERE action = 'rule.update' AND resource_id = %s",
        monthly,
    ) == [
        (
            {
                "client": "migrationpilot rules edit",
                "reason": "rate is a percentage",
                "old": {"formula": "interest = round_half_up(balance * rate / 12, 2)",
                        "confidence": 0.98, "version": 1},
                "new": {"formula": "interest = balance * rate / 1200", "confidence": 0.9,
                        "version": 2},
            },
        )
    ]  # fmt: skip

    # The same values again: nothing changes, no version, no audit row.
    same = acme(
        *ANA, "rules", "edit", monthly, "--confidence", "0.9000", "--reason", "again", "--format",
        "json",
    )  # fmt: skip
    assert json.loads(same.stdout) == {
        "id": monthly,
        "outcome": "unchanged",
        "version": 2,
        "changes": {},
    }
    # A description cannot be cleared (a rule always has one): exit 2, nothing changed.
    cleared = acme("rules", "edit", monthly, "--description", " ", "--reason", "tidy")
    assert (cleared.exit_code, cleared.stderr) == (2, "error: --description must not be empty\n")
    # An operator rewrites the description and changes the category.
    operator = acme(
        "rules", "edit", monthly, "--description", "Monthly interest.", "--category", "decision",
        "--reason", "tidy",
    )  # fmt: skip
    assert operator.exit_code == 0, operator.stderr
    assert rows(
        conn,
        "SELECT description, category::text, version FROM business_rules WHERE id = %s",
        monthly,
    ) == [("Monthly interest.", "decision", 3)]
    assert rows(conn, "SELECT count(*) FROM audit_logs WHERE action = 'rule.update'") == [(2,)]

    history = acme(*ANA, "rules", "history", monthly, "--format", "json")
    assert [
        (v["version"], v["changed_by"], v["change_reason"], v["review_status"])
        for v in json.loads(history.stdout)
    ] == [
        (1, "ana@acme.test", "import", "pending"),
        (2, "ana@acme.test", "rate is a percentage", "pending"),
        (3, "operator", "tidy", "pending"),
    ]
    assert acme(*ANA, "rules", "history", monthly, "-q").stdout == "1\n2\n3\n"

    latest = acme(*ANA, "rules", "diff", monthly)
    assert latest.stdout == (
        "description\tInterest of the month on the outstanding balance.\tMonthly interest.\n"
        "category\tcalculation\tdecision\n"
        "version\t2\t3\n"
    )
    span = json.loads(
        acme(*ANA, "rules", "diff", monthly, "--from", "1", "--to", "3", "--format", "json").stdout
    )
    assert [change["field"] for change in span] == [
        "description",
        "category",
        "formula",
        "confidence",
        "version",
    ]
    assert span[3] == {"field": "confidence", "from": 0.98, "to": 0.9}
    backwards = acme(*ANA, "rules", "diff", monthly, "--from", "3", "--to", "2", "-q").stdout
    assert backwards == "description\ncategory\nversion\n"
    first = json.loads(acme(*ANA, "rules", "diff", monthly, "--to", "1", "--format", "json").stdout)
    assert {change["field"]: change["from"] for change in first}["name"] is None
    assert {change["field"]: change["to"] for change in first}["name"] == "Monthly interest"
    assert "updated_at" not in [change["field"] for change in first]

    for options, option in ((("--from", "4"), "--from"), (("--to", "0"), "--to")):
        unknown = acme(*ANA, "rules", "diff", monthly, *options)
        version = options[1]
        assert unknown.exit_code == 4
        assert unknown.stderr == (
            f"error: rule {monthly[:8]} has no version {version} ({option}); it has versions 1-3\n"
        )


@pytest.mark.parametrize(
    "options, message",
    [
        (("--reason", "why"), "nothing to change: give --name, --description"),
        (("--name", "x"), "Missing option '--reason'"),
        (("--name", "x", "--reason", "  "), "--reason must not be empty"),
        (("--name", " ", "--reason", "why"), "--name must not be empty"),
        (("--confidence", "1.2", "--reason", "why"), "--confidence 1.2: expected a number between"),
        (("--category", "math", "--reason", "why"), "--category"),
    ],
)
def test_bad_edits_exit_2_and_change_nothing(
    acme: Any,
    imported: dict[str, UUID],
    conn: psycopg.Connection[Any],
    options: tuple[str, ...],
    message: str,
) -> None:
    before = rows(conn, "SELECT * FROM business_rules ORDER BY id")
    result = acme(*ANA, "rules", "edit", str(imported["Monthly interest"]), *options)
    assert result.exit_code == 2
    assert message in result.stderr
    assert rows(conn, "SELECT * FROM business_rules ORDER BY id") == before


def test_an_edit_onto_another_rules_identity_fails_with_exit_1(
    acme: Any, imported: dict[str, UUID], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    import_rules(acme, tmp_path / "more.jsonl", {**MONTHLY, "name": "Twin"})
    twin = rule_ids(conn)["Twin"]
    result = acme(*ANA, "rules", "edit", str(twin), "--name", "Monthly interest", "--reason", "x")
    assert result.exit_code == 1
    assert "already exists in business_rules" in result.stderr
    assert rows(conn, "SELECT version FROM business_rules WHERE id = %s", twin) == [(1,)]


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------


def test_export_markdown_csv_and_json(
    acme: Any, imported: dict[str, UUID], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    conn.execute(
        "UPDATE business_rules SET review_status = 'approved', reviewed_at = now(),"
        " reviewed_by = (SELECT id FROM users WHERE email = 'ana@acme.test'),"
        " review_comments = 'matches the tariff' WHERE name = 'Monthly interest'"
    )
    report = acme(*ANA, "rules", "export", "--project", "Loans core", "--format", "markdown")
    assert report.exit_code == 0, report.stderr
    text = report.stdout
    assert text.startswith("# Business rules of Loans core\n\ncobol to java, 3 rules, exported ")
    assert "| **total** | 3 | 2 | 1 | 0 | 0 | 0.873 |" in text
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        "## Calculation (1)",
        "## Validation (1)",
        "## Constraint (1)",
    ]
    assert "- **Review:** approved by ana@acme.test on " in text
    assert "- **Reviewer's comment:** matches the tariff" in text
    assert "**Formula:** `interest = round_half_up(balance * rate / 12, 2)`" in text
    assert "- **Source:** `src/INTEREST.cbl` lines 9-11" in text

    as_csv = acme(*ANA, "rules", "export", "-p", "Loans core", "--format", "csv").stdout
    records = list(csv.DictReader(io.StringIO(as_csv)))
    assert [r["name"] for r in records] == [
        "Monthly interest",
        "Applicant must be an adult",
        "Rate floor of 2.5%",
    ]
    assert records[0]["reviewed_by"] == "ana@acme.test"
    assert records[2]["source_code"] == excerpt(INTEREST, 9, 11)  # newlines quoted, not lost
    json_text = acme(*ANA, "rules", "export", "-p", "Loans core", "--format", "json").stdout
    as_json = json.loads(json_text)
    assert as_json[0]["inputs"] == ["balance", "rate"] and as_json[0]["confidence"] == 0.98
    # Streamed object by object, the text is still exactly the one array json.dumps writes.
    assert json_text == json.dumps(as_json, indent=2, ensure_ascii=False) + "\n"


def test_export_to_a_file_refuses_to_overwrite_without_force(
    acme: Any, imported: dict[str, UUID], tmp_path: Path
) -> None:
    target = tmp_path / "report.md"
    written = acme(*ANA, "rules", "export", "-p", "Loans core", "--output", str(target))
    assert (written.exit_code, written.stdout) == (0, "")
    assert target.read_text().startswith("# Business rules of Loans core")
    target.write_text("keep me")
    refused = acme(*ANA, "rules", "export", "-p", "Loans core", "-o", str(target))
    assert refused.exit_code == 2
    assert refused.stderr == f"error: {target} exists; pass --force to overwrite it\n"
    assert target.read_text() == "keep me"
    forced = acme(
        *ANA,
        "rules",
        "export",
        "-p",
        "Loans core",
        "-o",
        str(target),
        "--force",
        "--format",
        "json",
    )
    assert forced.exit_code == 0
    assert len(json.loads(target.read_text())) == 3
    invisible = acme("--as", "bob@globex.test", "rules", "export", "-p", "Loans core")
    assert invisible.exit_code == 4


# ---------------------------------------------------------------------------------------------
# revalidate
# ---------------------------------------------------------------------------------------------


def test_revalidate_flags_changed_and_vanished_lines_once(
    acme: Any, imported: dict[str, UUID], tree: Path, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    extra = {**ADULT, "name": "Income floor", "source_start_line": 7, "source_end_line": 9}
    import_rules(acme, tmp_path / "extra.jsonl", extra)
    ids = rule_ids(conn)
    # Unchanged source: nothing to flag.
    quiet = acme(*ANA, "rules", "revalidate", "-p", "Loans core")
    assert (quiet.exit_code, quiet.stdout) == (0, "")

    # The rate floor's lines change; the lines above the monthly interest do not move it;
    # ELIGIBLE.cbl shrinks below the income rule's range.
    changed_interest = INTEREST.replace("IF WS-RATE < 0.025", "IF WS-RATE < 0.030")
    shrunk = "\n".join(ELIGIBLE.split("\n")[:6]) + "\n"
    write_tree(tree, **{"src/INTEREST.cbl": changed_interest, "src/ELIGIBLE.cbl": shrunk})
    assert acme(*ANA, "files", "import", str(tree), "-p", "Loans core").exit_code == 0
    result = acme(*ANA, "rules", "revalidate", "-p", "Loans core", "--format", "json")
    assert result.exit_code == 0, result.stderr
    # In source order: file, then lines.
    assert json.loads(result.stdout) == [
        {
            "id": str(ids["Income floor"]),
            "name": "Income floor",
            "source_file": "src/ELIGIBLE.cbl",
            "source_start_line": 7,
            "source_end_line": 9,
            "reason": "vanished",
        },
        {
            "id": str(ids["Rate floor of 2.5%"]),
            "name": "Rate floor of 2.5%",
            "source_file": "src/INTEREST.cbl",
            "source_start_line": 9,
            "source_end_line": 11,
            "reason": "changed",
        },
    ]
    assert rows(
        conn,
        "SELECT name, review_status::text, review_comments, version, source_hash"
        " FROM business_rules ORDER BY source_file, source_start_line",
    ) == [
        ("Applicant must be an adult", "pending", None, 1, sha256(excerpt(ELIGIBLE, 4, 6))),
        ("Income floor", "needs_clarification",
         "source lines vanished since extraction (revalidate)", 2,
         sha256(excerpt(ELIGIBLE, 7, 9))),
        ("Rate floor of 2.5%", "needs_clarification",
         "source changed since extraction (revalidate)", 2,
         sha256(excerpt(changed_interest, 9, 11))),
        ("Monthly interest", "pending", None, 1, sha256(excerpt(INTEREST, 12, 13))),
    ]  # fmt: skip
    assert rows(conn, "SELECT DISTINCT change_reason FROM rule_versions WHERE version = 2") == [
        ("revalidate",)
    ]

    # Again: the flagged rules are not re-versioned, nothing new is listed.
    again = acme(*ANA, "rules", "revalidate", "-p", "Loans core", "-q")
    assert (again.exit_code, again.stdout) == (0, "")
    assert rows(conn, "SELECT count(*) FROM rule_versions") == [(6,)]
    # The file vanishes entirely: the adult rule is flagged too.
    (tree / "src" / "ELIGIBLE.cbl").unlink()
    acme(*ANA, "files", "import", str(tree), "-p", "Loans core", "--prune")
    gone = acme(*ANA, "rules", "revalidate", "-p", "Loans core")
    assert gone.stdout.split("\t")[0] == str(ids["Applicant must be an adult"])
    assert gone.stdout.rstrip("\n").split("\t")[-1] == "vanished"
    # Each flagged rule is audited, by the database, as the revalidation's: two, then the
    # adult rule; the runs that flagged nothing wrote nothing.
    audits = rows(
        conn,
        "SELECT action, resource_id, metadata->>'reason' FROM audit_logs"
        " WHERE metadata->>'client' = 'migrationpilot rules revalidate'"
        " ORDER BY ctid",  # append-only: insertion order
    )
    assert [(action, reason) for action, _, reason in audits] == [
        ("rule.clarify", "revalidate")
    ] * 3
    assert audits[-1][1] == ids["Applicant must be an adult"]


def test_a_project_without_rules_revalidates_and_exports_empty(
    acme: Any, loans: UUID, conn: psycopg.Connection[Any]
) -> None:
    revalidated = acme(*ANA, "rules", "revalidate", "-p", "Loans core")
    assert (revalidated.exit_code, revalidated.stdout) == (0, "")
    assert rows(
        conn,
        "SELECT count(*) FROM audit_logs"
        " WHERE metadata->>'client' = 'migrationpilot rules revalidate'",
    ) == [(0,)]
    report = acme(*ANA, "rules", "export", "-p", "Loans core").stdout
    assert "cobol to java, 0 rules" in report
    assert "| **total** | 0 | 0 | 0 | 0 | 0 | - |" in report
    assert "## " not in report
    assert acme(*ANA, "rules", "export", "-p", "Loans core", "--format", "json").stdout == "[]\n"
    assert acme(*ANA, "rules", "list", "-p", "Loans core").stdout == ""
