"""`demo load`: the newcomer's first command builds a real project, and only once."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from tests.conftest import rows

COUNTS = """
SELECT (SELECT count(*) FROM source_files), (SELECT count(*) FROM business_rules),
       (SELECT count(*) FROM test_cases), (SELECT count(*) FROM generated_files),
       (SELECT count(*) FROM routing_rules), (SELECT count(*) FROM rule_versions),
       (SELECT count(*) FROM users)
"""


def test_demo_loads_a_whole_project_through_the_real_imports(
    mp: Any, conn: psycopg.Connection[Any]
) -> None:
    loaded = mp("demo", "load", "--format", "json")
    assert loaded.exit_code == 0, loaded.stderr
    summary = json.loads(loaded.stdout)
    assert (summary["rules"]["inserted"], summary["files"]["added"]) == (38, 3)
    assert summary["status"] == "analysis_complete"
    assert rows(conn, COUNTS) == [(3, 38, 16, 4, 3, 38 + 6, 5)]
    roles = rows(conn, "SELECT u.role::text FROM users u ORDER BY u.role")  # the enum's order
    assert roles == [("admin",), ("architect",), ("reviewer",), ("developer",), ("viewer",)]
    reviewed = rows(
        conn,
        "SELECT r.review_status::text, u.email, count(*) FROM business_rules r"
        " JOIN users u ON u.id = r.reviewed_by GROUP BY 1, 2 ORDER BY 1",
    )
    assert reviewed == [
        ("approved", "ana@acme.test", 4),
        ("needs_clarification", "ana@acme.test", 1),
        ("rejected", "ana@acme.test", 1),
    ]
    # Every rule's source excerpt was cut from the stored COBOL.
    assert rows(conn, "SELECT count(*) FROM business_rules WHERE source_code IS NULL") == [(0,)]


def test_loading_twice_changes_nothing(mp: Any, conn: psycopg.Connection[Any]) -> None:
    mp("demo", "load")
    before = rows(conn, COUNTS)
    again = json.loads(mp("demo", "load", "--format", "json").stdout)
    assert again["rules"] == {"inserted": 0, "updated": 0, "unchanged": 38, "reopened": 0}
    assert again["reviews"] == {"reviewed": 0, "unchanged": 6}
    assert rows(conn, COUNTS) == before


def test_the_readme_tour_works_on_the_demo(mp: Any) -> None:
    mp("demo", "load")
    pending = mp("rules", "list", "--pending", "--min-confidence", "0.9", "--format", "json")
    listed = json.loads(pending.stdout)
    assert listed and all(
        r["confidence"] >= 0.9 and r["review_status"] == "pending" for r in listed
    )
    assert [r["confidence"] for r in listed] == sorted(
        (r["confidence"] for r in listed), reverse=True
    )
    ids = mp("rules", "list", "--pending", "--min-confidence", "0.95", "-q").stdout
    approved = mp("--as", "ana@acme.test", "review", "approve", "-", "--comment", "bulk", input=ids)
    assert approved.exit_code == 0, approved.stderr
    assert mp("rules", "list", "--pending", "--min-confidence", "0.95", "-q").stdout == ""
    resolve = mp(
        "routing",
        "resolve",
        "/api/loans/42/interest",
        "--project",
        "Loans core",
        "--key",
        "user-174",
        "--format",
        "json",
    )
    assert json.loads(resolve.stdout)["rule"] == "loan-interest"


def test_demo_load_is_an_operator_command(mp: Any, conn: psycopg.Connection[Any]) -> None:
    mp("demo", "load")
    refused = mp("--as", "ana@acme.test", "demo", "load")
    assert refused.exit_code == 1
    assert "operator command" in refused.stderr
