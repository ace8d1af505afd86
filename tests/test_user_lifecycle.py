"""The whole life of a user (V0016): renamed, disabled, enabled again and removed, with their
history readable all along, and an organization that always keeps an active admin.

Through the CLI and in plain SQL as the app role (a disabled user is nobody to every policy),
and as the owner where the database itself must refuse (the last admin)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors, sql

from tests.conftest import rows
from tests.snapshots import digest

Conn = psycopg.Connection[Any]
ORG = "acme-pay"
LOANS = "Loans core"
ANA = ("--as", "ana@acme.test")  # architect, made Loans core
LEAD = ("--as", "lead@acme.test")  # the organization's one admin
SOURCE = "       COMPUTE FEE = BALANCE * 0.015.\n       COMPUTE RATE = 0.05.\n"
LAST_ADMIN = (
    "error: lead@acme.test is the last active admin of acme-pay: it cannot be disabled, removed"
    " or demoted\n"
)


@dataclass
class Crew:
    """acme-pay with lead (admin), ana (architect), dev (developer) and rev (reviewer); Loans
    core, made by ana, with dev and rev on its team; a rule dev edited and rev approved."""

    rule: UUID
    users: dict[str, UUID]


@pytest.fixture
def crew(acme: Any, conn: Conn, tmp_path: Path) -> Crew:
    for name, role in (("lead", "admin"), ("dev", "developer"), ("rev", "reviewer")):
        added = acme("users", "add", f"{name}@acme.test", "--name", name.title(), "--org", ORG,
                     "--role", role)  # fmt: skip
        assert added.exit_code == 0, added.stderr
    created = acme(*ANA, "projects", "create", LOANS, "--source", "cobol", "--target", "java")
    assert created.exit_code == 0, created.stderr
    joined = acme(*ANA, "projects", "members", "add", LOANS, "dev@acme.test", "rev@acme.test")
    assert joined.exit_code == 0, joined.stderr
    record = {"name": "fee", "description": "late fee", "logic": "fee = 1", "category": "decision",
              "confidence": 0.9, "source_file": "src/X.cbl", "source_start_line": 1,
              "source_end_line": 1, "source_code": "COMPUTE FEE."}  # fmt: skip
    (tmp_path / "rules.jsonl").write_text(json.dumps(record) + "\n")
    (tmp_path / "legacy" / "src").mkdir(parents=True)
    (tmp_path / "legacy" / "src" / "X.cbl").write_text(SOURCE)
    files = acme(*ANA, "files", "import", str(tmp_path / "legacy"), "-p", LOANS)
    assert files.exit_code == 0, files.stderr
    imported = acme("--as", "dev@acme.test", "rules", "import", str(tmp_path / "rules.jsonl"),
                    "-p", LOANS)  # fmt: skip
    assert imported.exit_code == 0, imported.stderr
    (rule,) = (found for (found,) in rows(conn, "SELECT id FROM business_rules"))
    for command in (
        ("--as", "dev@acme.test", "rules", "edit", str(rule), "--logic", "fee = 2", "--reason",
         "the rate changed"),
        ("--as", "rev@acme.test", "review", "approve", str(rule), "--comment", "checked"),
    ):  # fmt: skip
        done = acme(*command)
        assert done.exit_code == 0, done.stderr
    users = dict(rows(conn, "SELECT split_part(email, '@', 1), id FROM users"))
    return Crew(rule, users)


def shown(acme: Any, *args: str) -> Any:
    result = acme(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------------------
# users set
# ---------------------------------------------------------------------------------------------


def test_users_set_renames_and_moves_an_account_to_a_new_address(
    acme: Any, crew: Crew, conn: Conn
) -> None:
    changed = acme(*LEAD, "users", "set", "DEV@acme.test", "--name", "Dev Eloper", "--email",
                   "Dev.Eloper@acme.test", "--role", "reviewer", "--format", "json")  # fmt: skip
    assert changed.exit_code == 0, changed.stderr
    after = json.loads(changed.stdout)
    assert (after["id"], after["email"], after["name"], after["role"]) == (
        str(crew.users["dev"]),
        "Dev.Eloper@acme.test",
        "Dev Eloper",
        "reviewer",
    )
    # The new address, in any case, is the account; the old one is nobody's.
    assert acme("--as", "dev.eloper@ACME.test", "rules", "list").exit_code == 0
    assert acme("users", "show", "dev@acme.test").exit_code == 4
    # Its history is the same person's, under the name they have now.
    history = shown(acme, "rules", "history", str(crew.rule))
    assert [(v["changed_by"], v["changed_by_name"]) for v in history][:2] == [
        ("Dev.Eloper@acme.test", "Dev Eloper"),
        ("Dev.Eloper@acme.test", "Dev Eloper"),
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("ana@acme.test", "--email", "REV@acme.test"), 1,
         "already exists in users: unique constraint users_email_key"),
        (("ana@acme.test", "--email", "ana"), 2, "'ana' is not an email address"),
        (("ana@acme.test", "--name", "  "), 2, "--name must not be empty"),
        (("ana@acme.test", "--role", "boss"), 2,
         "Invalid value for '--role': 'boss' is not one of 'admin', 'architect', 'reviewer',"
         " 'developer', 'viewer'. (see `migrationpilot users set --help`)"),
        (("ana@acme.test",), 2, "nothing to change: give --name, --email or --role"),
        (("nobody@acme.test", "--name", "X"), 4,
         "no user 'nobody@acme.test'; see `migrationpilot users list`"),
    ],
)  # fmt: skip
def test_users_set_refuses_bad_input_and_changes_nothing(
    acme: Any, crew: Crew, conn: Conn, args: tuple[str, ...], code: int, message: str
) -> None:
    before = digest(conn)
    result = acme(*LEAD, "users", "set", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"error: {message}\n")
    assert digest(conn) == before


def test_only_an_admin_changes_users(acme: Any, crew: Crew, conn: Conn) -> None:
    before = digest(conn)
    for command in (("set", "dev@acme.test", "--name", "D"), ("disable", "dev@acme.test"),
                    ("enable", "dev@acme.test"), ("remove", "dev@acme.test")):  # fmt: skip
        result = acme(*ANA, "users", *command)
        assert (result.exit_code, result.stderr) == (
            1,
            "error: permission denied: admin role required to manage users"
            " (you are architect in acme-pay)\n",
        )
    assert digest(conn) == before


# ---------------------------------------------------------------------------------------------
# disable, enable
# ---------------------------------------------------------------------------------------------


def test_a_disabled_user_can_no_longer_act_until_enabled(acme: Any, crew: Crew, conn: Conn) -> None:
    disabled = shown(acme, *LEAD, "users", "disable", "dev@acme.test", "--reason",
                     "left the company")  # fmt: skip
    assert (disabled["state"], disabled["disabled_reason"]) == ("disabled", "left the company")
    since = dt.datetime.fromisoformat(disabled["disabled_at"]).astimezone(dt.UTC)
    before = digest(conn)
    for command in (("rules", "list"), ("rules", "edit", str(crew.rule), "--logic", "x",
                                        "--reason", "y")):  # fmt: skip
        refused = acme("--as", "DEV@acme.test", *command)
        assert (refused.exit_code, refused.stdout, refused.stderr) == (
            1,
            "",
            f"error: user dev@acme.test is disabled since {since:%Y-%m-%d} (left the company)"
            " and can no longer act; an admin can enable the account:"
            " `migrationpilot users enable dev@acme.test`\n",
        )
    assert digest(conn) == before
    # Listed with their state; --state picks.
    listed = shown(acme, "users", "list", "--org", ORG)
    assert {u["email"]: u["state"] for u in listed}["dev@acme.test"] == "disabled"
    assert [u["email"] for u in shown(acme, "users", "list", "--state", "disabled")] == [
        "dev@acme.test"
    ]
    assert "dev@acme.test" not in {u["email"] for u in shown(acme, "users", "list", "--state",
                                                              "active")}  # fmt: skip
    # Enabled again: the same account, role and team.
    enabled = shown(acme, *LEAD, "users", "enable", "dev@acme.test")
    assert (enabled["state"], enabled["disabled_at"], enabled["disabled_reason"]) == (
        "active",
        None,
        None,
    )
    assert acme("--as", "dev@acme.test", "rules", "edit", str(crew.rule), "--logic", "fee = 3",
                "--reason", "back").exit_code == 0  # fmt: skip


def test_disable_and_enable_say_when_nothing_changes(acme: Any, crew: Crew) -> None:
    assert acme("users", "disable", "dev@acme.test").exit_code == 0
    again = acme("users", "disable", "dev@acme.test")
    assert (again.exit_code, again.stderr) == (0, "")  # notices only on a terminal
    assert acme("users", "enable", "dev@acme.test").exit_code == 0
    assert acme("users", "enable", "dev@acme.test").exit_code == 0


@contextmanager
def as_user(conn: Conn, user: UUID) -> Iterator[None]:
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ROLE migrationpilot_app")
        conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(user),))
        yield


def test_sql_a_disabled_user_is_nobody_to_every_policy(acme: Any, crew: Crew, conn: Conn) -> None:
    assert acme("users", "disable", "dev@acme.test").exit_code == 0
    tables = [
        name
        for (name,) in rows(
            conn,
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind = 'r' AND relname <> 'migrationpilot_schema_history' ORDER BY 1",
        )
    ]
    ((organization, project),) = rows(
        conn, "SELECT organization_id, project_id FROM business_rules"
    )
    before = digest(conn)
    with as_user(conn, crew.users["dev"]):
        seen = {
            table: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            for table in tables
        }
        who = conn.execute(
            "SELECT current_organization_id(), current_tenant_id(), current_user_role(),"
            " current_user_email(), current_project_role(%s)",
            (project,),
        ).fetchone()
        edited = conn.execute("UPDATE business_rules SET logic = 'mine'").rowcount
    assert seen == dict.fromkeys(tables, (0,))
    assert who == (None, None, None, None, None)
    assert edited == 0
    with (
        pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
        as_user(conn, crew.users["dev"]),
    ):
        conn.execute(
            "INSERT INTO source_files (organization_id, project_id, path, content)"
            " VALUES (%s, %s, 'X.cbl', '')",
            (organization, project),
        )
    assert digest(conn) == before


# ---------------------------------------------------------------------------------------------
# remove
# ---------------------------------------------------------------------------------------------


def test_a_removed_users_history_reads_back_with_their_name(
    acme: Any, crew: Crew, conn: Conn
) -> None:
    for who in ("dev@acme.test", "rev@acme.test"):
        removed = acme(*LEAD, "users", "remove", who, "-q")
        assert (removed.exit_code, removed.stdout) == (0, f"{crew.users[who[:3]]}\n")
    assert acme("users", "show", "dev@acme.test").exit_code == 4
    # The versions dev wrote, the review rev made, their audit rows: names and emails as they
    # were, for the operator and for anyone of the organization.
    for acting in ((), ANA):
        history = shown(acme, *acting, "rules", "history", str(crew.rule))
        assert [(v["changed_by"], v["changed_by_name"], v["change_reason"]) for v in history] == [
            ("dev@acme.test", "Dev", "import"),
            ("dev@acme.test", "Dev", "the rate changed"),
            ("rev@acme.test", "Rev", "review: approve: checked"),
        ]
        rule = shown(acme, *acting, "rules", "show", str(crew.rule))
        assert (rule["review_status"], rule["reviewed_by"], rule["reviewed_by_name"]) == (
            "approved",
            "rev@acme.test",
            "Rev",
        )
        audited = shown(acme, *acting, "audit", "list", "--user", "dev@acme.test")
        assert {(row["actor"], row["actor_name"]) for row in audited} == {("dev@acme.test", "Dev")}
    # Their memberships went with the accounts; the ids in the history did not change.
    assert [m["email"] for m in shown(acme, "projects", "members", "list", LOANS)] == [
        "ana@acme.test"
    ]
    assert rows(
        conn,
        "SELECT DISTINCT v.changed_by, p.email, p.removed_at IS NOT NULL FROM rule_versions v"
        " JOIN people p ON p.id = v.changed_by WHERE v.rule_id = %s ORDER BY 2",
        crew.rule,
    ) == [(crew.users["dev"], "dev@acme.test", True), (crew.users["rev"], "rev@acme.test", True)]


def test_a_removed_address_makes_a_new_account_that_inherits_nothing(
    acme: Any, crew: Crew, conn: Conn
) -> None:
    assert acme(*LEAD, "users", "remove", "dev@acme.test").exit_code == 0
    again = shown(acme, *LEAD, "users", "add", "DEV@acme.test", "--name", "Dev Two")
    assert again["id"] != str(crew.users["dev"])
    # Not on the team: the new account cannot change the project the old one worked on.
    refused = acme("--as", "dev@acme.test", "rules", "edit", str(crew.rule), "--logic", "x",
                   "--reason", "mine now?")  # fmt: skip
    assert refused.exit_code == 1
    assert "you are not a member of it" in refused.stderr
    # The old versions are still the old person's.
    history = shown(acme, "rules", "history", str(crew.rule))
    assert {
        v["changed_by_name"] for v in history if v["changed_by"].lower() == "dev@acme.test"
    } == {"Dev"}
    assert rows(
        conn,
        "SELECT name, removed_at IS NOT NULL FROM people WHERE lower(email) = 'dev@acme.test'"
        " ORDER BY 2",
    ) == [("Dev Two", False), ("Dev", True)]


def test_sql_a_removed_users_id_is_never_taken_again(acme: Any, crew: Crew, conn: Conn) -> None:
    conn.execute("DELETE FROM users WHERE id = %s", (crew.users["dev"],))
    before = digest(conn)
    with pytest.raises(errors.UniqueViolation, match="belongs to a removed user's history"):
        conn.execute(
            "INSERT INTO users (id, email, name, organization_id)"
            " SELECT %s, 'other@acme.test', 'Other', id FROM organizations WHERE slug = %s",
            (crew.users["dev"], ORG),
        )
    assert digest(conn) == before


def test_you_cannot_remove_yourself(acme: Any, crew: Crew, conn: Conn) -> None:
    assert acme("users", "set-role", "ana@acme.test", "admin").exit_code == 0
    before = digest(conn)
    result = acme("--as", "ANA@acme.test", "users", "remove", "ana@acme.test")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: you cannot remove your own account; another admin can\n",
    )
    assert digest(conn) == before


# ---------------------------------------------------------------------------------------------
# The last admin
# ---------------------------------------------------------------------------------------------

LAST_ADMIN_COMMANDS = [
    ("users", "disable", "lead@acme.test"),
    ("users", "remove", "lead@acme.test"),
    ("users", "set", "lead@acme.test", "--role", "architect"),
    ("users", "set-role", "lead@acme.test", "viewer"),
]


@pytest.mark.parametrize(
    ("command", "acting"),
    [
        *((command, ()) for command in LAST_ADMIN_COMMANDS),
        # Removing oneself is refused before the database is asked (test_you_cannot_remove...).
        *((command, LEAD) for command in LAST_ADMIN_COMMANDS if command[1] != "remove"),
    ],
)
def test_the_last_admin_cannot_be_disabled_removed_or_demoted(
    acme: Any, crew: Crew, conn: Conn, command: tuple[str, ...], acting: tuple[str, ...]
) -> None:
    before = digest(conn)
    result = acme(*acting, *command)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", LAST_ADMIN)
    assert digest(conn) == before


@pytest.mark.parametrize("command", LAST_ADMIN_COMMANDS)
def test_with_another_active_admin_each_one_goes(
    acme: Any, crew: Crew, command: tuple[str, ...]
) -> None:
    assert acme("users", "set-role", "ana@acme.test", "admin").exit_code == 0
    result = acme(*command)
    assert result.exit_code == 0, result.stderr


def test_a_disabled_admin_is_not_the_admin_an_organization_keeps(
    acme: Any, crew: Crew, conn: Conn
) -> None:
    assert acme("users", "set-role", "ana@acme.test", "admin").exit_code == 0
    assert acme("users", "disable", "ana@acme.test").exit_code == 0
    before = digest(conn)
    result = acme("users", "set-role", "lead@acme.test", "architect")
    assert (result.exit_code, result.stderr) == (1, LAST_ADMIN)
    assert digest(conn) == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE users SET role = 'architect' WHERE email = 'lead@acme.test'",
        "UPDATE users SET disabled_at = now() WHERE email = 'lead@acme.test'",
        "DELETE FROM users WHERE email = 'lead@acme.test'",
        "DELETE FROM users WHERE role = 'admin'",
    ],
)
@pytest.mark.parametrize("client", ["app role", "owner"])
def test_sql_the_last_admin_guard_holds_for_every_client(
    crew: Crew, conn: Conn, statement: str, client: str
) -> None:
    before = digest(conn)
    with pytest.raises(errors.CheckViolation) as refused, conn.transaction():
        if client == "app role":
            conn.execute("SET LOCAL ROLE migrationpilot_app")
            conn.execute(
                "SELECT set_config('app.current_user_id', %s, true)", (str(crew.users["lead"]),)
            )
        conn.execute(statement)
    assert refused.value.diag.constraint_name == "organizations_keep_an_admin"
    assert digest(conn) == before


def test_deleting_the_organization_is_not_held_to_its_last_admin(crew: Crew, conn: Conn) -> None:
    conn.execute("DELETE FROM organizations WHERE slug = %s", (ORG,))
    assert rows(conn, "SELECT count(*) FROM users WHERE email = 'lead@acme.test'") == [(0,)]


def test_two_admins_demoting_each_other_at_once_leave_one(
    acme: Any, crew: Crew, conn: Conn, database_url: str
) -> None:
    """The second demotion waits for the first (a lock on the organization's row), then sees
    it and is refused: an organization cannot lose its last two admins to a race."""
    assert acme("users", "set-role", "ana@acme.test", "admin").exit_code == 0
    demote = "UPDATE users SET role = 'architect' WHERE email = %s"
    outcome: dict[str, Exception | None] = {}
    with (
        psycopg.connect(database_url) as first,
        psycopg.connect(database_url, autocommit=True, options="-c lock_timeout=5s") as second,
    ):
        first.execute(demote, ("ana@acme.test",))  # left open: the organization stays locked

        def second_demotion() -> None:
            try:
                second.execute(demote, ("lead@acme.test",))
                outcome["error"] = None
            except psycopg.Error as error:
                outcome["error"] = error

        thread = threading.Thread(target=second_demotion, daemon=True)
        thread.start()
        waiting = "SELECT %s = ANY (pg_blocking_pids(%s))"
        pids = (first.info.backend_pid, second.info.backend_pid)
        deadline = time.monotonic() + 10
        while not rows(conn, waiting, *pids)[0][0]:
            assert thread.is_alive(), f"the second demotion did not wait: {outcome}"
            assert time.monotonic() < deadline, "the second demotion never waited"
            time.sleep(0.005)
        first.commit()
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert isinstance(outcome["error"], errors.CheckViolation)
    assert rows(conn, "SELECT email FROM users WHERE role = 'admin' ORDER BY email") == [
        ("lead@acme.test",)
    ]
