"""Project teams (V0015): membership gates every write to a project, the tenant's
max_users_per_project holds under concurrent additions, and the `projects members` commands.

Each promise is shown through the CLI and in plain SQL as the app role (what another client
acting for a user runs): the allowed succeed, the others get one line naming the role needed
in the project, exit 1, and the database exactly as it was."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors

from migrationpilot_cli.db import migrations
from tests.conftest import CONSOLE_SCRIPT, rows
from tests.snapshots import digest

Conn = psycopg.Connection[Any]
ORG = "acme-pay"
LOANS = "Loans core"
SOURCE = "       IDENTIFICATION DIVISION.\n       PROGRAM-ID. LOANCALC.\n       STOP RUN.\n"
ANA = ("--as", "ana@acme.test")  # architect; made Loans core, so its first (architect) member
RITA = ("--as", "rita@acme.test")  # reviewer, a member as reviewer
DEVON = ("--as", "devon@acme.test")  # architect in the organization, a viewer member
NORA = ("--as", "nora@acme.test")  # architect in the organization, on no team
LEAD = ("--as", "lead@acme.test")  # admin: acts on every project without a membership
LIMIT_ERROR = "project {} has {} of {} members{}; raise the tenant's max_users_per_project"


def refusal(needed: str, action: str, standing: str) -> str:
    """The one line a refused command prints (the database's message, V0015)."""
    return (
        f"error: permission denied: {needed} role in project {LOANS} required to {action}"
        f" ({standing})\n"
    )


@dataclass
class Team:
    """acme-pay's Loans core, made by ana, with rita and devon on its team, a source file, a
    pending rule, a routing rule and the files a write command reads."""

    project: UUID
    rule: UUID
    users: dict[str, UUID]
    tree: Path


@pytest.fixture
def team(acme: Any, conn: Conn, tmp_path: Path) -> Team:
    assert acme("tenants", "set", "acme", "--max-projects", "10").exit_code == 0
    for address, role in (
        ("rita", "reviewer"),
        ("devon", "architect"),
        ("nora", "architect"),
        ("lead", "admin"),
    ):
        added = acme("users", "add", f"{address}@acme.test", "--name", address.title(),
                     "--org", ORG, "--role", role)  # fmt: skip
        assert added.exit_code == 0, added.stderr
    created = acme(*ANA, "projects", "create", LOANS, "--source", "cobol", "--target", "java", "-q")
    assert created.exit_code == 0, created.stderr
    project = UUID(created.stdout.strip())
    for who, role in (("rita@acme.test", "reviewer"), ("devon@acme.test", "viewer")):
        joined = acme(*ANA, "projects", "members", "add", LOANS, who, "--role", role)
        assert joined.exit_code == 0, joined.stderr
    tree = tmp_path / "legacy"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "LOANCALC.cbl").write_text(SOURCE)
    for command in (
        ("files", "import", str(tree), "-p", LOANS),
        ("routing", "add", "-p", LOANS, "--name", "loans", "--pattern", "/api/loans/**",
         "--target", "loans-java"),
    ):  # fmt: skip
        done = acme(*ANA, *command)
        assert done.exit_code == 0, done.stderr
    rule = _write_inputs(tmp_path, acme)
    users = dict(rows(conn, "SELECT split_part(email, '@', 1), id FROM users"))
    return Team(project, rule, users, tree)


def _write_inputs(tmp: Path, acme: Any) -> UUID:
    """The rules, test cases and generated code a write command imports; the rule imported."""
    record = {"name": "fee", "description": "late fee", "logic": "fee = 1", "category": "decision",
              "confidence": 0.8, "source_file": "src/LOANCALC.cbl", "source_start_line": 1,
              "source_end_line": 2}  # fmt: skip
    (tmp / "rules.jsonl").write_text(json.dumps(record) + "\n")
    imported = acme(*ANA, "rules", "import", str(tmp / "rules.jsonl"), "-p", LOANS)
    assert imported.exit_code == 0, imported.stderr
    listed = acme("rules", "list", "-p", LOANS, "-q")
    rule = UUID(listed.stdout.strip())
    (tmp / "rules.jsonl").write_text(json.dumps({**record, "name": "fee 2"}) + "\n")
    case = {"rule_id": str(rule), "name": "one", "inputs": {}, "expected": 1}
    (tmp / "cases.jsonl").write_text(json.dumps(case) + "\n")
    (tmp / "generated").mkdir()
    (tmp / "generated" / "Loans.java").write_text("class Loans {}\n")
    return rule


# ---------------------------------------------------------------------------------------------
# The gate through the CLI: every command that changes a project
# ---------------------------------------------------------------------------------------------


def _writes(team: Team) -> dict[str, tuple[str, str, list[str]]]:
    """Every kind of change to a project: the role it needs there, the action as the database
    words it, and the command line."""
    tmp = team.tree.parent
    rule = str(team.rule)
    return {
        "files import": ("developer", "import or change source files",
                         ["files", "import", str(team.tree), "-p", LOANS]),
        "rules import": ("developer", "import or edit rules",
                         ["rules", "import", str(tmp / "rules.jsonl"), "-p", LOANS]),
        "rules edit": ("developer", "import or edit rules",
                       ["rules", "edit", rule, "--logic", "fee = 2", "--reason", "probe"]),
        "rules revalidate": ("developer", "import or edit rules",
                             ["rules", "revalidate", "-p", LOANS]),
        "review approve": ("reviewer", "review rules", ["review", "approve", rule]),
        "review clarify": ("reviewer", "review rules",
                           ["review", "clarify", rule, "--comment", "why?"]),
        "tests import": ("developer", "import or change test cases",
                         ["tests", "import", str(tmp / "cases.jsonl"), "-p", LOANS]),
        "generated import": ("developer", "import or change generated files",
                             ["generated", "import", str(tmp / "generated"), "-p", LOANS]),
        "routing add": ("architect", "change routing rules",
                        ["routing", "add", "-p", LOANS, "--name", "x", "--pattern", "/x",
                         "--target", "x-svc"]),
        "routing set": ("architect", "change routing rules",
                        ["routing", "set", "loans", "-p", LOANS, "--traffic", "10"]),
        "routing enable": ("architect", "change routing rules",
                           ["routing", "enable", "loans", "-p", LOANS]),
        "routing disable": ("architect", "change routing rules",
                            ["routing", "disable", "loans", "-p", LOANS]),
        "routing remove": ("architect", "change routing rules",
                           ["routing", "remove", "loans", "-p", LOANS]),
        "projects set-status": ("architect", "change a project's status or settings",
                                ["projects", "set-status", LOANS, "analyzing"]),
        "members add": ("architect", "manage project members",
                        ["projects", "members", "add", LOANS, "nora@acme.test"]),
        "members set": ("architect", "manage project members",
                        ["projects", "members", "set", LOANS, "rita@acme.test", "--role",
                         "viewer"]),
        "members remove": ("architect", "manage project members",
                           ["projects", "members", "remove", LOANS, "rita@acme.test"]),
    }  # fmt: skip


WRITES = list(_writes(Team(UUID(int=0), UUID(int=0), {}, Path("/"))))


@pytest.mark.parametrize("write", WRITES)
def test_cli_someone_not_on_the_team_changes_nothing_in_the_project(
    acme: Any, team: Team, conn: Conn, write: str
) -> None:
    """Nora is an architect of the organization: her role would allow every one of these, but
    she is not a member of Loans core."""
    needed, action, args = _writes(team)[write]
    before = digest(conn)
    result = acme(*NORA, *args)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == refusal(needed, action, "you are not a member of it")
    assert digest(conn) == before


@pytest.mark.parametrize("write", WRITES)
def test_cli_a_member_acts_with_the_lower_of_the_two_roles(
    acme: Any, team: Team, conn: Conn, write: str
) -> None:
    """Devon is an architect of the organization and a viewer member of Loans core."""
    needed, action, args = _writes(team)[write]
    before = digest(conn)
    result = acme(*DEVON, *args)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == refusal(needed, action, "you are viewer in it")
    assert digest(conn) == before


@pytest.mark.parametrize("write", WRITES)
def test_cli_an_admin_acts_on_every_project_without_being_on_its_team(
    acme: Any, team: Team, write: str
) -> None:
    _, _, args = _writes(team)[write]
    result = acme(*LEAD, *args)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("write", "allowed"),
    [("review approve", True), ("rules edit", True), ("routing set", False)],
)
def test_cli_a_reviewer_member_reviews_and_edits_but_does_not_route(
    acme: Any, team: Team, write: str, allowed: bool
) -> None:
    needed, action, args = _writes(team)[write]
    result = acme(*RITA, *args)
    if allowed:
        assert result.exit_code == 0, result.stderr
    else:
        assert (result.exit_code, result.stderr) == (
            1,
            f"error: permission denied: {needed} role required to {action}"
            f" (you are reviewer in {ORG})\n",
        )


def test_cli_the_organization_role_is_asked_first(acme: Any, team: Team, conn: Conn) -> None:
    """A viewer of the organization who is an architect member still acts as a viewer, and
    hears about the organization role, as before teams."""
    added = acme("users", "add", "vic@acme.test", "--name", "Vic", "--org", ORG, "--role", "viewer")
    assert added.exit_code == 0, added.stderr
    joined = acme(*ANA, "projects", "members", "add", LOANS, "vic@acme.test", "--role", "architect")
    assert joined.exit_code == 0, joined.stderr
    before = digest(conn)
    result = acme("--as", "vic@acme.test", "files", "import", str(team.tree), "-p", LOANS)
    assert (result.exit_code, result.stderr) == (
        1,
        "error: permission denied: developer role required to import or change source files"
        f" (you are viewer in {ORG})\n",
    )
    assert digest(conn) == before


@pytest.mark.parametrize(
    "read",
    [
        ["projects", "show", LOANS],
        ["projects", "members", "list", LOANS],
        ["rules", "list", "-p", LOANS],
        ["files", "list", "-p", LOANS],
        ["routing", "list", "-p", LOANS],
        ["rules", "export", "-p", LOANS, "--format", "json"],
    ],
)
def test_cli_anyone_of_the_organization_reads_the_project(
    acme: Any, team: Team, read: list[str]
) -> None:
    result = acme(*NORA, *read)
    assert result.exit_code == 0, result.stderr
    assert result.stdout


# ---------------------------------------------------------------------------------------------
# The gate in plain SQL, as the app role
# ---------------------------------------------------------------------------------------------


@contextmanager
def as_user(conn: Conn, user: UUID) -> Iterator[None]:
    """One rolled-back transaction as the app role acting for ``user``, as docs/security.md
    tells another application to do."""
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ROLE migrationpilot_app")
        conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(user),))
        yield


SQL_WRITES: dict[str, tuple[str, str, str]] = {
    "add a source file": (
        "developer", "import or change source files",
        "INSERT INTO source_files (project_id, path, content) VALUES (%(project)s, 'X.cbl', '')",
    ),
    "change a source file": (
        "developer", "import or change source files",
        "UPDATE source_files SET content = content || ' ' WHERE project_id = %(project)s",
    ),
    "delete source files": (
        "developer", "import or change source files",
        "DELETE FROM source_files WHERE project_id = %(project)s",
    ),
    "add a rule": (
        "developer", "import or edit rules",
        "INSERT INTO business_rules (project_id, name, description, category, source_file,"
        " source_start_line, source_end_line, source_code, logic, confidence)"
        " VALUES (%(project)s, 'r', 'd', 'decision', 'src/X.cbl', 1, 1, '', 'l', 0.5)",
    ),
    "edit a rule": (
        "developer", "import or edit rules",
        "UPDATE business_rules SET logic = 'edited' WHERE id = %(rule)s",
    ),
    "approve a rule": (
        "reviewer", "review rules",
        "UPDATE business_rules SET review_status = 'approved', reviewed_by = current_user_id()"
        " WHERE id = %(rule)s",
    ),
    "delete a rule": (
        "developer", "delete rules", "DELETE FROM business_rules WHERE id = %(rule)s",
    ),
    "add a test case": (
        "developer", "import or change test cases",
        "INSERT INTO test_cases (rule_id, inputs, expected) VALUES (%(rule)s, '{}', '1')",
    ),
    "add a generated file": (
        "developer", "import or change generated files",
        "INSERT INTO generated_files (project_id, path, content)"
        " VALUES (%(project)s, 'X.java', '')",
    ),
    "send traffic": (
        "architect", "change routing rules",
        "UPDATE routing_rules SET traffic_percentage = 50 WHERE project_id = %(project)s",
    ),
    "move the project": (
        "architect", "change a project's status or settings",
        "UPDATE projects SET status = 'analyzing' WHERE id = %(project)s",
    ),
    "delete the project": ("architect", "delete projects",
                           "DELETE FROM projects WHERE id = %(project)s"),
    "add a member": (
        "architect", "manage project members",
        "INSERT INTO project_members (project_id, user_id) VALUES (%(project)s, %(newcomer)s)",
    ),
    "change a member's role": (
        "architect", "manage project members",
        "UPDATE project_members SET role = 'viewer' WHERE project_id = %(project)s",
    ),
    "remove the team": ("architect", "manage project members",
                        "DELETE FROM project_members WHERE project_id = %(project)s"),
}  # fmt: skip


@pytest.mark.parametrize("name", SQL_WRITES)
@pytest.mark.parametrize(("who", "standing"), [("nora", None), ("devon", "viewer")])
def test_sql_only_the_team_changes_the_project(
    team: Team, conn: Conn, name: str, who: str, standing: str | None
) -> None:
    needed, action, statement = SQL_WRITES[name]
    params = {"project": team.project, "rule": team.rule, "newcomer": team.users["lead"]}
    said = "you are not a member of it" if standing is None else f"you are {standing} in it"
    before = digest(conn)
    with pytest.raises(errors.InsufficientPrivilege) as refused, as_user(conn, team.users[who]):
        conn.execute(statement, params)
    assert refused.value.diag.message_primary == (
        f"{needed} role in project {LOANS} required to {action} ({said})"
    )
    assert digest(conn) == before


@pytest.mark.parametrize("name", SQL_WRITES)
def test_sql_the_creator_and_an_admin_change_the_project(team: Team, conn: Conn, name: str) -> None:
    _, _, statement = SQL_WRITES[name]
    params = {"project": team.project, "rule": team.rule, "newcomer": team.users["nora"]}
    for who in ("ana", "lead"):
        with as_user(conn, team.users[who]):
            assert conn.execute(statement, params).rowcount >= 1, who


def test_sql_the_gate_is_checked_once_per_statement(team: Team, conn: Conn) -> None:
    """A bulk insert is one lookup per project, not per row: its cost does not grow with the
    rows (a statement of a thousand rows asks the membership once: the statistics of the
    transaction count the calls)."""
    superuser = rows(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if superuser != [(True,)]:
        pytest.skip("needs a superuser to count function calls (track_functions)")
    conn.execute("SET track_functions = 'all'")
    bulk = (
        "INSERT INTO business_rules (project_id, name, description, category, source_file,"
        " source_start_line, source_end_line, source_code, logic, confidence)"
        " SELECT %s, 'bulk ' || n, 'd', 'decision', 'src/X.cbl', 1, 1, '', 'l', 0.5"
        " FROM generate_series(1, 1000) AS n"
    )
    calls = (
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions"
        " WHERE funcname = 'require_project_role'"
    )
    with as_user(conn, team.users["rita"]):
        conn.execute(bulk, (team.project,))
        (counted,) = conn.execute(calls).fetchone() or (None,)
    assert counted == 2  # reviewing (none) and editing (one project): one call each


# ---------------------------------------------------------------------------------------------
# The creator
# ---------------------------------------------------------------------------------------------


def test_the_creator_becomes_the_first_architect_member(acme: Any, team: Team, conn: Conn) -> None:
    made = acme(*NORA, "projects", "create", "Payroll", "--source", "cobol", "--target", "go")
    assert made.exit_code == 0, made.stderr
    listed = acme("projects", "members", "list", "Payroll", "--format", "json")
    assert [(m["email"], m["role"], m["acts_as"]) for m in json.loads(listed.stdout)] == [
        ("nora@acme.test", "architect", "architect")
    ]
    # In plain SQL: a project inserted by a user without created_by is theirs all the same; the
    # operator's, without a creator, has nobody on its team.
    with conn.transaction():
        conn.execute("SET LOCAL ROLE migrationpilot_app")
        conn.execute(
            "SELECT set_config('app.current_user_id', %s, true)", (str(team.users["rita"]),)
        )
        conn.execute(
            "INSERT INTO projects (name, source_language, target_language)"
            " VALUES ('Cards', 'vb6', 'csharp')"
        )
    conn.execute(
        "INSERT INTO projects (name, organization_id, source_language, target_language)"
        " SELECT 'Ledger', id, 'cobol', 'java' FROM organizations WHERE slug = %s",
        (ORG,),
    )
    assert rows(
        conn,
        "SELECT p.name, u.email, m.role::text FROM projects p"
        " LEFT JOIN project_members m ON m.project_id = p.id LEFT JOIN users u ON u.id = m.user_id"
        " WHERE p.name IN ('Cards', 'Ledger') ORDER BY p.name",
    ) == [("Cards", "rita@acme.test", "architect"), ("Ledger", None, None)]


# ---------------------------------------------------------------------------------------------
# The members commands
# ---------------------------------------------------------------------------------------------


def members_of(acme: Any, project: str = LOANS) -> list[tuple[str, str, str, str]]:
    listed = acme("projects", "members", "list", project, "--org", ORG, "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    return [(m["email"], m["role"], m["org_role"], m["acts_as"]) for m in json.loads(listed.stdout)]


def test_add_list_set_and_remove_members(acme: Any, team: Team) -> None:
    assert members_of(acme) == [
        ("ana@acme.test", "architect", "architect", "architect"),
        ("devon@acme.test", "viewer", "architect", "viewer"),
        ("rita@acme.test", "reviewer", "reviewer", "reviewer"),
    ]
    # Several at once, in any letter case; the default role is the organization role (an
    # admin's: architect); who is a member already keeps their role.
    added = acme(*ANA, "projects", "members", "add", LOANS, "NORA@acme.test", "lead@ACME.test",
                 "rita@acme.test", "--format", "json")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert [(r["email"], r["role"], r["outcome"]) for r in json.loads(added.stdout)] == [
        ("nora@acme.test", "architect", "added"),
        ("lead@acme.test", "architect", "added"),
        ("rita@acme.test", "reviewer", "unchanged"),
    ]
    changed = acme(*ANA, "projects", "members", "set", LOANS, "Nora@acme.test", "--role",
                   "developer", "-q")  # fmt: skip
    assert (changed.exit_code, changed.stdout) == (0, "nora@acme.test\n")
    removed = acme(*ANA, "projects", "members", "remove", LOANS, "lead@acme.test", "-q")
    assert (removed.exit_code, removed.stdout) == (0, "lead@acme.test\n")
    assert members_of(acme) == [
        ("ana@acme.test", "architect", "architect", "architect"),
        ("devon@acme.test", "viewer", "architect", "viewer"),
        ("nora@acme.test", "developer", "architect", "developer"),
        ("rita@acme.test", "reviewer", "reviewer", "reviewer"),
    ]


def test_emails_come_from_stdin_too(acme: Any, team: Team) -> None:
    listed = acme("users", "list", "--org", ORG, "--format", "tsv")
    emails = [line.split("\t")[1] for line in listed.stdout.splitlines()]
    piped = "# everyone\n" + "\n".join(emails) + "\n\n"
    added = acme(*ANA, "projects", "members", "add", LOANS, "-", input=piped)
    assert added.exit_code == 0, added.stderr
    assert {email for email, *_ in members_of(acme)} == set(emails)
    gone = acme(*ANA, "projects", "members", "remove", LOANS, "-", input="nora@acme.test\n")
    assert gone.exit_code == 0, gone.stderr
    assert "nora@acme.test" not in {email for email, *_ in members_of(acme)}


def test_members_and_their_roles_show_in_projects_show(acme: Any, team: Team) -> None:
    shown = acme("projects", "show", LOANS, "--format", "json")
    assert json.loads(shown.stdout)["members"] == {
        "ana@acme.test": {"name": "Ana Lima", "role": "architect", "acts_as": "architect"},
        "devon@acme.test": {"name": "Devon", "role": "viewer", "acts_as": "viewer"},
        "rita@acme.test": {"name": "Rita", "role": "reviewer", "acts_as": "reviewer"},
    }


def test_every_change_of_the_team_is_audited(acme: Any, team: Team, conn: Conn) -> None:
    conn.execute("DELETE FROM audit_logs WHERE resource_type = 'project_member'")
    for command in (("add", "nora@acme.test"), ("set", "nora@acme.test", "--role", "viewer"),
                    ("remove", "nora@acme.test")):  # fmt: skip
        assert acme(*ANA, "projects", "members", command[0], LOANS, *command[1:]).exit_code == 0
    audited = rows(
        conn,
        "SELECT action, actor_email, metadata -> 'new' ->> 'role', metadata -> 'old' ->> 'role',"
        " metadata ->> 'client' FROM audit_logs WHERE resource_type = 'project_member'"
        " ORDER BY created_at",
    )
    assert audited == [
        ("project_member.create", "ana@acme.test", "architect", None,
         "migrationpilot projects members add"),
        ("project_member.update", "ana@acme.test", "viewer", "architect",
         "migrationpilot projects members set"),
        ("project_member.delete", "ana@acme.test", None, "viewer",
         "migrationpilot projects members remove"),
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Bad input: one line, the documented exit code, nothing written
# ---------------------------------------------------------------------------------------------

BAD = [
    (["add", LOANS, "nobody@acme.test"], 4,
     "error: no user nobody@acme.test in acme-pay; see `migrationpilot users list`"),
    (["add", LOANS, "nora@acme.test", "bob@globex.test"], 4,  # another organization's
     "error: no user bob@globex.test in acme-pay; see `migrationpilot users list`"),
    (["add", "Nope", "nora@acme.test"], 4,
     "error: no project 'Nope'; see `migrationpilot projects list`"),
    (["add", LOANS, "nora@acme.test", "--role", "boss"], 2,
     "error: Invalid value for '--role': 'boss' is not one of 'architect', 'reviewer',"
     " 'developer', 'viewer'. (see `migrationpilot projects members add --help`)"),
    (["add", LOANS, "nora@acme.test", "--role", "admin"], 2,
     "error: Invalid value for '--role': 'admin' is not one of 'architect', 'reviewer',"
     " 'developer', 'viewer'. (see `migrationpilot projects members add --help`)"),
    (["add", LOANS, "nora"], 2, "error: 'nora' is not an email address"),
    (["set", LOANS, "nora@acme.test", "--role", "viewer"], 4,
     "error: nora@acme.test is not a member of project Loans core;"
     " see `migrationpilot projects members list`"),
    (["remove", LOANS, "rita@acme.test", "nora@acme.test"], 4,
     "error: nora@acme.test is not a member of project Loans core;"
     " see `migrationpilot projects members list`"),
    (["set", LOANS, "rita@acme.test"], 2,
     "error: Missing option '--role'. Choose from: architect, reviewer, developer, viewer"
     " (see `migrationpilot projects members set --help`)"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "code", "message"), BAD)
def test_bad_input_is_one_line_and_changes_nothing(
    acme: Any, team: Team, conn: Conn, args: list[str], code: int, message: str
) -> None:
    before = digest(conn)
    result = acme(*ANA, "projects", "members", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", message + "\n")
    assert digest(conn) == before


def test_a_bad_address_on_stdin_names_its_line(acme: Any, team: Team, conn: Conn) -> None:
    before = digest(conn)
    result = acme(*ANA, "projects", "members", "add", LOANS, "-", input="nora@acme.test\nlead\n")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: stdin line 2: 'lead' is not an email address\n",
    )
    assert digest(conn) == before


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("INSERT INTO project_members (project_id, user_id, role)"
         " VALUES (%(project)s, %(nora)s, 'admin')", errors.CheckViolation),
        ("UPDATE project_members SET user_id = %(nora)s WHERE user_id = %(rita)s",
         errors.CheckViolation),
        ("INSERT INTO project_members (project_id, user_id)"
         " VALUES (%(project)s, %(rita)s)", errors.UniqueViolation),
    ],
    ids=["admin is no project role", "a membership keeps its user", "one membership each"],
)  # fmt: skip
def test_sql_a_membership_is_one_user_in_one_project_in_a_project_role(
    team: Team, conn: Conn, statement: str, error: type[Exception]
) -> None:
    before = digest(conn)
    params = {"project": team.project, **{k: team.users[k] for k in ("nora", "rita")}}
    with pytest.raises(error):
        conn.execute(statement, params)
    assert digest(conn) == before


# ---------------------------------------------------------------------------------------------
# max_users_per_project
# ---------------------------------------------------------------------------------------------


def _limit(acme: Any, count: int) -> None:
    done = acme("tenants", "set", "acme", "--max-users-per-project", str(count))
    assert done.exit_code == 0, done.stderr


def test_twenty_concurrent_additions_leave_exactly_the_limit(
    acme: Any, conn: Conn, database_url: str
) -> None:
    """Twenty `members add` processes at once, one user each, against room for ten: ten are
    added and ten refused, each with the one line that names the fix."""
    _limit(acme, 10)
    made = acme("projects", "create", "Big", "--org", ORG, "--source", "cobol", "--target", "go")
    assert made.exit_code == 0, made.stderr
    conn.execute(
        "INSERT INTO users (email, name, organization_id)"
        " SELECT 'user' || n || '@acme.test', 'User ' || n, id"
        " FROM organizations, generate_series(1, 20) AS n WHERE slug = %s",
        (ORG,),
    )
    processes = [
        subprocess.Popen(
            [str(CONSOLE_SCRIPT), "--database-url", database_url, "projects", "members", "add",
             "Big", f"user{n}@acme.test", "--org", ORG],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n in range(1, 21)
    ]  # fmt: skip
    outcomes = [(p.returncode, p.communicate()[1]) for p in processes if p.wait() is not None]
    refused = f"error: {LIMIT_ERROR.format('Big', 10, 10, '')}\n"
    assert sorted(code for code, _ in outcomes) == [0] * 10 + [1] * 10
    assert [stderr for code, stderr in outcomes if code == 1] == [refused] * 10
    assert rows(
        conn,
        "SELECT count(*) FROM project_members m JOIN projects p ON p.id = m.project_id"
        " WHERE p.name = 'Big'",
    ) == [(10,)]


def test_lowering_the_limit_keeps_the_team_and_refuses_new_members(
    acme: Any, team: Team, conn: Conn
) -> None:
    _limit(acme, 2)  # Loans core has three members
    assert len(members_of(acme)) == 3
    before = digest(conn)
    refused = acme(*ANA, "projects", "members", "add", LOANS, "nora@acme.test")
    assert (refused.exit_code, refused.stderr) == (
        1,
        f"error: {LIMIT_ERROR.format(LOANS, 3, 2, '')}\n",
    )
    assert digest(conn) == before
    # Roles still change and members still leave; then there is room again.
    assert acme(*ANA, "projects", "members", "set", LOANS, "rita@acme.test", "--role",
                "viewer").exit_code == 0  # fmt: skip
    assert acme(*ANA, "projects", "members", "remove", LOANS, "rita@acme.test",
                "devon@acme.test").exit_code == 0  # fmt: skip
    assert acme(*ANA, "projects", "members", "add", LOANS, "nora@acme.test").exit_code == 0
    assert [email for email, *_ in members_of(acme)] == ["ana@acme.test", "nora@acme.test"]


def test_an_addition_of_several_is_refused_whole(acme: Any, team: Team, conn: Conn) -> None:
    _limit(acme, 4)
    before = digest(conn)
    refused = acme(*ANA, "projects", "members", "add", LOANS, "nora@acme.test", "lead@acme.test")
    assert (refused.exit_code, refused.stderr) == (
        1,
        f"error: {LIMIT_ERROR.format(LOANS, 3, 4, ', no room for 2 more')}\n",
    )
    assert digest(conn) == before


def test_sql_the_limit_holds_for_the_app_role_and_the_owner(team: Team, conn: Conn) -> None:
    conn.execute("UPDATE tenants SET max_users_per_project = 3 WHERE slug = 'acme'")
    before = digest(conn)
    add = "INSERT INTO project_members (project_id, user_id) VALUES (%s, %s)"
    with pytest.raises(errors.CheckViolation) as refused, as_user(conn, team.users["ana"]):
        conn.execute(add, (team.project, team.users["nora"]))
    assert refused.value.diag.constraint_name == "tenant_max_users_per_project"
    with pytest.raises(errors.CheckViolation, match="has 3 of 3 members"):
        conn.execute(add, (team.project, team.users["nora"]))
    assert digest(conn) == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "Invalid value for '--max-users-per-project': -1 is not in the range x>=0."),
        (
            "ten",
            "Invalid value for '--max-users-per-project': 'ten' is not a whole number from"
            " -2147483648 to 2147483647",
        ),
    ],
)
def test_the_limit_is_a_whole_number_not_below_zero(
    acme: Any, conn: Conn, value: str, message: str
) -> None:
    before = digest(conn)
    result = acme("tenants", "set", "acme", "--max-users-per-project", value)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"error: {message} (see `migrationpilot tenants set --help`)\n")
    assert digest(conn) == before


# ---------------------------------------------------------------------------------------------
# An existing database, and the demo: today's users keep today's permissions
# ---------------------------------------------------------------------------------------------


def test_migrating_gives_todays_users_the_membership_that_keeps_their_permissions(
    empty_database_url: str,
) -> None:
    files = migrations.discover(migrations.packaged_directory())
    quiet: Callable[..., None] = lambda *_: None  # noqa: E731
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        migrations.migrate(conn, files, target=14, lock_timeout="5s", on_applied=quiet)
        conn.execute(
            """
            WITH t AS (INSERT INTO tenants (name, slug, max_users_per_project)
                       VALUES ('T', 't', 2) RETURNING id),
                 o AS (INSERT INTO organizations (tenant_id, name, slug)
                       SELECT id, 'O', 'o' FROM t RETURNING id)
            INSERT INTO users (organization_id, email, name, role)
            SELECT o.id, u.email, u.email, u.role::user_role FROM o,
                   (VALUES ('boss@o.test', 'admin'), ('dev@o.test', 'developer'),
                           ('rev@o.test', 'reviewer'), ('vic@o.test', 'viewer')) AS u (email, role)
            """
        )
        conn.execute(
            "INSERT INTO projects (organization_id, name, source_language, target_language,"
            " created_by)"
            " SELECT o.id, p.name, 'cobol', 'java', (SELECT id FROM users WHERE email = p.creator)"
            " FROM organizations o,"
            " (VALUES ('Theirs', NULL), ('Devs', 'dev@o.test'), ('Boss', 'boss@o.test'))"
            " AS p (name, creator)"
        )
        migrations.migrate(conn, files, target=None, lock_timeout="5s", on_applied=quiet)
        teams = rows(
            conn,
            "SELECT p.name, u.email, m.role::text FROM project_members m"
            " JOIN projects p ON p.id = m.project_id JOIN users u ON u.id = m.user_id"
            " ORDER BY p.name, u.email",
        )
        audited = rows(
            conn, "SELECT count(*) FROM audit_logs WHERE resource_type = 'project_member'"
        )
    everyone = [("dev@o.test", "developer"), ("rev@o.test", "reviewer"), ("vic@o.test", "viewer")]
    assert teams == [
        ("Boss", "boss@o.test", "architect"),
        *[("Boss", *member) for member in everyone],
        ("Devs", "dev@o.test", "architect"),
        *[("Devs", *member) for member in everyone[1:]],
        *[("Theirs", *member) for member in everyone],
    ]  # above the tenant's limit of 2: kept (a limit stops growth only), and not audited
    assert audited == [(0,)]


def test_the_demo_team_is_its_users(mp: Any) -> None:
    loaded = mp("demo", "load", "--format", "json")
    assert loaded.exit_code == 0, loaded.stderr
    assert json.loads(loaded.stdout)["members"] == {"added": 4, "unchanged": 0}
    listed = mp("projects", "members", "list", LOANS, "--format", "json")
    assert [(m["email"], m["role"]) for m in json.loads(listed.stdout)] == [
        ("ana@acme.test", "reviewer"),
        ("arch@acme.test", "architect"),
        ("dev@acme.test", "developer"),
        ("viewer@acme.test", "viewer"),
    ]
    again = mp("demo", "load", "--format", "json")
    assert json.loads(again.stdout)["members"] == {"added": 0, "unchanged": 4}
