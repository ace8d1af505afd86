"""The audit log: append-only for the app role, a row for every change made through the CLI,
and the `audit list` and `audit purge` commands."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests import commandtree
from tests.conftest import rows

ANA = ("--as", "ana@acme.test")
BOSS = ("--as", "boss@acme.test")
SOURCE = "       IDENTIFICATION DIVISION.\n       PROGRAM-ID. LOANCALC.\n       STOP RUN.\n"

# Commands that write nothing to the database (`export` commands write files only).
READ_ONLY = {
    *(f"db {verb}" for verb in ("migrate", "status", "verify", "new", "wait", "start", "stop")),
    "db info",
    *(f"config {verb}" for verb in ("show", "path", "profiles")),
    "tenants list",
    "tenants show",
    "orgs list",
    "orgs show",
    "users list",
    "users show",
    "projects list",
    "projects show",
    "projects members list",
    "files list",
    "files show",
    "rules list",
    "rules show",
    "rules history",
    "rules diff",
    "rules export",
    "tests list",
    "tests show",
    "generated list",
    "generated show",
    "generated export",
    "routing list",
    "routing show",
    "routing resolve",
    "routing export",
    "audit list",
}


def every_command() -> set[str]:
    """'noun verb' for every command the CLI has ('noun group verb' in a group of a noun:
    'projects members add')."""
    return {" ".join(path) for path, _ in commandtree.leaves()}


def new_audit_rows(conn: psycopg.Connection[Any], seen: set[uuid.UUID]) -> list[dict[str, Any]]:
    """The audit rows not in ``seen``, in insertion order: audit_logs is append-only and the
    test's database fresh (nothing here updates or deletes audit rows), so ctid is that order."""
    cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cursor.execute(
        "SELECT a.id, a.user_id, a.actor_email, a.db_role, a.action, a.resource_type,"
        " a.resource_id, o.slug AS organization, t.slug AS tenant, a.metadata"
        " FROM audit_logs a LEFT JOIN organizations o ON o.id = a.organization_id"
        " JOIN tenants t ON t.id = a.tenant_id WHERE a.id <> ALL (%s) ORDER BY a.ctid",
        (list(seen),),
    ).fetchall()


def audit_ids(conn: psycopg.Connection[Any]) -> set[uuid.UUID]:
    return {audit_id for (audit_id,) in rows(conn, "SELECT id FROM audit_logs")}


def one_id(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    """The first column of the query's one row (an id is a ``uuid.UUID``)."""
    (found,) = rows(conn, query, *params)
    return found[0]


# ---------------------------------------------------------------------------------------------
# Append-only
# ---------------------------------------------------------------------------------------------


def test_the_app_role_may_only_read_and_append_audit_rows(conn: psycopg.Connection[Any]) -> None:
    granted = {
        privilege: rows(
            conn, "SELECT has_table_privilege('migrationpilot_app', 'audit_logs', %s)", privilege
        )[0][0]
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES")
    }
    assert granted == {
        "SELECT": True,
        "INSERT": True,
        "UPDATE": False,
        "DELETE": False,
        "TRUNCATE": False,
        "REFERENCES": False,
    }


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_logs SET action = 'rule.approve'",
        "UPDATE audit_logs SET metadata = '{}' WHERE id = %(id)s",
        "DELETE FROM audit_logs",
        "DELETE FROM audit_logs WHERE id = %(id)s",
        "TRUNCATE audit_logs",
    ],
)
def test_a_user_cannot_rewrite_or_remove_audit_rows(
    acme: Any, conn: psycopg.Connection[Any], statement: str
) -> None:
    assert (
        acme(*ANA, "projects", "create", "P", "--source", "cobol", "--target", "go").exit_code == 0
    )
    before = rows(conn, "SELECT * FROM audit_logs ORDER BY id")
    own = one_id(
        conn,
        "SELECT id FROM audit_logs WHERE actor_email = 'ana@acme.test'"
        " AND action = 'project.create'",
    )
    ana = one_id(conn, "SELECT id FROM users WHERE email = 'ana@acme.test'")
    with (
        pytest.raises(errors.InsufficientPrivilege, match="permission denied for table audit_logs"),
        conn.transaction(),
    ):
        conn.execute("SET LOCAL ROLE migrationpilot_app")
        conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(ana),))
        conn.execute(statement, {"id": own})
    assert rows(conn, "SELECT * FROM audit_logs ORDER BY id") == before


# ---------------------------------------------------------------------------------------------
# Every mutating command writes its audit rows
# ---------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One command and the audit rows it must write (``resource_id`` may be computed from the
    database after the command; ``metadata`` lists keys that must have these values)."""

    command: str  # 'noun verb', for the completeness check
    args: tuple[str, ...]
    action: str
    actor: str | None  # email; None: operator mode
    resource_type: str
    # Computed after the command; None: not checked (a row per rule of several).
    resource_id: Callable[[psycopg.Connection[Any]], uuid.UUID | None] | None
    organization: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    count: int = 1
    # The actions of the other rows the command writes, by the same actor and client (a new
    # project's first member): checked for those, not for resource or metadata.
    also: tuple[str, ...] = ()


def _rule(name: str) -> Callable[[psycopg.Connection[Any]], uuid.UUID]:
    return lambda conn: one_id(conn, "SELECT id FROM business_rules WHERE name = %s", name)


def _project(conn: psycopg.Connection[Any]) -> uuid.UUID:
    return one_id(conn, "SELECT id FROM projects WHERE name = 'Loans core'")


def _routing(conn: psycopg.Connection[Any]) -> uuid.UUID:
    return one_id(conn, "SELECT id FROM routing_rules WHERE name = 'loans'")


def _file(conn: psycopg.Connection[Any]) -> uuid.UUID:
    return one_id(conn, "SELECT id FROM source_files")


def _none(conn: psycopg.Connection[Any]) -> None:
    """A statement that changed several rows: its one audit row names them in metadata."""
    return None


def _user(email: str) -> Callable[[psycopg.Connection[Any]], uuid.UUID]:
    return lambda conn: one_id(conn, "SELECT id FROM users WHERE email = %s", email)


def _person(email: str) -> Callable[[psycopg.Connection[Any]], uuid.UUID]:
    """A user's id, also once the account is removed (V0016)."""
    return lambda conn: one_id(conn, "SELECT id FROM people WHERE email = %s", email)


def _member(name: str) -> Callable[[psycopg.Connection[Any]], uuid.UUID]:
    return lambda conn: one_id(
        conn,
        "SELECT m.id FROM project_members m JOIN users u ON u.id = m.user_id WHERE u.name = %s",
        name.title(),
    )


def _inputs(tmp: Path) -> dict[str, str]:
    """A legacy tree, an analyzer output with three rules and a generated tree."""
    (tmp / "legacy" / "src").mkdir(parents=True)
    (tmp / "legacy" / "src" / "LOANCALC.cbl").write_text(SOURCE)
    records = [
        {"name": name, "category": "calculation", "confidence": 0.9,
         "description": f"the loan's {name}", "logic": f"{name} = 1",
         "source_file": "src/LOANCALC.cbl", "source_start_line": line, "source_end_line": line}
        for line, name in enumerate(("rate", "floor", "fee"), start=1)
    ]  # fmt: skip
    (tmp / "rules.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp / "out" / "src").mkdir(parents=True)
    (tmp / "out" / "src" / "Loans.java").write_text("class Loans {}\n")
    return {"legacy": str(tmp / "legacy"), "rules": str(tmp / "rules.jsonl"),
            "generated": str(tmp / "out")}  # fmt: skip


def _steps(paths: dict[str, str], cases: Path) -> list[Step]:
    loans = ("-p", "Loans core")
    return [
        Step("tenants create", ("tenants", "create", "Initech", "--slug", "initech"),
             "tenant.create", None, "tenant",
             lambda c: one_id(c, "SELECT id FROM tenants WHERE slug = 'initech'"), None,
             {"new": {"name": "Initech", "slug": "initech", "settings": {}}}),
        Step("tenants set", ("tenants", "set", "acme", "--max-projects", "9"),
             "tenant.update", None, "tenant",
             lambda c: one_id(c, "SELECT id FROM tenants WHERE slug = 'acme'"), None,
             {"old": {"max_projects": 3}, "new": {"max_projects": 9}}),
        Step("orgs create", ("orgs", "create", "Initech Ops", "--slug", "initech-ops",
                             "--tenant", "initech"),
             "organization.create", None, "organization",
             lambda c: one_id(c, "SELECT id FROM organizations WHERE slug = 'initech-ops'"),
             "initech-ops", {"new": {"slug": "initech-ops"}}),
        Step("orgs set", ("orgs", "set", "initech-ops", "--four-eyes", "on"),
             "organization.update", None, "organization",
             lambda c: one_id(c, "SELECT id FROM organizations WHERE slug = 'initech-ops'"),
             "initech-ops", {"old": {"settings": {}}, "new": {"settings": {"four_eyes": True}}}),
        Step("users add", ("users", "add", "boss@acme.test", "--name", "Boss", "--org",
                           "acme-pay", "--role", "admin"),
             "user.create", None, "user", _user("boss@acme.test"), "acme-pay",
             {"new": {"email": "boss@acme.test", "role": "admin"}}),
        Step("users set-role", (*BOSS, "users", "set-role", "ana@acme.test", "admin"),
             "user.update", "boss@acme.test", "user", _user("ana@acme.test"), "acme-pay",
             {"old": {"role": "architect"}, "new": {"role": "admin"}}),
        Step("projects create", (*ANA, "projects", "create", "Loans core", "--source", "cobol",
                                 "--target", "java"),
             "project.create", "ana@acme.test", "project", _project, "acme-pay",
             {"new": {"name": "Loans core", "source_language": "cobol",
                      "target_language": "java"}}, also=("project_member.create",)),
        # The team (V0015), and the whole life of a user (V0016).
        Step("users add", ("users", "add", "dev@acme.test", "--name", "Dev", "--org",
                           "acme-pay"),
             "user.create", None, "user", _user("dev@acme.test"), "acme-pay",
             {"new": {"email": "dev@acme.test", "role": "developer"}}),
        Step("projects members add", (*ANA, "projects", "members", "add", "Loans core",
                                      "DEV@acme.test"),
             "project_member.create", "ana@acme.test", "project_member", _member("dev"),
             "acme-pay", {"new": {"role": "developer"}}),
        Step("projects members set", (*ANA, "projects", "members", "set", "Loans core",
                                      "dev@acme.test", "--role", "viewer"),
             "project_member.update", "ana@acme.test", "project_member", _member("dev"),
             "acme-pay", {"old": {"role": "developer"}, "new": {"role": "viewer"}}),
        Step("projects members remove", (*ANA, "projects", "members", "remove", "Loans core",
                                         "dev@acme.test"),
             "project_member.delete", "ana@acme.test", "project_member", None, "acme-pay",
             {"old": {"role": "viewer"}}),
        Step("users set", (*BOSS, "users", "set", "dev@acme.test", "--name", "Dev Eloper"),
             "user.update", "boss@acme.test", "user", _user("dev@acme.test"), "acme-pay",
             {"old": {"name": "Dev"}, "new": {"name": "Dev Eloper"}}),
        Step("users disable", (*BOSS, "users", "disable", "dev@acme.test", "--reason", "left"),
             "user.update", "boss@acme.test", "user", _user("dev@acme.test"), "acme-pay",
             {"old": {"disabled_at": None}, "new": {"disabled_reason": "left"}}),
        Step("users enable", (*BOSS, "users", "enable", "dev@acme.test"),
             "user.update", "boss@acme.test", "user", _user("dev@acme.test"), "acme-pay",
             {"old": {"disabled_reason": "left"}, "new": {"disabled_at": None}}),
        Step("users remove", (*BOSS, "users", "remove", "dev@acme.test"),
             "user.delete", "boss@acme.test", "user", _person("dev@acme.test"), "acme-pay",
             {"old": {"email": "dev@acme.test", "name": "Dev Eloper"}}),
        Step("projects set-status", (*ANA, "projects", "set-status", "Loans core", "analyzing"),
             "project.update", "ana@acme.test", "project", _project, "acme-pay",
             {"old": {"status": "draft"}, "new": {"status": "analyzing"}}),
        Step("files import", (*ANA, "files", "import", paths["legacy"], *loans),
             "source_file.create", "ana@acme.test", "source_file", _file, "acme-pay",
             {"count": 1}),
        Step("rules import", (*ANA, "rules", "import", paths["rules"], *loans),
             "rule.create", "ana@acme.test", "rule", _none, "acme-pay", {"count": 3}),
        Step("rules edit", (*ANA, "rules", "edit", "NAME:fee", "--name", "fees",
                            "--reason", "plural"),
             "rule.update", "ana@acme.test", "rule", _rule("fees"), "acme-pay",
             {"old": {"name": "fee"}, "new": {"name": "fees"}, "reason": "plural"}),
        # The source changes under the first rule: the re-import updates the file, and
        # revalidation flags the rule.
        Step("files import", (*ANA, "files", "import", "CHANGED:" + paths["legacy"], *loans),
             "source_file.update", "ana@acme.test", "source_file", _file, "acme-pay",
             {"count": 1}),
        Step("rules revalidate", (*ANA, "rules", "revalidate", *loans),
             "rule.clarify", "ana@acme.test", "rule", _rule("rate"), "acme-pay",
             {"new": {"review_status": "needs_clarification"}, "reason": "revalidate"}),
        Step("review approve", (*ANA, "review", "approve", "NAME:rate"),
             "rule.approve", "ana@acme.test", "rule", _rule("rate"), "acme-pay",
             {"old": {"review_status": "needs_clarification"},
              "new": {"review_status": "approved"}, "reason": "review: approve"}),
        Step("review reject", (*ANA, "review", "reject", "NAME:floor", "--comment", "no"),
             "rule.reject", "ana@acme.test", "rule", _rule("floor"), "acme-pay",
             {"old": {"review_status": "pending"},
              "new": {"review_status": "rejected", "review_comments": "no"}}),
        Step("review clarify", (*ANA, "review", "clarify", "NAME:fees", "NAME:rate",
                                "--comment", "why?"),
             "rule.clarify", "ana@acme.test", "rule", None, "acme-pay",
             {"new": {"review_status": "needs_clarification", "review_comments": "why?"}},
             count=2),
        Step("tests import", (*ANA, "tests", "import", str(cases), *loans),
             "test_case.create", "ana@acme.test", "test_case",
             lambda c: one_id(c, "SELECT id FROM test_cases"), "acme-pay", {"count": 1}),
        Step("generated import", (*ANA, "generated", "import", paths["generated"], *loans),
             "generated_file.create", "ana@acme.test", "generated_file",
             lambda c: one_id(c, "SELECT id FROM generated_files"), "acme-pay", {"count": 1}),
        Step("routing add", (*ANA, "routing", "add", *loans, "--name", "loans", "--pattern",
                             "/api/loans/**", "--target", "loans-java"),
             "routing_rule.create", "ana@acme.test", "routing_rule", _routing, "acme-pay",
             {"new": {"name": "loans", "path_pattern": "/api/loans/**",
                      "target_service": "loans-java", "traffic_percentage": 0,
                      "shadow_mode": False, "enabled": False}}),
        Step("routing set", (*ANA, "routing", "set", "loans", *loans, "--traffic", "25"),
             "routing_rule.update", "ana@acme.test", "routing_rule", _routing, "acme-pay",
             {"old": {"traffic_percentage": 0}, "new": {"traffic_percentage": 25}}),
        Step("routing enable", (*ANA, "routing", "enable", "loans", *loans),
             "routing_rule.update", "ana@acme.test", "routing_rule", _routing, "acme-pay",
             {"old": {"enabled": False}, "new": {"enabled": True}}),
        Step("routing disable", (*ANA, "routing", "disable", "loans", *loans),
             "routing_rule.update", "ana@acme.test", "routing_rule", _routing, "acme-pay",
             {"old": {"enabled": True}, "new": {"enabled": False}}),
        Step("routing remove", (*ANA, "routing", "remove", "loans", *loans),
             "routing_rule.delete", "ana@acme.test", "routing_rule", None, "acme-pay",
             {"old": {"name": "loans", "traffic_percentage": 25}}),
    ]  # fmt: skip


def _resolved(conn: psycopg.Connection[Any], args: tuple[str, ...]) -> list[str]:
    """Arguments with ``NAME:rule`` replaced by that rule's id."""
    return [
        str(_rule(arg[5:])(conn)) if arg.startswith("NAME:") else arg.removeprefix("CHANGED:")
        for arg in args
    ]


def test_every_mutating_command_writes_its_audit_rows(
    acme: Any, mp: Any, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    paths = _inputs(tmp_path)
    cases = tmp_path / "cases.jsonl"
    login = one_id(conn, "SELECT session_user")
    walked = set()
    for step in _steps(paths, cases):
        if step.command == "tests import":
            case = {"rule_id": str(_rule("rate")(conn)), "name": "one", "inputs": {}, "expected": 1}
            cases.write_text(json.dumps(case) + "\n")
        if any(arg.startswith("CHANGED:") for arg in step.args):
            source = Path(paths["legacy"]) / "src" / "LOANCALC.cbl"
            source.write_text(SOURCE.replace("IDENTIFICATION", "IDENTIFICATION  "))
        seen = audit_ids(conn)
        result = acme(*_resolved(conn, step.args))
        assert result.exit_code == 0, (step.command, result.stderr)
        audited = new_audit_rows(conn, seen)
        main = [row for row in audited if row["action"] == step.action]
        others = sorted(row["action"] for row in audited if row["action"] != step.action)
        assert (len(main), others) == (step.count, sorted(step.also)), (step.command, audited)
        for row in audited:
            assert row["actor_email"] == step.actor, step.command
            assert row["db_role"] == login
            assert (row["user_id"] is None) == (step.actor is None), step.command
            assert row["organization"] == step.organization, step.command
            # What made the change: the command, as the CLI told the database.
            assert row["metadata"]["client"] == f"migrationpilot {step.command}"
        for row in main:
            assert row["resource_type"] == step.resource_type, step.command
            if step.resource_id is not None:
                assert row["resource_id"] == step.resource_id(conn), step.command
            assert _contains(row["metadata"], step.metadata), (step.command, row["metadata"])
        walked.add(step.command)
    # The retention purge and the demo are walked below; the review queue's decisions (a
    # full-screen app) in tests/test_review_queue.py, audit rows and client included;
    # everything else is read-only.
    assert every_command() - READ_ONLY - walked == {"audit purge", "demo load", "review queue"}


def _contains(actual: Any, expected: Any) -> bool:
    """``expected`` is ``actual`` or, for objects, a subset of it (recursively)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(actual[key], value) for key, value in expected.items()
        )
    return bool(actual == expected)


def test_demo_load_is_audited_by_the_database_change_by_change(
    mp: Any, conn: psycopg.Connection[Any]
) -> None:
    """Every change of the load is audited, as the operator's; the demo's reviews as Ana's.
    A bulk insert is one row; loading again changes nothing and audits nothing."""
    assert mp("demo", "load").exit_code == 0
    audited = new_audit_rows(conn, set())
    assert {row["metadata"]["client"] for row in audited} == {"migrationpilot demo load"}
    actions = {(row["action"], row["actor_email"]) for row in audited}
    assert {action for action, actor in actions if actor == "ana@acme.test"} == {
        "rule.approve",
        "rule.reject",
        "rule.clarify",
    }
    assert {action for action, actor in actions if actor is None} == {
        "tenant.create",
        "organization.create",
        "user.create",
        "project.create",
        "project_member.create",
        "project.update",
        "source_file.create",
        "rule.create",
        "test_case.create",
        "generated_file.create",
        "routing_rule.create",
    }
    (imported,) = [row for row in audited if row["action"] == "rule.create"]
    assert imported["metadata"]["count"] == one_id(conn, "SELECT count(*) FROM business_rules")
    assert sorted(imported["metadata"]["ids"]) == sorted(
        str(rule_id) for (rule_id,) in rows(conn, "SELECT id FROM business_rules")
    )
    assert mp("demo", "load").exit_code == 0
    assert new_audit_rows(conn, {row["id"] for row in audited}) == []


# ---------------------------------------------------------------------------------------------
# audit list
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def history(acme: Any, conn: psycopg.Connection[Any]) -> Any:
    """The acme fixture's rows plus a project of ana's and one of bob's, and one row made
    ten days old."""
    for acting, name in ((ANA, "Loans core"), (("--as", "bob@globex.test"), "Ops")):
        created = acme(*acting, "projects", "create", name, "--source", "cobol", "--target", "go")
        assert created.exit_code == 0, created.stderr
    conn.execute(
        "UPDATE audit_logs SET created_at = now() - interval '10 days'"
        " WHERE action = 'tenant.create' AND resource_id ="
        " (SELECT id FROM tenants WHERE slug = 'globex')"
    )
    return acme


def listed(result: Any) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.stderr
    return list(json.loads(result.stdout))


def test_list_shows_newest_first_with_actor_and_resource(
    history: Any, conn: psycopg.Connection[Any]
) -> None:
    everything = listed(history("audit", "list", "--format", "json"))
    # Newest first, command by command; the rows of one command share its time (a project and
    # its creator's membership), in no particular order.
    by_command = [
        sorted(row["action"] for row in rows_of_one)
        for _, rows_of_one in itertools.groupby(everything, key=lambda row: row["created_at"])
    ]
    assert by_command == [
        ["project.create", "project_member.create"],
        ["project.create", "project_member.create"],
        ["user.create"],
        ["user.create"],
        ["user.create"],
        ["organization.create"],
        ["organization.create"],
        ["organization.create"],
        ["tenant.create"],
        ["tenant.create"],
    ]
    newest = next(row for row in everything if row["action"] == "project.create")
    assert newest["actor"] == "bob@globex.test"
    assert (newest["resource_type"], newest["organization"], newest["tenant"]) == (
        "project",
        "globex-ops",
        "globex",
    )
    assert newest["client"] == "migrationpilot projects create"
    assert _contains(
        newest["metadata"],
        {"new": {"name": "Ops", "source_language": "cobol", "target_language": "go"}},
    )
    assert everything[-1]["actor"] == one_id(conn, "SELECT session_user")  # operator: the login


@pytest.mark.parametrize(
    ("options", "actions"),
    [
        (("--action", "project.create"), ["project.create", "project.create"]),
        (("--action", "organization.*"), ["organization.create"] * 3),
        (("--user", "ANA@acme.test"), ["project.create", "project_member.create"]),
        (("--resource-type", "tenant"), ["tenant.create"] * 2),
        (("--since", "7d", "--resource-type", "tenant"), ["tenant.create"]),
        (("--since", "2000-01-01", "--resource-type", "tenant"), ["tenant.create"] * 2),
        (("--since", "2999-01-01T00:00:00+00:00"), []),
        (("--limit", "2"), ["project.create", "project_member.create"]),
    ],
)
def test_list_filters(history: Any, options: tuple[str, ...], actions: list[str]) -> None:
    """(The rows of one command share its time: they are compared in any order.)"""
    found = listed(history("audit", "list", *options, "--format", "json"))
    assert sorted(row["action"] for row in found) == actions


def test_list_quiet_prints_ids_and_tsv_has_every_column(
    history: Any, conn: psycopg.Connection[Any]
) -> None:
    ids = history("audit", "list", "--action", "organization.create", "-q")
    # Newest first: each organization.create is its own command, so created_at orders them.
    expected = rows(
        conn,
        "SELECT id FROM audit_logs WHERE action = 'organization.create' ORDER BY created_at DESC",
    )
    assert len(expected) == 3
    assert ids.stdout.split() == [str(i) for (i,) in expected]
    tsv = history("audit", "list", "--limit", "1")
    assert len(tsv.stdout.rstrip("\n").split("\t")) == 11


def test_a_user_lists_only_their_organizations_rows(history: Any) -> None:
    ana = listed(history(*ANA, "audit", "list", "--format", "json"))
    assert {row["organization"] for row in ana} == {"acme-pay"}
    assert sorted(row["action"] for row in ana) == [
        "organization.create",
        "project.create",
        "project_member.create",
        "user.create",
    ]
    bob_of_ana = listed(
        history(*ANA, "audit", "list", "--user", "bob@globex.test", "--format", "json")
    )
    assert bob_of_ana == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--since", "7x"), "--since '7x': use 30m, 24h, 7d, 2w, or an ISO date such as"
         " 2026-01-31"),
        (("--since", "yesterday"), "--since 'yesterday': use 30m, 24h, 7d, 2w, or an ISO date"
         " such as 2026-01-31"),
        (("--action", "Rule.Approve"), "--action 'Rule.Approve': use noun.verb (rule.approve)"
         " or noun.* (rule.*)"),
        (("--action", "rule"), "--action 'rule': use noun.verb (rule.approve) or noun.* (rule.*)"),
        (("--action", "rule.approve'; --"), "--action \"rule.approve'; --\": use noun.verb"
         " (rule.approve) or noun.* (rule.*)"),
        (("--user", "ana"), "'ana' is not an email address"),
        (("--resource-type", "rule;drop"), "--resource-type 'rule;drop': use a lower-case name"
         " such as rule or project"),
        (("--resource", "3f2z"), "--resource: '3f2z' is not an id: give the id shown in a"
         " listing (e.g. 3f2a9c1e), at least 4 of its first hex digits, or the full uuid"),
    ],
)  # fmt: skip
def test_list_refuses_bad_filters(history: Any, options: tuple[str, ...], message: str) -> None:
    result = history("audit", "list", *options)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"error: {message}\n")


def test_list_refuses_a_limit_below_one(history: Any) -> None:
    result = history("audit", "list", "--limit", "0")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "--limit" in result.stderr


# ---------------------------------------------------------------------------------------------
# audit purge
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def aged(acme: Any, conn: psycopg.Connection[Any]) -> Any:
    """acme keeps 30 days, globex the default 90. 40 days old: the organization.create rows
    (acme's two expire, globex's one stays); 100 days old: globex's tenant.create (expires)."""
    assert acme("tenants", "set", "acme", "--retention-days", "30").exit_code == 0
    conn.execute(
        "UPDATE audit_logs SET created_at = now() - interval '40 days'"
        " WHERE action = 'organization.create'"
    )
    conn.execute(
        "UPDATE audit_logs SET created_at = now() - interval '100 days'"
        " WHERE action = 'tenant.create'"
        " AND tenant_id = (SELECT id FROM tenants WHERE slug = 'globex')"
    )
    return acme


def audit_actions(conn: psycopg.Connection[Any]) -> dict[uuid.UUID, tuple[str, str, bool]]:
    """Every audit row: id -> (tenant, action, whether the tenant's retention has expired it)."""
    return {
        audit_id: (tenant, action, expired)
        for audit_id, tenant, action, expired in rows(
            conn,
            "SELECT a.id, t.slug, a.action,"
            " a.created_at < now() - make_interval(days => t.data_retention_days)"
            " FROM audit_logs a JOIN tenants t ON t.id = a.tenant_id",
        )
    }


def test_dry_run_counts_per_tenant_and_deletes_nothing(
    aged: Any, conn: psycopg.Connection[Any]
) -> None:
    before = rows(conn, "SELECT * FROM audit_logs ORDER BY id")
    result = aged("audit", "purge", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "acme\t30\t2\t0\nglobex\t90\t1\t0\n"
    assert rows(conn, "SELECT * FROM audit_logs ORDER BY id") == before


def test_purge_deletes_expired_rows_per_tenant_and_audits_itself(
    aged: Any, conn: psycopg.Connection[Any]
) -> None:
    before = audit_actions(conn)
    kept = {audit_id: row for audit_id, row in before.items() if not row[2]}
    assert len(before) - len(kept) == 3
    result = aged("audit", "purge", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"tenant": "acme", "retention_days": 30, "purged": 2, "versions_purged": 0},
        {"tenant": "globex", "retention_days": 90, "purged": 1, "versions_purged": 0},
    ]
    after = audit_actions(conn)
    # Exactly the unexpired rows are left, untouched, plus one new audit.purge row per tenant.
    added = sorted(row[:2] for audit_id, row in after.items() if audit_id not in before)
    assert {audit_id: row for audit_id, row in after.items() if audit_id in before} == kept
    assert added == [("acme", "audit.purge"), ("globex", "audit.purge")]
    recorded = rows(
        conn,
        "SELECT resource_type, resource_id = tenant_id, user_id, db_role = session_user,"
        " metadata->'purged', metadata->'versions_purged', metadata->'retention_days',"
        " metadata ? 'older_than'"
        " FROM audit_logs a WHERE action = 'audit.purge'"
        " ORDER BY (SELECT slug FROM tenants t WHERE t.id = a.tenant_id)",
    )
    assert recorded == [
        ("tenant", True, None, True, 2, 0, 30, True),
        ("tenant", True, None, True, 1, 0, 90, True),
    ]
    again = aged("audit", "purge")
    assert again.stdout == "acme\t30\t0\t0\nglobex\t90\t0\t0\n"
    assert audit_actions(conn) == after  # nothing purged: nothing to audit


def test_purge_is_an_operator_command(aged: Any, conn: psycopg.Connection[Any]) -> None:
    before = rows(conn, "SELECT * FROM audit_logs ORDER BY id")
    for options in ((), ("--dry-run",)):
        result = aged(*ANA, "audit", "purge", *options)
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == "error: `audit purge` is an operator command: run it without --as\n"
    assert rows(conn, "SELECT * FROM audit_logs ORDER BY id") == before


# ---------------------------------------------------------------------------------------------
# Audited by the database, whoever the client
# ---------------------------------------------------------------------------------------------


def as_user(conn: psycopg.Connection[Any], email: str) -> uuid.UUID:
    """What another application does to act for a user: the app role, and the user's id."""
    user_id = one_id(conn, "SELECT id FROM users WHERE email = %s", email)
    conn.execute("SET LOCAL ROLE migrationpilot_app")
    conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(user_id),))
    return user_id


@pytest.fixture
def loans(acme: Any, tmp_path: Path) -> Any:
    """Ana's project Loans core with three imported rules and a routing rule at 10%."""
    paths = _inputs(tmp_path)
    for args in (
        ("projects", "create", "Loans core", "--source", "cobol", "--target", "java"),
        ("files", "import", paths["legacy"], "-p", "Loans core"),
        ("rules", "import", paths["rules"], "-p", "Loans core"),
        ("routing", "add", "-p", "Loans core", "--name", "loans", "--pattern", "/api/loans/**",
         "--target", "loans-java", "--traffic", "10"),
    ):  # fmt: skip
        result = acme(*ANA, *args)
        assert result.exit_code == 0, (args, result.stderr)
    return acme


def test_an_edit_in_plain_sql_is_audited_with_the_databases_actor_time_and_client(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    seen = audit_ids(conn)
    rule = _rule("rate")(conn)
    with conn.transaction():
        ana = as_user(conn, "ana@acme.test")
        conn.execute("SELECT set_config('app.change_reason', 'typo', true)")
        conn.execute("UPDATE business_rules SET logic = 'rate = 2' WHERE id = %s", (rule,))
        started = one_id(conn, "SELECT now()")
    conn.execute("RESET ROLE")
    (row,) = new_audit_rows(conn, seen)
    assert (row["action"], row["resource_type"], row["resource_id"]) == (
        "rule.update",
        "rule",
        rule,
    )
    assert (row["user_id"], row["actor_email"], row["organization"]) == (
        ana,
        "ana@acme.test",
        "acme-pay",
    )
    assert row["metadata"] == {
        "client": "sql",
        "reason": "typo",
        "old": {"logic": "rate = 1", "version": 1},
        "new": {"logic": "rate = 2", "version": 2},
    }
    assert one_id(conn, "SELECT created_at FROM audit_logs WHERE id = %s", row["id"]) == started
    listed_row = listed(loans("audit", "list", "--resource", str(rule)[:8], "--format", "json"))
    assert [(r["action"], r["client"], r["actor"]) for r in listed_row] == [
        ("rule.update", "sql", "ana@acme.test"),
        ("rule.create", "migrationpilot rules import", "ana@acme.test"),  # one of three ids
    ]


def test_sending_all_traffic_to_the_new_service_in_plain_sql_is_audited(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    seen = audit_ids(conn)
    with conn.transaction():
        as_user(conn, "ana@acme.test")
        conn.execute("UPDATE routing_rules SET traffic_percentage = 100, enabled = true")
    conn.execute("RESET ROLE")
    (row,) = new_audit_rows(conn, seen)
    assert (row["action"], row["actor_email"], row["resource_id"]) == (
        "routing_rule.update",
        "ana@acme.test",
        _routing(conn),
    )
    assert row["metadata"] == {
        "client": "sql",
        "old": {"traffic_percentage": 10, "enabled": False},
        "new": {"traffic_percentage": 100, "enabled": True},
    }


def test_a_refused_change_writes_no_audit_row(loans: Any, conn: psycopg.Connection[Any]) -> None:
    added = loans("users", "add", "vic@acme.test", "--name", "Vic", "--org", "acme-pay",
                  "--role", "viewer")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    before = rows(conn, "SELECT * FROM audit_logs ORDER BY id")
    refused = pytest.raises(errors.InsufficientPrivilege, match="architect role required")
    with refused, conn.transaction():
        as_user(conn, "vic@acme.test")
        conn.execute("UPDATE routing_rules SET traffic_percentage = 100")
    # Nobody acting: the session can write nothing, its own audit rows included.
    organization = one_id(conn, "SELECT id FROM organizations WHERE slug = 'acme-pay'")
    nobody = pytest.raises(errors.InsufficientPrivilege, match="row-level security policy")
    with nobody, conn.transaction():
        conn.execute("SET LOCAL ROLE migrationpilot_app")
        conn.execute(
            "INSERT INTO audit_logs (organization_id, action, resource_type)"
            " VALUES (%s, 'user.login', 'user')",
            (organization,),
        )
    assert rows(conn, "SELECT * FROM audit_logs ORDER BY id") == before


def test_an_application_cannot_supply_the_time_address_or_actor_of_its_audit_rows(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    seen = audit_ids(conn)
    carl = one_id(conn, "SELECT id FROM users WHERE email = 'carl@acme.test'")
    with conn.transaction():
        ana = as_user(conn, "ana@acme.test")
        # Left out: filled from the session. Given: the database's time and address win.
        conn.execute(
            "INSERT INTO audit_logs (action, resource_type, created_at, ip_address, metadata)"
            " VALUES ('user.login', 'user', '2000-01-01', '6.6.6.6', '{\"via\": \"web\"}')"
        )
        started = one_id(conn, "SELECT now()")
        address = one_id(conn, "SELECT inet_client_addr()::text")
    conn.execute("RESET ROLE")
    (row,) = new_audit_rows(conn, seen)
    assert (row["user_id"], row["actor_email"], row["organization"], row["action"]) == (
        ana,
        "ana@acme.test",
        "acme-pay",
        "user.login",
    )
    stamped = rows(conn, "SELECT created_at, ip_address FROM audit_logs WHERE id = %s", row["id"])
    assert stamped == [(started, address)]
    assert row["metadata"] == {"via": "web"}
    # Another user's name on the row is refused, and writes nothing.
    forged = pytest.raises(errors.InsufficientPrivilege, match="row-level security policy")
    with forged, conn.transaction():
        as_user(conn, "ana@acme.test")
        conn.execute(
            "INSERT INTO audit_logs (user_id, action, resource_type) VALUES (%s, 'x.y', 'x')",
            (carl,),
        )
    assert new_audit_rows(conn, seen) == [row]


def test_a_bulk_delete_is_one_audit_row_naming_every_rule(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    seen = audit_ids(conn)
    doomed = sorted(str(i) for (i,) in rows(conn, "SELECT id FROM business_rules"))
    with conn.transaction():
        as_user(conn, "ana@acme.test")
        assert conn.execute("DELETE FROM business_rules").rowcount == 3
    conn.execute("RESET ROLE")
    (row,) = new_audit_rows(conn, seen)
    assert (row["action"], row["resource_id"], row["organization"]) == (
        "rule.delete",
        None,
        "acme-pay",
    )
    assert row["metadata"] == {"client": "sql", "count": 3, "ids": doomed}


def test_deleting_an_organization_or_a_tenant_cascades_and_is_audited_once(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    # The project, files, rules and routing of acme-pay go with it: its own row stands for
    # them (theirs would name an organization that no longer exists).
    seen = audit_ids(conn)
    conn.execute("DELETE FROM organizations WHERE slug = 'acme-pay'")
    actions = [
        (row["action"], row["organization"], row["tenant"]) for row in new_audit_rows(conn, seen)
    ]
    assert actions == [("organization.delete", None, "acme")]
    seen = audit_ids(conn)
    acme_id = one_id(conn, "SELECT id FROM tenants WHERE slug = 'acme'")
    conn.execute("DELETE FROM tenants WHERE slug = 'acme'")
    # The tenant's rows outlive it: they keep its id (no foreign key), for the record.
    assert rows(
        conn,
        "SELECT action, organization_id, resource_id = %s FROM audit_logs"
        " WHERE tenant_id = %s AND id <> ALL (%s) ORDER BY action",
        acme_id, acme_id, list(seen),
    ) == [("organization.delete", None, False), ("tenant.delete", None, True)]  # fmt: skip


def test_a_statement_of_more_than_100000_rows_is_audited_in_rows_of_100000_ids(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    # A jsonb value cannot exceed 256 MB: a single row naming ten million ids would fail the
    # statement it audits. 100,001 generated files: two rows, every id named once.
    seen = audit_ids(conn)
    conn.execute(
        "INSERT INTO generated_files (project_id, path, type, content)"
        " SELECT p.id, 'gen/' || n || '.java', 'source', '' FROM projects AS p,"
        " generate_series(1, 100001) AS n"
    )
    audited = new_audit_rows(conn, seen)
    assert sorted(row["metadata"]["count"] for row in audited) == [1, 100000]
    assert {row["action"] for row in audited} == {"generated_file.create"}
    named = [rule_id for row in audited for rule_id in row["metadata"]["ids"]]
    assert sorted(named) == sorted(
        str(file_id) for (file_id,) in rows(conn, "SELECT id FROM generated_files")
    )


def test_a_deleted_project_lives_on_in_its_audit_row(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    project = _project(conn)
    seen = audit_ids(conn)
    with conn.transaction():
        as_user(conn, "ana@acme.test")
        assert conn.execute("DELETE FROM projects WHERE id = %s", (project,)).rowcount == 1
    conn.execute("RESET ROLE")
    audited = {row["action"]: row for row in new_audit_rows(conn, seen)}
    # The project's row, whole; its rules, files and routing in one statement row each.
    assert set(audited) == {
        "project.delete",
        "project_member.delete",
        "rule.delete",
        "source_file.delete",
        "routing_rule.delete",
    }
    gone = audited["project.delete"]
    assert (gone["resource_id"], gone["actor_email"]) == (project, "ana@acme.test")
    assert _contains(
        gone["metadata"]["old"],
        {"id": str(project), "name": "Loans core", "source_language": "cobol"},
    )
    assert audited["rule.delete"]["metadata"]["count"] == 3


def test_every_table_of_business_data_is_audited_on_every_event(
    conn: psycopg.Connection[Any],
) -> None:
    # A new table must decide its audit (V0012's list): history tables are the exception.
    # people is history too: who someone was, kept for their versions, reviews and audit
    # rows (V0016), written only from the changes to users, which are audited.
    history = {"audit_logs", "rule_versions", "people", "migrationpilot_schema_history"}
    tables = {
        name
        for (name,) in rows(
            conn,
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'",
        )
    }
    audited = rows(
        conn,
        "SELECT c.relname::text, count(*) FILTER (WHERE t.tgtype & 4 = 4),"
        " count(*) FILTER (WHERE t.tgtype & 16 = 16), count(*) FILTER (WHERE t.tgtype & 8 = 8)"
        " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE t.tgfoid = 'audit_changes'::regproc GROUP BY c.relname ORDER BY 1",
    )
    assert audited == [(table, 1, 1, 1) for table in sorted(tables - history)]
