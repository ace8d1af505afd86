"""`projects`: creation in the right organization, the workflow, limits and the dashboard."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.conftest import rows

ANA = ("--as", "ana@acme.test")


@pytest.fixture
def loans(acme: Any) -> Any:
    created = acme(
        *ANA,
        "projects",
        "create",
        "Loans core",
        "--source",
        "cobol",
        "--target",
        "java",
        "--framework",
        "spring-boot",
        "-q",
    )
    assert created.exit_code == 0, created.stderr
    return uuid.UUID(created.stdout.strip())


def test_create_as_a_user_lands_in_their_organization(
    acme: Any, loans: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    assert rows(
        conn,
        "SELECT p.name, o.slug, p.status::text, p.target_framework, u.email FROM projects p"
        " JOIN organizations o ON o.id = p.organization_id JOIN users u ON u.id = p.created_by",
    ) == [("Loans core", "acme-pay", "draft", "spring-boot", "ana@acme.test")]
    assert rows(
        conn,
        "SELECT action, actor_email, resource_id FROM audit_logs WHERE action = 'project.create'",
    ) == [
        ("project.create", "ana@acme.test", loans),
    ]


def test_operators_name_the_organization(acme: Any, conn: psycopg.Connection[Any]) -> None:
    missing = acme("projects", "create", "Ledger", "--source", "cobol", "--target", "java")
    assert (missing.exit_code, "--org is required" in missing.stderr) == (2, True)
    created = acme(
        "projects",
        "create",
        "Ledger",
        "--org",
        "globex-ops",
        "--source",
        "fortran",
        "--target",
        "python",
        "--format",
        "json",
    )
    assert created.exit_code == 0
    project = json.loads(created.stdout)
    assert (project["organization"], project["created_by"]) == ("globex-ops", None)


def test_bad_project_input_is_refused(
    acme: Any, loans: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    bad_source = acme(*ANA, "projects", "create", "X", "--source", "pl1", "--target", "java")
    assert bad_source.exit_code == 2
    duplicate = acme(
        *ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "go"
    )
    assert duplicate.exit_code == 1
    assert duplicate.stderr == (
        "error: already exists in projects: unique constraint projects_organization_id_name_key\n"
    )
    assert rows(conn, "SELECT count(*) FROM projects") == [(1,)]


def test_names_are_unique_per_organization_and_ambiguity_is_explained(
    acme: Any, loans: uuid.UUID
) -> None:
    other = acme(
        "--as",
        "bob@globex.test",
        "projects",
        "create",
        "Loans core",
        "--source",
        "cobol",
        "--target",
        "csharp",
        "-q",
    )
    assert other.exit_code == 0
    other_id = uuid.UUID(other.stdout.strip())
    ambiguous = acme("projects", "show", "Loans core")
    assert ambiguous.exit_code == 2
    assert ambiguous.stderr.startswith("error: 'Loans core' names more than one project: ")
    # Both candidates are named by their full id, and the way out is given.
    assert str(loans) in ambiguous.stderr and str(other_id) in ambiguous.stderr
    assert ambiguous.stderr.endswith("; use the id or --org\n")
    shown = acme("projects", "show", "Loans core", "--org", "globex-ops", "--format", "json")
    assert json.loads(shown.stdout)["target_language"] == "csharp"
    # Each user resolves the name within what they can see.
    mine = acme(*ANA, "projects", "show", "Loans core", "--format", "json")
    assert json.loads(mine.stdout)["id"] == str(loans)


def test_list_filters_by_org_and_status(acme: Any, loans: uuid.UUID) -> None:
    acme("projects", "create", "Cards", "--org", "acme-cards", "--source", "vb6", "--target", "go")
    acme(*ANA, "projects", "set-status", "Loans core", "analyzing")
    everything = acme("projects", "list", "--format", "json")
    assert [p["name"] for p in json.loads(everything.stdout)] == ["Cards", "Loans core"]
    analyzing = acme("projects", "list", "--status", "analyzing", "-q")
    assert analyzing.stdout.split() == [str(loans)]
    by_org = acme("projects", "list", "--org", "acme-cards", "--format", "json")
    assert [p["name"] for p in json.loads(by_org.stdout)] == ["Cards"]
    assert acme(*ANA, "projects", "list", "-q").stdout.split() == [str(loans)]
    assert acme("projects", "list", "--status", "sleeping").exit_code == 2


def test_status_workflow_moves_forward_and_refuses_skips(
    acme: Any, loans: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    moved = acme(*ANA, "projects", "set-status", "Loans core", "analyzing", "--format", "json")
    assert json.loads(moved.stdout)["status"] == "analyzing"
    refused = acme(*ANA, "projects", "set-status", "Loans core", "completed")
    assert refused.exit_code == 1
    assert "cannot move from analyzing to completed" in refused.stderr
    assert "analysis_complete" in refused.stderr  # the allowed next states are named
    assert rows(conn, "SELECT status::text FROM projects") == [("analyzing",)]
    assert rows(conn, "SELECT metadata FROM audit_logs WHERE action = 'project.update'") == [
        (
            {
                "client": "migrationpilot projects set-status",
                "old": {"status": "draft"},
                "new": {"status": "analyzing"},
            },
        )
    ]

    # By the first 8 hex digits of its id (as a table shows it), then by the full uuid.
    failed = acme(*ANA, "projects", "set-status", loans.hex[:8], "failed", "--format", "json")
    assert json.loads(failed.stdout)["failed_from"] == "analyzing"
    resumed = acme(*ANA, "projects", "set-status", str(loans), "analyzing", "--format", "json")
    assert json.loads(resumed.stdout)["status"] == "analyzing"


def test_project_limit_is_enforced_across_the_tenant(
    acme: Any, loans: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    # acme allows 3 projects in all; ana's org already has one.
    for name, org in (("Cards", "acme-cards"), ("Ledger", "acme-pay")):
        created = acme(
            "projects", "create", name, "--org", org, "--source", "cobol", "--target", "java"
        )
        assert created.exit_code == 0
    refused = acme(
        *ANA, "projects", "create", "One too many", "--source", "cobol", "--target", "java"
    )
    assert refused.exit_code == 1
    assert "max_projects 3" in refused.stderr and "3 in use" in refused.stderr
    assert rows(conn, "SELECT count(*) FROM projects") == [(3,)]
    assert rows(conn, "SELECT count(*) FROM audit_logs WHERE action = 'project.create'") == [(3,)]
    # Another tenant is not affected.
    assert (
        acme(
            "--as",
            "bob@globex.test",
            "projects",
            "create",
            "Free",
            "--source",
            "cobol",
            "--target",
            "java",
        ).exit_code
        == 0
    )


def test_other_organizations_cannot_see_the_project(acme: Any, loans: uuid.UUID) -> None:
    hidden = acme("--as", "bob@globex.test", "projects", "show", str(loans))
    assert hidden.exit_code == 4
    # An architect of globex does not find it; a developer is refused before any lookup, so
    # the answer says nothing about the project either way.
    assert acme("users", "set-role", "bob@globex.test", "architect").exit_code == 0
    refused = acme("--as", "bob@globex.test", "projects", "set-status", loans.hex[:8], "failed")
    assert refused.exit_code == 4


def seed_statistics(conn: psycopg.Connection[Any], project_id: uuid.UUID) -> None:
    (org,) = (
        conn.execute("SELECT organization_id FROM projects WHERE id = %s", (project_id,)).fetchone()
        or ()
    )
    files = [
        ("src/LOANCALC.cbl", "cobol", 120, 90, 20, 10),
        ("src/ELIGIBLE.cbl", "cobol", 80, 60, 15, 5),
        ("copy/LOANREC.cpy", "cobol-copybook", 30, 25, 5, 0),
    ]
    for path, language, total, code, comment, blank in files:
        conn.execute(
            "INSERT INTO source_files (organization_id, project_id, path, content, language,"
            " size_bytes, sha256, line_count, code_lines, comment_lines, blank_lines)"
            " VALUES (%s, %s, %s, '', %s, 0, repeat('0', 64), %s, %s, %s, %s)",
            (org, project_id, path, language, total, code, comment, blank),
        )
    for name, category, confidence, status in (
        ("Interest", "calculation", 0.95, "pending"),
        ("Eligibility", "validation", 0.80, "approved"),
        ("Late fee", "calculation", 0.62, "pending"),
    ):
        conn.execute(
            "INSERT INTO business_rules (organization_id, project_id, name, category, confidence,"
            " review_status, description, source_file, source_start_line, source_end_line,"
            " source_code, logic) VALUES (%s, %s, %s, %s, %s, %s, %s, 'src/LOANCALC.cbl', 1, 2,"
            " '       COMPUTE X = 1.', 'x = 1')",
            (org, project_id, name, category, confidence, status, f"{name} rule"),
        )
    conn.execute(
        "INSERT INTO routing_rules (organization_id, project_id, name, path_pattern,"
        " target_service, traffic_percentage, enabled)"
        " VALUES (%s, %s, 'accounts-read', '/api/accounts/**', 'accounts-java', 10, true)",
        (org, project_id),
    )


def test_dashboard_statistics_come_from_the_data(
    acme: Any, loans: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    seed_statistics(conn, loans)
    board = json.loads(acme(*ANA, "projects", "show", "Loans core", "--format", "json").stdout)
    assert (board["name"], board["status"], board["files"], board["lines"]) == (
        "Loans core",
        "draft",
        3,
        230,
    )
    assert board["files_by_language"]["cobol"] == {
        "files": 2,
        "lines": 200,
        "code_lines": 150,
        "comment_lines": 35,
        "blank_lines": 15,
    }
    assert board["rules_by_status"] == {"approved": 1, "pending": 2}
    assert board["rules_by_category"] == {"calculation": 2, "validation": 1}
    assert board["average_confidence"] == pytest.approx(0.79)
    assert (board["test_cases"], board["generated_files"]) == (0, 0)
    assert board["routing"]["accounts-read"]["traffic"] == 10

    tsv = dict(
        line.split("\t")
        for line in acme(*ANA, "projects", "show", "Loans core").stdout.splitlines()
    )
    assert tsv["files_by_language.cobol-copybook.lines"] == "30"
    assert tsv["routing.accounts-read.target"] == "accounts-java"
    table = acme(*ANA, "projects", "show", "Loans core", "--format", "table").stdout
    assert "files_by_language" in table and "accounts-java" in table
