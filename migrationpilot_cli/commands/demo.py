"""`migrationpilot demo load`: a small, real COBOL-to-Java migration to explore.

The demo goes through the same code paths as the commands a user would type (files import,
rules import, tests import, generated import, routing add, review approve), inside one
transaction, so it is also an end-to-end check of them. Loading it twice changes nothing.
"""

from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import typer

from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import NotFound
from migrationpilot_cli.options import examples
from migrationpilot_cli.output import FormatOption, render_record

app = typer.Typer(help="A demo migration project to explore the tool with.", no_args_is_help=True)

DATA = Path(__file__).resolve().parent.parent / "demo"
TENANT_SLUG = "acme-bank"
TENANT = {"slug": TENANT_SLUG, "name": "Acme Bank", "max_projects": 20}
ORGANIZATION = {"slug": "acme-lending", "name": "Acme Lending"}
# One user of each role; ana reviews, lead administers.
USERS = (
    ("lead@acme.test", "Lea Lead", "admin"),
    ("arch@acme.test", "Ari Architect", "architect"),
    ("ana@acme.test", "Ana Lima", "reviewer"),
    ("dev@acme.test", "Dev Oliveira", "developer"),
    ("viewer@acme.test", "Vic Viewer", "viewer"),
)
PROJECT = {
    "name": "Loans core",
    "description": "Monthly loan accounting and eligibility checks, COBOL to Spring Boot.",
    "source_language": "cobol",
    "target_language": "java",
    "target_framework": "spring-boot",
}
# Review outcomes already recorded in the demo, by rule name: the queue is not all pending.
REVIEWS = {
    "approve": ("Monthly interest on the outstanding balance", "Borrowers must be 18 or older",
                "Level annuity payment", "Credit score below 580 declines"),
    "reject": ("Interest rounded half-up to cents",),
    "clarify": ("Borrower country is a two-letter code",),
}  # fmt: skip
STATUS_PATH = ("analyzing", "analysis_complete")


@app.command(
    epilog=examples(
        "migrationpilot demo load",
        "migrationpilot demo load && migrationpilot rules list --pending --min-confidence 0.9",
    )
)
def load(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """Create (or complete) the demo tenant and its "Loans core" project; idempotent.

    The tenant acme-bank, organization acme-lending, a user of each role (ana@acme.test
    reviews), and the project "Loans core" with COBOL sources, 38 extracted rules, test cases,
    generated Java and routing rules."""
    from migrationpilot_cli.validation import require_operator

    require_operator(ctx.obj, "demo load")
    with transaction(ctx.obj) as conn:
        summary = _load(conn)
    render_record(summary, fmt=fmt)


def _load(conn: Any) -> dict[str, Any]:

    organization = _organization(conn)
    users = {email: _user(conn, organization, email, name, role) for email, name, role in USERS}
    project = _project(conn, organization)
    summary = {
        "project": project["name"],
        "organization": organization["slug"],
        "members": _team(conn, organization, project),
        "files": _files(conn, project),
        "rules": _rules(conn, project),
        "test_cases": _test_cases(conn, project),
        "generated_files": _generated(conn, project),
        "routing_rules": _routing(conn, project),
    }
    summary["reviews"] = _reviews(conn, project, users["ana@acme.test"])
    summary["status"] = _advance(conn, project)
    return summary


def _organization(conn: Any) -> dict[str, Any]:
    from migrationpilot_cli.queries import organizations, tenants

    try:
        return organizations.get(conn, ORGANIZATION["slug"])
    except NotFound:
        try:
            tenant = tenants.get(conn, TENANT_SLUG)
        except NotFound:
            tenant = tenants.create(conn, TENANT)
        return organizations.create(conn, tenant_id=tenant["id"], **ORGANIZATION)


def _user(conn: Any, organization: dict[str, Any], email: str, name: str, role: str) -> UUID:
    from migrationpilot_cli.queries import users

    try:
        found = users.get(conn, email)
    except NotFound:
        found = users.add(conn, email=email, name=name, organization_id=organization["id"],
                          role=role)  # fmt: skip
    return found["id"]  # type: ignore[no-any-return]


def _project(conn: Any, organization: dict[str, Any]) -> dict[str, Any]:
    from migrationpilot_cli.queries import projects

    try:
        return projects.get(conn, PROJECT["name"], organization["id"])
    except NotFound:
        return projects.create(conn, {**PROJECT, "organization_id": organization["id"]})


def _team(conn: Any, organization: dict[str, Any], project: dict[str, Any]) -> dict[str, int]:
    """Every demo user but the admin works on the project, in their organization role (the
    admin acts on every project anyway)."""
    from migrationpilot_cli.queries import members, users

    team = [email for email, _, role in USERS if role != "admin"]
    people = users.in_organization(conn, organization["id"], organization["slug"], team)
    outcomes = Counter(row["outcome"] for row in members.add(conn, project, people, None))
    return {"added": outcomes["added"], "unchanged": outcomes["unchanged"]}


def _files(conn: Any, project: dict[str, Any]) -> dict[str, int]:
    from migrationpilot_cli import sourcetree
    from migrationpilot_cli.queries import files

    tree = sourcetree.read(
        DATA / "legacy", sourcetree.Scan(), source_language=project["source_language"]
    )
    return _counts(files.merge(conn, project, tree, prune=False))


def _rules(conn: Any, project: dict[str, Any]) -> dict[str, int]:
    from migrationpilot_cli import jsonrecords, rulefiles
    from migrationpilot_cli.queries import rule_import

    text = (DATA / "rules.jsonl").read_text(encoding="utf-8")
    records = rulefiles.checked(jsonrecords.parse(text, "demo rules.jsonl"))
    return rule_import.merge(conn, project, records)


def _rule_ids(conn: Any, project: dict[str, Any]) -> dict[str, UUID]:
    found = conn.execute(
        "SELECT name, id FROM business_rules WHERE project_id = %s", (project["id"],)
    ).fetchall()
    return {row["name"]: row["id"] for row in found}


def _test_cases(conn: Any, project: dict[str, Any]) -> dict[str, int]:
    from migrationpilot_cli import jsonrecords
    from migrationpilot_cli.commands.testcases import validated
    from migrationpilot_cli.queries import test_cases

    ids = _rule_ids(conn, project)
    text = (DATA / "cases.jsonl").read_text(encoding="utf-8")
    # The demo names each case's rule; the import takes the rule's id.
    records = [
        (location, {**{k: v for k, v in record.items() if k != "rule"},
                    "rule_id": str(ids[record["rule"]])})
        for location, record in jsonrecords.parse(text, "demo cases.jsonl")
    ]  # fmt: skip
    return test_cases.merge(conn, project, validated(records))


def _generated(conn: Any, project: dict[str, Any]) -> dict[str, int]:
    from migrationpilot_cli.commands.generated import read_tree
    from migrationpilot_cli.queries import generated
    from migrationpilot_cli.sourcetree import Scan

    files = read_tree(DATA / "generated", (), None, False, Scan(), lambda done, total: None)
    return _counts(generated.merge(conn, project, files))


def _routing(conn: Any, project: dict[str, Any]) -> dict[str, int]:
    from migrationpilot_cli import jsonrecords
    from migrationpilot_cli.queries import routing

    existing = {
        rule["name"]
        for rule in routing.list_all(conn, project_id=project["id"], enabled_only=False)
    }
    text = (DATA / "routing.jsonl").read_text(encoding="utf-8")
    added = 0
    for _, values in jsonrecords.parse(text, "demo routing.jsonl"):
        if values["name"] not in existing:
            routing.create(conn, project, values)
            added += 1
    return {"added": added, "unchanged": len(existing)}


def _reviews(conn: Any, project: dict[str, Any], reviewer: UUID) -> dict[str, int]:
    from migrationpilot_cli.queries import reviews

    ids = _rule_ids(conn, project)
    # Recorded as ana's reviews: the versioning trigger and reviewed_by read the acting user.
    conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(reviewer),))
    counts = {"reviewed": 0, "unchanged": 0}
    for verb, names in REVIEWS.items():
        rows = reviews.review(conn, [ids[name] for name in names], verb=verb,
                              comment="demo: reviewed by Ana")  # fmt: skip
        for row in rows:
            counts[row["outcome"]] += 1
    conn.execute("SELECT set_config('app.current_user_id', '', true)")
    return counts


def _advance(conn: Any, project: dict[str, Any]) -> str:
    """Walk a new project through analysis, as the analyzer run that produced the rules did."""
    from migrationpilot_cli.queries import projects

    status = str(project["status"])
    if status == "draft":
        for status in STATUS_PATH:
            projects.set_status(conn, project["id"], status)
    return status


def _counts(outcome: dict[str, list[str]]) -> dict[str, int]:
    return {name: len(paths) for name, paths in outcome.items()}
