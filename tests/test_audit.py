"""The audit log: append-only for the app role, a row for every change made through the CLI,
and the `audit list` and `audit purge` commands."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from psycopg import errors

from migrationpilot_cli.app import app
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
    """'noun verb' for every command the CLI has."""
    root = typer.main.get_command(app)
    return {
        f"{noun} {verb}"
        for noun, group in getattr(root, "commands", {}).items()
        for verb in getattr(group, "commands", {})
    }


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
    own = one_id(conn, "SELECT id FROM audit_logs WHERE actor_email = 'ana@acme.test'")
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
    resource_id: Callable[[psycopg.Connection[Any]], uuid.UUID] | None
    organization: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    count: int = 1


def _rule(name: str) -> Callable[[psycopg.Connection[Any]], uuid.UUID]:
    return lambda conn: one_id(conn, "SELECT id FROM business_rules WHERE name = %s", name)


def _project(conn: psycopg.Connection[Any]) -> uuid.UUID:
    return one_id(conn, "SELECT id FROM projects WHERE name = 'Loans core'")


def _routing(conn: psycopg.Connection[Any]) -> uuid.UUID:
    return one_id(conn, "SELECT id FROM routing_rules WHERE name = 'loans'")


def _user(email: str) -> Callable[[psycopg.Connection[Any]], uuid.UUID]:
    return lambda conn: one_id(conn, "SELECT id FROM users WHERE email = %s", email)


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
             {"new": {"name": "Initech", "slug": "initech", "subscription": None}}),
        Step("tenants set", ("tenants", "set", "acme", "--max-projects", "9"),
             "tenant.update", None, "tenant",
             lambda c: one_id(c, "SELECT id FROM tenants WHERE slug = 'acme'"), None,
             {"old": {"max_projects": 3}, "new": {"max_projects": 9}}),
        Step("orgs create", ("orgs", "create", "Initech Ops", "--slug", "initech-ops",
                             "--tenant", "initech"),
             "org.create", None, "organization",
             lambda c: one_id(c, "SELECT id FROM organizations WHERE slug = 'initech-ops'"),
             "initech-ops", {"slug": "initech-ops"}),
        Step("users add", ("users", "add", "boss@acme.test", "--name", "Boss", "--org",
                           "acme-pay", "--role", "admin"),
             "user.create", None, "user", _user("boss@acme.test"), "acme-pay",
             {"email": "boss@acme.test", "role": "admin"}),
        Step("users set-role", (*BOSS, "users", "set-role", "ana@acme.test", "admin"),
             "user.set_role", "boss@acme.test", "user", _user("ana@acme.test"), "acme-pay",
             {"old": "architect", "new": "admin"}),
        Step("projects create", (*ANA, "projects", "create", "Loans core", "--source", "cobol",
                                 "--target", "java"),
             "project.create", "ana@acme.test", "project", _project, "acme-pay",
             {"name": "Loans core", "source": "cobol", "target": "java"}),
        Step("projects set-status", (*ANA, "projects", "set-status", "Loans core", "analyzing"),
             "project.set_status", "ana@acme.test", "project", _project, "acme-pay",
             {"old": "draft", "new": "analyzing"}),
        Step("files import", (*ANA, "files", "import", paths["legacy"], *loans),
             "file.import", "ana@acme.test", "project", _project, "acme-pay", {"added": 1}),
        Step("rules import", (*ANA, "rules", "import", paths["rules"], *loans),
             "rule.import", "ana@acme.test", "project", _project, "acme-pay", {"inserted": 3}),
        Step("rules edit", (*ANA, "rules", "edit", "NAME:fee", "--name", "fees",
                            "--reason", "plural"),
             "rule.edit", "ana@acme.test", "rule", _rule("fees"), "acme-pay",
             {"old": {"name": "fee"}, "new": {"name": "fees"}, "reason": "plural"}),
        Step("rules revalidate", (*ANA, "rules", "revalidate", *loans),
             "rule.revalidate", "ana@acme.test", "project", _project, "acme-pay",
             {"checked": 3, "flagged": 0}),
        Step("review approve", (*ANA, "review", "approve", "NAME:rate"),
             "rule.approve", "ana@acme.test", "rule", _rule("rate"), "acme-pay",
             {"old_status": "pending", "new_status": "approved", "version": 2}),
        Step("review reject", (*ANA, "review", "reject", "NAME:floor", "--comment", "no"),
             "rule.reject", "ana@acme.test", "rule", _rule("floor"), "acme-pay",
             {"old_status": "pending", "new_status": "rejected", "comment": "no"}),
        Step("review clarify", (*ANA, "review", "clarify", "NAME:fees", "NAME:rate",
                                "--comment", "why?"),
             "rule.clarify", "ana@acme.test", "rule", None, "acme-pay",
             {"new_status": "needs_clarification", "comment": "why?"}, count=2),
        Step("tests import", (*ANA, "tests", "import", str(cases), *loans),
             "test_case.import", "ana@acme.test", "project", _project, "acme-pay",
             {"inserted": 1}),
        Step("generated import", (*ANA, "generated", "import", paths["generated"], *loans),
             "generated.import", "ana@acme.test", "project", _project, "acme-pay",
             {"added": 1}),
        Step("routing add", (*ANA, "routing", "add", *loans, "--name", "loans", "--pattern",
                             "/api/loans/**", "--target", "loans-java"),
             "routing.add", "ana@acme.test", "routing_rule", _routing, "acme-pay",
             {"new": {"name": "loans", "pattern": "/api/loans/**", "target": "loans-java",
                      "traffic": 0, "shadow": False, "enabled": False}}),
        Step("routing set", (*ANA, "routing", "set", "loans", *loans, "--traffic", "25"),
             "routing.set", "ana@acme.test", "routing_rule", _routing, "acme-pay",
             {"old": {"traffic": 0}, "new": {"traffic": 25}}),
        Step("routing enable", (*ANA, "routing", "enable", "loans", *loans),
             "routing.enable", "ana@acme.test", "routing_rule", _routing, "acme-pay",
             {"old": {"enabled": False}, "new": {"enabled": True}}),
        Step("routing disable", (*ANA, "routing", "disable", "loans", *loans),
             "routing.disable", "ana@acme.test", "routing_rule", _routing, "acme-pay",
             {"old": {"enabled": True}, "new": {"enabled": False}}),
        Step("routing remove", (*ANA, "routing", "remove", "loans", *loans),
             "routing.remove", "ana@acme.test", "routing_rule", None, "acme-pay",
             {"old": {"name": "loans", "traffic": 25}}),
    ]  # fmt: skip


def _resolved(conn: psycopg.Connection[Any], args: tuple[str, ...]) -> list[str]:
    """Arguments with ``NAME:rule`` replaced by that rule's id."""
    return [
        str(_rule(arg[5:])(conn)) if arg.startswith("NAME:") else arg for arg in args
    ]  # fmt: skip


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
        seen = audit_ids(conn)
        result = acme(*_resolved(conn, step.args))
        assert result.exit_code == 0, (step.command, result.stderr)
        audited = new_audit_rows(conn, seen)
        assert len(audited) == step.count, (step.command, audited)
        for row in audited:
            assert row["action"] == step.action, step.command
            assert row["actor_email"] == step.actor, step.command
            assert row["db_role"] == login
            assert (row["user_id"] is None) == (step.actor is None), step.command
            assert row["resource_type"] == step.resource_type, step.command
            if step.resource_id is not None:
                assert row["resource_id"] == step.resource_id(conn), step.command
            assert row["organization"] == step.organization, step.command
            assert _contains(row["metadata"], step.metadata), (step.command, row["metadata"])
        walked.add(step.command)
    # The retention purge and the demo are walked below; everything else is read-only.
    assert every_command() - READ_ONLY - walked == {"audit purge", "demo load"}


def _contains(actual: Any, expected: Any) -> bool:
    """``expected`` is ``actual`` or, for objects, a subset of it (recursively)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(actual[key], value) for key, value in expected.items()
        )
    return bool(actual == expected)


def test_demo_load_is_audited_as_one_change_by_the_operator(
    mp: Any, conn: psycopg.Connection[Any]
) -> None:
    """One row for the load, by the operator; the demo's reviews are audited as Ana's."""
    assert mp("demo", "load").exit_code == 0
    audited = new_audit_rows(conn, set())
    assert {(r["action"], r["actor_email"]) for r in audited[:-1]} == {
        ("rule.approve", "ana@acme.test"),
        ("rule.reject", "ana@acme.test"),
        ("rule.clarify", "ana@acme.test"),
    }
    load = audited[-1]
    assert (load["action"], load["actor_email"], load["resource_type"]) == (
        "demo.load",
        None,
        "project",
    )
    assert load["resource_id"] == one_id(conn, "SELECT id FROM projects")
    assert load["metadata"]["files"]["added"] > 0


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
    assert [row["action"] for row in everything] == [
        "project.create",
        "project.create",
        "user.create",
        "user.create",
        "user.create",
        "org.create",
        "org.create",
        "org.create",
        "tenant.create",
        "tenant.create",
    ]
    newest = everything[0]
    assert newest["actor"] == "bob@globex.test"
    assert (newest["resource_type"], newest["organization"], newest["tenant"]) == (
        "project",
        "globex-ops",
        "globex",
    )
    assert newest["metadata"] == {"name": "Ops", "source": "cobol", "target": "go"}
    assert everything[-1]["actor"] == one_id(conn, "SELECT session_user")  # operator: the login


@pytest.mark.parametrize(
    ("options", "actions"),
    [
        (("--action", "project.create"), ["project.create", "project.create"]),
        (("--action", "org.*"), ["org.create"] * 3),
        (("--user", "ANA@acme.test"), ["project.create"]),
        (("--resource-type", "tenant"), ["tenant.create"] * 2),
        (("--since", "7d", "--resource-type", "tenant"), ["tenant.create"]),
        (("--since", "2000-01-01", "--resource-type", "tenant"), ["tenant.create"] * 2),
        (("--since", "2999-01-01T00:00:00+00:00"), []),
        (("--limit", "1"), ["project.create"]),
    ],
)
def test_list_filters(history: Any, options: tuple[str, ...], actions: list[str]) -> None:
    found = listed(history("audit", "list", *options, "--format", "json"))
    assert [row["action"] for row in found] == actions


def test_list_quiet_prints_ids_and_tsv_has_every_column(
    history: Any, conn: psycopg.Connection[Any]
) -> None:
    ids = history("audit", "list", "--action", "org.create", "-q")
    # Newest first: each org.create is its own command, so created_at orders them.
    expected = rows(
        conn, "SELECT id FROM audit_logs WHERE action = 'org.create' ORDER BY created_at DESC"
    )
    assert len(expected) == 3
    assert ids.stdout.split() == [str(i) for (i,) in expected]
    tsv = history("audit", "list", "--limit", "1")
    assert len(tsv.stdout.rstrip("\n").split("\t")) == 9


def test_a_user_lists_only_their_organizations_rows(history: Any) -> None:
    ana = listed(history(*ANA, "audit", "list", "--format", "json"))
    assert {row["organization"] for row in ana} == {"acme-pay"}
    assert sorted(row["action"] for row in ana) == ["org.create", "project.create", "user.create"]
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
    """acme keeps 30 days, globex the default 90. 40 days old: the org.create rows (acme's two
    expire, globex's one stays); 100 days old: globex's tenant.create (expires)."""
    assert acme("tenants", "set", "acme", "--retention-days", "30").exit_code == 0
    conn.execute(
        "UPDATE audit_logs SET created_at = now() - interval '40 days' WHERE action = 'org.create'"
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
