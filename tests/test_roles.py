"""The roles of an organization, enforced by the database (V0009).

Every capability of the roles table (docs/security.md) is tried by every role, through the CLI
and through plain SQL as the app role: the roles allowed succeed, the others get one line
naming the role needed, exit 1, and the database exactly as it was."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors, sql

from tests.conftest import probe_role, rows

ROLES = ("viewer", "developer", "reviewer", "architect", "admin")
ORG = "acme-pay"
LOANS = "Loans core"
SOURCE = "       IDENTIFICATION DIVISION.\n       PROGRAM-ID. LOANCALC.\n       STOP RUN.\n"
SHA = "0" * 64
TABLES = (
    "users",
    "projects",
    "source_files",
    "business_rules",
    "rule_versions",
    "generated_files",
    "test_cases",
    "routing_rules",
    "audit_logs",
)


def email(role: str) -> str:
    return f"{role}@acme.test"


def allowed(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def refusal(needed: str, action: str, role: str) -> str:
    return f"{needed} role required to {action} (you are {role} in {ORG})"


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Every row of every table a command may write, as the owner sees them."""
    query = "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {} t"
    return {
        table: conn.execute(sql.SQL(query).format(sql.Identifier(table))).fetchone()
        for table in TABLES
    }


@dataclass
class Crew:
    """acme-pay with one user of each role, the project Loans core with one imported source
    file, one pending rule per role (for that role to review or edit) and a routing rule."""

    project: UUID
    rules: dict[str, UUID]
    users: dict[str, UUID]
    tree: Path


@pytest.fixture
def crew(acme: Any, conn: psycopg.Connection[Any], tmp_path: Path) -> Crew:
    assert acme("tenants", "set", "acme", "--max-projects", "20").exit_code == 0
    for role in ROLES:
        added = acme("users", "add", email(role), "--name", role.title(), "--org", ORG,
                     "--role", role)  # fmt: skip
        assert added.exit_code == 0, added.stderr
    created = acme("projects", "create", LOANS, "--org", ORG, "--source", "cobol",
                   "--target", "java", "-q")  # fmt: skip
    assert created.exit_code == 0, created.stderr
    project = UUID(created.stdout.strip())
    # Everyone but the admin (who acts on every project) works on it, in their organization
    # role: what the roles are tried on here is the organization role (V0009); the project
    # role has tests/test_members.py.
    team = [email(role) for role in ROLES if role != "admin"]
    joined = acme("projects", "members", "add", str(project), *team)
    assert joined.exit_code == 0, joined.stderr
    tree = tmp_path / "legacy"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "LOANCALC.cbl").write_text(SOURCE)
    imported = acme("files", "import", str(tree), "-p", str(project))
    assert imported.exit_code == 0, imported.stderr
    rules = {
        role: rule_id
        for role, (rule_id,) in zip(
            ROLES,
            rows(
                conn,
                "INSERT INTO business_rules (organization_id, project_id, name, category,"
                " confidence, source_file, source_start_line, source_end_line, description,"
                " source_code, logic)"
                " SELECT organization_id, id, 'rule ' || n, 'calculation', 0.9,"
                " 'src/LOANCALC.cbl', 1, 1, '', '', '' FROM projects, generate_series(1, 5) n"
                " WHERE id = %s ORDER BY n RETURNING id",
                project,
            ),
            strict=True,
        )
    }
    routed = acme("routing", "add", "-p", str(project), "--name", "loans", "--pattern",
                  "/api/loans/**", "--target", "loans-java")  # fmt: skip
    assert routed.exit_code == 0, routed.stderr
    users = dict(rows(conn, "SELECT role::text, id FROM users WHERE email LIKE '%%@acme.test'"
                      " AND email <> 'ana@acme.test' AND organization_id ="
                      " (SELECT id FROM organizations WHERE slug = %s)", ORG))  # fmt: skip
    return Crew(project, rules, users, tree)


# ---------------------------------------------------------------------------------------------
# Through the CLI: each capability column, each role
# ---------------------------------------------------------------------------------------------


@dataclass
class Capability:
    needed: str
    action: str  # as the database words it
    args: Callable[[Crew, str], list[str]]
    audit: str  # the audit action an allowed run records


def _rules_file(crew: Crew, role: str) -> list[str]:
    path = crew.tree.parent / f"rules-{role}.jsonl"
    record = {
        "name": f"imported by {role}",
        "description": f"what {role} found",
        "logic": "IF x THEN y",
        "category": "decision",
        "confidence": 0.8,
        "source_file": "src/LOANCALC.cbl",
        "source_start_line": 2,
        "source_end_line": 2,
    }
    path.write_text(json.dumps(record) + "\n")
    return ["rules", "import", str(path), "-p", LOANS]


def _tests_file(crew: Crew, role: str) -> list[str]:
    path = crew.tree.parent / f"tests-{role}.jsonl"
    rule = str(crew.rules[role])
    case = {"rule_id": rule, "name": f"case by {role}", "inputs": {}, "expected": 1}
    path.write_text(json.dumps(case) + "\n")
    return ["tests", "import", str(path), "-p", LOANS]


def _generated_tree(crew: Crew, role: str) -> list[str]:
    root = crew.tree.parent / f"generated-{role}"
    root.mkdir()
    (root / f"{role.title()}.java").write_text(f"class {role.title()} {{}}\n")
    return ["generated", "import", str(root), "-p", LOANS]


def _source_tree(crew: Crew, role: str) -> list[str]:
    (crew.tree / "src" / f"{role.upper()}.cbl").write_text(SOURCE)
    return ["files", "import", str(crew.tree), "-p", LOANS]


# The status each allowed role moves the project to: the workflow goes one step at a time.
_NEXT_STATUS = {"architect": "analyzing", "admin": "analysis_complete"}

CAPABILITIES = {
    "files import": Capability(
        "developer", "import or change source files", _source_tree, "source_file.create"
    ),
    "rules import": Capability("developer", "import or edit rules", _rules_file, "rule.create"),
    "rules edit": Capability(
        "developer",
        "import or edit rules",
        lambda crew, role: [
            "rules",
            "edit",
            str(crew.rules[role]),
            "--name",
            f"renamed by {role}",
            "--reason",
            "clearer",
        ],
        "rule.update",
    ),
    "tests import": Capability(
        "developer", "import or change test cases", _tests_file, "test_case.create"
    ),
    "generated import": Capability(
        "developer", "import or change generated files", _generated_tree, "generated_file.create"
    ),
    "projects create": Capability(
        "developer",
        "create projects",
        lambda crew, role: [
            "projects",
            "create",
            f"{role} project",
            "--source",
            "cobol",
            "--target",
            "java",
        ],
        "project.create",
    ),
    "review approve": Capability(
        "reviewer",
        "review rules",
        lambda crew, role: ["review", "approve", str(crew.rules[role])],
        "rule.approve",
    ),
    "review reject": Capability(
        "reviewer",
        "review rules",
        # By the first 8 hex digits of the rule's id, as a table shows it.
        lambda crew, role: ["review", "reject", crew.rules[role].hex[:8], "--comment", "no"],
        "rule.reject",
    ),
    "projects set-status": Capability(
        "architect",
        "change a project's status or settings",
        lambda crew, role: ["projects", "set-status", LOANS, _NEXT_STATUS.get(role, "analyzing")],
        "project.update",
    ),
    "routing add": Capability(
        "architect",
        "change routing rules",
        lambda crew, role: [
            "routing",
            "add",
            "-p",
            LOANS,
            "--name",
            f"by-{role}",
            "--pattern",
            f"/api/{role}/**",
            "--target",
            "loans-java",
        ],
        "routing_rule.create",
    ),
    "routing set": Capability(
        "architect",
        "change routing rules",
        lambda crew, role: [
            "routing",
            "set",
            "loans",
            "-p",
            LOANS,
            "--traffic",
            str(ROLES.index(role) * 10 + 10),
        ],
        "routing_rule.update",
    ),
    "users add": Capability(
        "admin",
        "manage users",
        lambda crew, role: ["users", "add", f"new-{role}@acme.test", "--name", "New"],
        "user.create",
    ),
    "users set-role": Capability(
        "admin",
        "manage users",
        lambda crew, role: ["users", "set-role", email("viewer"), "developer"],
        "user.update",
    ),
}


@pytest.mark.parametrize("name", CAPABILITIES)
def test_each_role_may_do_what_its_column_allows_through_the_cli(
    crew: Crew, acme: Any, conn: psycopg.Connection[Any], name: str
) -> None:
    capability = CAPABILITIES[name]
    for role in ROLES:  # lowest first: an allowed run never changes what a refusal sees
        before = snapshot(conn)
        result = acme("--as", email(role), *capability.args(crew, role))
        if allowed(role, capability.needed):
            assert result.exit_code == 0, (role, result.stderr)
            assert rows(
                conn,
                "SELECT count(*) FROM audit_logs WHERE action = %s AND actor_email = %s",
                capability.audit,
                email(role),
            ) == [(1,)], role
        else:
            assert (result.exit_code, result.stdout) == (1, ""), (role, result.stderr)
            assert result.stderr == (
                f"error: permission denied: {refusal(capability.needed, capability.action, role)}\n"
            )
            assert snapshot(conn) == before, role


def test_a_review_that_would_change_nothing_is_refused_too(
    crew: Crew, acme: Any, conn: psycopg.Connection[Any]
) -> None:
    rule = str(crew.rules["viewer"])
    assert acme("--as", email("reviewer"), "review", "approve", rule).exit_code == 0
    before = snapshot(conn)
    again = acme("--as", email("developer"), "review", "approve", rule)
    assert (again.exit_code, again.stdout) == (1, "")
    assert again.stderr == (
        f"error: permission denied: {refusal('reviewer', 'review rules', 'developer')}\n"
    )
    assert snapshot(conn) == before


@pytest.mark.parametrize(
    ("needed", "action", "args"),
    [
        ("developer", "import or edit rules", ["rules", "revalidate", "-p", LOANS]),
        (
            "developer",
            "import or edit rules",
            ["rules", "edit", "RULE", "--name", "rule 1", "--reason", "x"],
        ),
        ("architect", "change routing rules", ["routing", "disable", "loans", "-p", LOANS]),
        ("admin", "manage users", ["users", "set-role", email("viewer"), "viewer"]),
    ],
    ids=["revalidate", "edit", "routing", "users"],
)
def test_a_change_that_would_change_nothing_is_refused_too(
    crew: Crew, acme: Any, conn: psycopg.Connection[Any], needed: str, action: str,
    args: list[str],
) -> None:  # fmt: skip
    # Each changes nothing, or nothing that matters (same values, already disabled, same
    # role): the role is checked before any work all the same.
    args = [str(crew.rules["viewer"]) if arg == "RULE" else arg for arg in args]
    before = snapshot(conn)
    refused = acme("--as", email("viewer"), *args)
    assert (refused.exit_code, refused.stdout) == (1, "")
    assert refused.stderr == f"error: permission denied: {refusal(needed, action, 'viewer')}\n"
    assert snapshot(conn) == before
    allowed_run = acme("--as", email(needed), *args)
    assert allowed_run.exit_code == 0, allowed_run.stderr


def test_operator_mode_is_not_restricted_by_roles(crew: Crew, acme: Any) -> None:
    for args in (
        ["projects", "set-status", LOANS, "analyzing"],
        ["routing", "set", "loans", "-p", LOANS, "--traffic", "5"],
        ["users", "set-role", email("viewer"), "admin"],
        ["rules", "edit", str(crew.rules["viewer"]), "--name", "by the operator", "--reason", "x"],
    ):
        result = acme(*args)
        assert result.exit_code == 0, (args, result.stderr)


def test_an_admin_adds_users_to_their_own_organization_only(
    crew: Crew, acme: Any, conn: psycopg.Connection[Any]
) -> None:
    admin = ("--as", email("admin"))
    added = acme(*admin, "users", "add", "zoe@acme.test", "--name", "Zoe", "--role", "reviewer")
    assert added.exit_code == 0, added.stderr
    assert rows(
        conn,
        "SELECT o.slug, u.role::text FROM users u JOIN organizations o"
        " ON o.id = u.organization_id WHERE u.email = 'zoe@acme.test'",
    ) == [(ORG, "reviewer")]
    before = snapshot(conn)
    elsewhere = acme(
        *admin, "users", "add", "yan@acme.test", "--name", "Yan", "--org", "acme-cards"
    )
    assert elsewhere.exit_code == 4
    assert elsewhere.stderr == (
        "error: no organization 'acme-cards'; see `migrationpilot orgs list`\n"
    )
    foreign = acme(*admin, "users", "set-role", "carl@acme.test", "admin")
    assert foreign.exit_code == 4
    assert snapshot(conn) == before


def test_operators_must_name_the_organization_of_a_new_user(acme: Any) -> None:
    result = acme("users", "add", "zoe@acme.test", "--name", "Zoe")
    assert result.exit_code == 2
    assert (
        result.stderr
        == "error: --org is required in operator mode (or act as an admin with --as)\n"
    )


# ---------------------------------------------------------------------------------------------
# Through plain SQL as the app role: what psql under migrationpilot_app can and cannot do
# ---------------------------------------------------------------------------------------------

# (needed role, what the database says, statement); %(...)s are filled from the crew.
STATEMENTS = {
    "insert a source file": (
        "developer",
        "import or change source files",
        "INSERT INTO source_files (organization_id, project_id, path, content, language,"
        " size_bytes, sha256) SELECT organization_id, id, 'src/X.cbl', '', 'cobol', 0,"
        " %(sha)s FROM projects WHERE id = %(project)s",
    ),
    "delete source files": (
        "developer",
        "import or change source files",
        "DELETE FROM source_files WHERE project_id = %(project)s",
    ),
    "edit a rule's text": (
        "developer",
        "import or edit rules",
        "UPDATE business_rules SET logic = 'x' WHERE id = %(rule)s",
    ),
    "insert a pending rule": (
        "developer",
        "import or edit rules",
        "INSERT INTO business_rules (organization_id, project_id, name, category, confidence,"
        " description, source_file, source_start_line, source_end_line, source_code, logic)"
        " SELECT organization_id, id, 'new', 'decision', 0.5, '', 'src/X.cbl', 1, 1, '', ''"
        " FROM projects WHERE id = %(project)s",
    ),
    "approve a rule": (
        "reviewer",
        "review rules",
        "UPDATE business_rules SET review_status = 'approved', reviewed_by = current_user_id()"
        " WHERE id = %(rule)s",
    ),
    "approve without signing": (
        "reviewer",
        "review rules",
        "UPDATE business_rules SET review_status = 'approved' WHERE id = %(rule)s",
    ),
    "sign a review comment": (
        "reviewer",
        "review rules",
        "UPDATE business_rules SET review_comments = 'ok', reviewed_by = current_user_id()"
        " WHERE id = %(rule)s",
    ),
    "insert a rule already approved": (
        "reviewer",
        "review rules",
        "INSERT INTO business_rules (organization_id, project_id, name, category, confidence,"
        " review_status, description, source_file, source_start_line, source_end_line,"
        " source_code, logic) SELECT organization_id, id, 'sneaky', 'decision', 0.5, 'approved',"
        " '', 'src/X.cbl', 1, 1, '', '' FROM projects WHERE id = %(project)s",
    ),
    "insert a test case": (
        "developer",
        "import or change test cases",
        "INSERT INTO test_cases (organization_id, project_id, rule_id, name)"
        " SELECT organization_id, project_id, id, 'case' FROM business_rules WHERE id = %(rule)s",
    ),
    "insert a generated file": (
        "developer",
        "import or change generated files",
        "INSERT INTO generated_files (organization_id, project_id, path, content, size_bytes,"
        " sha256) SELECT organization_id, id, 'X.java', '', 0, %(sha)s"
        " FROM projects WHERE id = %(project)s",
    ),
    "create a project": (
        "developer",
        "create projects",
        "INSERT INTO projects (name, organization_id, source_language, target_language)"
        " VALUES ('new', current_organization_id(), 'cobol', 'java')",
    ),
    "move a project": (
        "architect",
        "change a project's status or settings",
        "UPDATE projects SET status = 'analyzing' WHERE id = %(project)s",
    ),
    "rename a project": (
        "architect",
        "change a project's status or settings",
        "UPDATE projects SET description = 'x' WHERE id = %(project)s",
    ),
    "delete a project": (
        "architect",
        "delete projects",
        "DELETE FROM projects WHERE id = %(project)s",
    ),
    "add a routing rule": (
        "architect",
        "change routing rules",
        "INSERT INTO routing_rules (organization_id, project_id, name, path_pattern,"
        " target_service) SELECT organization_id, id, 'new', '/new', 'new-service'"
        " FROM projects WHERE id = %(project)s",
    ),
    "shift traffic": (
        "architect",
        "change routing rules",
        "UPDATE routing_rules SET traffic_percentage = 50 WHERE project_id = %(project)s",
    ),
    "add a user": (
        "admin",
        "manage users",
        "INSERT INTO users (email, name, organization_id, role)"
        " VALUES ('new@acme.test', 'New', current_organization_id(), 'admin')",
    ),
    "promote oneself": (
        "admin",
        "manage users",
        "UPDATE users SET role = 'admin' WHERE id = current_user_id()",
    ),
    "remove a user": (
        "admin",
        "manage users",
        "DELETE FROM users WHERE email = 'ana@acme.test'",
    ),
}


def as_user(conn: psycopg.Connection[Any], user_id: UUID) -> None:
    """What the CLI's --as does, spelled out as a psql user would."""
    conn.execute("SET LOCAL ROLE migrationpilot_app")
    conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(user_id),))


@pytest.mark.parametrize("name", STATEMENTS)
def test_each_role_through_plain_sql_as_the_app_role(
    crew: Crew, conn: psycopg.Connection[Any], name: str
) -> None:
    needed, action, statement = STATEMENTS[name]
    params = {"project": crew.project, "rule": crew.rules["viewer"], "sha": SHA}
    before = snapshot(conn)
    for role in ROLES:
        if allowed(role, needed):
            with conn.transaction(force_rollback=True):
                as_user(conn, crew.users[role])
                assert conn.execute(statement, params).rowcount >= 1, role
        else:
            with pytest.raises(errors.InsufficientPrivilege) as refused, conn.transaction():
                as_user(conn, crew.users[role])
                conn.execute(statement, params)
            assert refused.value.diag.message_primary == refusal(needed, action, role)
        assert snapshot(conn) == before, role


@pytest.mark.parametrize(
    ("setup", "statement"),
    [
        # What `rules import` does to a changed rule: back to pending, nobody signed.
        (
            "UPDATE business_rules SET review_status = 'approved', reviewed_at = now(),"
            " review_comments = 'ok' WHERE id = %(rule)s",
            "UPDATE business_rules SET logic = 'new', review_status = 'pending',"
            " reviewed_by = NULL, reviewed_at = NULL, review_comments = NULL WHERE id = %(rule)s",
        ),
        # What `rules revalidate` does: needs_clarification with an automatic comment.
        (
            "SELECT 1",
            "UPDATE business_rules SET review_status = 'needs_clarification',"
            " review_comments = 'source changed', reviewed_at = now() WHERE id = %(rule)s",
        ),
    ],
    ids=["reopen", "flag"],
)
def test_a_developer_may_reopen_or_flag_a_rule_as_imports_do(
    crew: Crew, conn: psycopg.Connection[Any], setup: str, statement: str
) -> None:
    params = {"rule": crew.rules["viewer"]}
    conn.execute(setup, params)
    with conn.transaction():
        as_user(conn, crew.users["developer"])
        assert conn.execute(statement, params).rowcount == 1


def test_a_viewer_is_told_the_role_a_rule_update_needed(
    crew: Crew, conn: psycopg.Connection[Any]
) -> None:
    """The check names the role the statement needed, not merely the next one up."""
    with pytest.raises(errors.InsufficientPrivilege) as refused, conn.transaction():
        as_user(conn, crew.users["viewer"])
        conn.execute(STATEMENTS["approve a rule"][2], {"rule": crew.rules["viewer"]})
    assert refused.value.diag.message_primary == refusal("reviewer", "review rules", "viewer")


def test_the_refusal_carries_a_hint_naming_the_fix(
    crew: Crew, conn: psycopg.Connection[Any]
) -> None:
    with pytest.raises(errors.InsufficientPrivilege) as refused, conn.transaction():
        as_user(conn, crew.users["developer"])
        conn.execute(STATEMENTS["move a project"][2], {"project": crew.project})
    assert refused.value.diag.sqlstate == "42501"
    assert refused.value.diag.message_hint == (
        f"An admin of {ORG} can change your role:"
        f" migrationpilot users set-role {email('developer')} architect"
    )


_AUDIT_INSERT = (
    "INSERT INTO audit_logs (tenant_id, organization_id, user_id, actor_email, db_role, action,"
    " resource_type, resource_id) SELECT current_tenant_id(), current_organization_id(),"
    " %(user_id)s, %(email)s, %(login)s, 'rule.approve', 'rule', %(rule)s"
)


@pytest.mark.parametrize("forged", ["user_id", "email", "login"])
def test_an_audit_row_names_its_real_actor(
    crew: Crew, conn: psycopg.Connection[Any], forged: str
) -> None:
    """A user may write audit rows (every command does) but not in someone else's name: not
    with another user's id or email, nor another database login."""
    login = conn.execute("SELECT session_user").fetchone()
    real = {
        "user_id": crew.users["viewer"],
        "email": email("viewer"),
        "login": login and login[0],
        "rule": crew.rules["viewer"],
    }
    other = {"user_id": crew.users["admin"], "email": email("admin"), "login": "dba"}
    before = snapshot(conn)
    with conn.transaction(force_rollback=True):
        as_user(conn, crew.users["viewer"])
        assert conn.execute(_AUDIT_INSERT, real).rowcount == 1
    with (
        pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
        conn.transaction(),
    ):
        as_user(conn, crew.users["viewer"])
        conn.execute(_AUDIT_INSERT, real | {forged: other[forged]})
    assert snapshot(conn) == before


def test_no_function_of_the_schema_is_executable_by_a_role_without_grants(
    database_url: str,
) -> None:
    # PostgreSQL's default is EXECUTE for PUBLIC: V0011 takes it away from every function,
    # and from the ones the owner creates later.
    with probe_role(database_url) as role, psycopg.connect(database_url) as conn:
        conn.execute("CREATE FUNCTION added_later() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        open_to_probe = rows(
            conn,
            "SELECT p.proname FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND has_function_privilege(%s, p.oid, 'EXECUTE')",
            role,
        )
        assert open_to_probe == []
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        with pytest.raises(errors.InsufficientPrivilege, match="current_organization_id"):
            conn.execute("SELECT current_organization_id()")
        conn.rollback()
        # The app role keeps what its policies and triggers call (audit_verb runs only inside
        # the audit trigger, time_ordered_uuid only inside the versioning ones, as the owner).
        app_may = rows(
            conn,
            "SELECT p.proname FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.prorettype <> 'trigger'::regtype"
            " AND NOT has_function_privilege('migrationpilot_app', p.oid, 'EXECUTE')"
            " AND p.proname NOT IN ('added_later', 'audit_verb', 'time_ordered_uuid')",
        )
        assert app_may == []
