"""Review integrity (V0013): a review holds only for the content it was made on, and an
organization may require four eyes, so that whoever last changed a rule cannot approve it.

Both live in the database, so each behaviour is shown through the CLI and in plain SQL as
another client would run it: as the app role with an acting user, and as the owner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors

from tests.conftest import rows

Conn = psycopg.Connection[Any]
ORG = "acme-pay"
ANA = ("--as", "ana@acme.test")  # architect: edits, imports and reviews
RITA = ("--as", "rita@acme.test")  # reviewer: the second pair of eyes
DEV = ("--as", "dev@acme.test")  # developer: edits, never reviews
SOURCE = "       COMPUTE FEE = BALANCE * 0.015.\n       COMPUTE RATE = 0.05.\n"
# A refusal as the database words it (SQLSTATE 42501), and as the CLI prints it.
FOUR_EYES = "four-eyes: you made the last change to rule {}; another reviewer must approve it"


@dataclass
class Team:
    """acme-pay with ana (architect), rita (reviewer) and dev (developer), the team of the
    project Loans core, and three pending rules of it, inserted by the operator (nobody edited
    them)."""

    project: UUID
    rules: list[UUID]
    ana: UUID
    rita: UUID
    dev: UUID


@pytest.fixture
def team(acme: Any, conn: Conn) -> Team:
    for address, name, role in (
        ("rita@acme.test", "Rita", "reviewer"),
        ("dev@acme.test", "Dev", "developer"),
    ):
        added = acme("users", "add", address, "--name", name, "--org", ORG, "--role", role)
        assert added.exit_code == 0, added.stderr
    created = acme(
        *ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "java", "-q"
    )
    assert created.exit_code == 0, created.stderr
    project = UUID(created.stdout.strip())
    # Ana made the project; she brings rita and dev onto its team (V0015).
    joined = acme(*ANA, "projects", "members", "add", str(project), "rita@acme.test",
                  "dev@acme.test")  # fmt: skip
    assert joined.exit_code == 0, joined.stderr
    users = dict(rows(conn, "SELECT email, id FROM users"))
    return Team(
        project,
        add_rules(conn, project, 3),
        users["ana@acme.test"],
        users["rita@acme.test"],
        users["dev@acme.test"],
    )


def add_rules(conn: Conn, project: UUID, count: int, prefix: str = "rule") -> list[UUID]:
    """``count`` pending rules named ``prefix N``, inserted by the operator, in that order."""
    return [
        row[0]
        for row in rows(
            conn,
            "INSERT INTO business_rules (organization_id, project_id, name, category, confidence,"
            " source_file, source_start_line, source_end_line, description, source_code, logic)"
            " SELECT organization_id, id, %s || ' ' || n, 'calculation', 0.950, 'src/X.cbl', 1, 1,"
            " 'extracted', 'COMPUTE X.', 'x' FROM projects, generate_series(1, %s) AS n"
            " WHERE id = %s ORDER BY n RETURNING id",
            prefix,
            count,
            project,
        )
    ]


@contextmanager
def session(
    conn: Conn, client: str, user: UUID | None, reason: str | None = None
) -> Iterator[None]:
    """One transaction of plain SQL, as ``client`` opens it: ``app role`` (what docs/security.md
    tells another application to do), ``owner acting`` (the owner naming an acting user without
    the role, as `demo load` does) or ``owner`` (the operator: no acting user)."""
    with conn.transaction():
        if client == "app role":
            conn.execute("SET LOCAL ROLE migrationpilot_app")
        if client != "owner":
            conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(user),))
        if reason is not None:
            conn.execute("SELECT set_config('app.change_reason', %s, true)", (reason,))
        yield


def decide(conn: Conn, rule: UUID, reviewer: UUID, status: str, comment: str | None) -> None:
    """A review decision by ``reviewer`` in plain SQL, as another application makes it."""
    with session(conn, "app role", reviewer, f"review: {status}"):
        conn.execute(
            "UPDATE business_rules SET review_status = %s, reviewed_by = current_user_id(),"
            " reviewed_at = now(), review_comments = %s WHERE id = %s",
            (status, comment, rule),
        )


def review_state(conn: Conn, rule: UUID) -> tuple[Any, ...]:
    """What a reviewer checks on a rule: status, reviewer, when, comment, last editor, version."""
    (found,) = rows(
        conn,
        "SELECT review_status::text, reviewed_by, reviewed_at IS NOT NULL, review_comments,"
        " last_edited_by, version FROM business_rules WHERE id = %s",
        rule,
    )
    return found


def versions(conn: Conn, rule: UUID) -> list[tuple[Any, ...]]:
    return rows(
        conn,
        "SELECT version, changed_by, change_reason, snapshot->>'review_status'"
        " FROM rule_versions WHERE rule_id = %s ORDER BY version",
        rule,
    )


def everything(conn: Conn) -> dict[str, Any]:
    """Every row a review or an edit may touch, as the owner sees them."""
    return {
        "rules": rows(conn, "SELECT * FROM business_rules ORDER BY id"),
        "versions": rows(conn, "SELECT * FROM rule_versions ORDER BY rule_id, version"),
        "audit": rows(conn, "SELECT * FROM audit_logs ORDER BY id"),
        "organizations": rows(conn, "SELECT * FROM organizations ORDER BY id"),
    }


def four_eyes(mp: Any, switch: str) -> None:
    result = mp("orgs", "set", ORG, "--four-eyes", switch)
    assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------------------------------------
# An approved or rejected rule whose content changes goes back to pending
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "status", "comment"),
    [("approve", "approved", None), ("reject", "rejected", "wrong rate")],
)
def test_cli_an_edit_puts_an_approved_or_rejected_rule_back_to_pending(
    acme: Any, team: Team, conn: Conn, verb: str, status: str, comment: str | None
) -> None:
    rule = team.rules[0]
    decided = acme(*RITA, "review", verb, str(rule), *(("--comment", comment) if comment else ()))
    assert decided.exit_code == 0, decided.stderr

    # A developer may edit a reviewed rule: reopening it is not a review decision.
    edited = acme(*DEV, "rules", "edit", str(rule), "--logic", "fee = balance * 0.015",
                  "--reason", "the analyzer dropped the rate", "--format", "json")  # fmt: skip
    assert edited.exit_code == 0, edited.stderr
    assert edited.stderr == (
        f"warning: rule {rule.hex[:8]} was {status}; your change puts it back to pending review\n"
    )
    assert json.loads(edited.stdout) == {
        "id": str(rule),
        "outcome": "updated",
        "version": 3,
        "changes": {
            "logic": {"from": "x", "to": "fee = balance * 0.015"},
            "review_status": {"from": status, "to": "pending"},
        },
    }
    assert review_state(conn, rule) == ("pending", None, False, None, team.dev, 3)
    reviewed = f"review: {verb}" + (f": {comment}" if comment else "")
    assert versions(conn, rule) == [
        (1, None, None, "pending"),
        (2, team.rita, reviewed, status),
        (3, team.dev, "the analyzer dropped the rate", "pending"),
    ]
    # The database audits it as a reopening: the edit and the review it undid, one row.
    assert rows(
        conn,
        "SELECT metadata ->> 'client', metadata ->> 'reason',"
        " metadata -> 'old' -> 'logic', metadata -> 'old' -> 'review_status',"
        " metadata -> 'new' -> 'logic', metadata -> 'new' -> 'review_status',"
        " metadata -> 'new' -> 'version', metadata -> 'new' ? 'reviewed_by'"
        " FROM audit_logs WHERE action = 'rule.reopen'",
    ) == [
        (
            "migrationpilot rules edit",
            "the analyzer dropped the rate",
            "x",
            status,
            "fee = balance * 0.015",
            "pending",
            3,
            True,
        )
    ]
    pending = acme(*ANA, "rules", "list", "--pending", "-q")
    assert str(rule) in pending.stdout.split()  # back in the reviewers' queue


@pytest.mark.parametrize("client", ["app role", "owner"])
@pytest.mark.parametrize("status", ["approved", "rejected"])
def test_sql_an_edit_puts_an_approved_or_rejected_rule_back_to_pending_in_one_version(
    team: Team, conn: Conn, client: str, status: str
) -> None:
    rule = team.rules[0]
    decide(conn, rule, team.rita, status, "as reviewed")
    with session(conn, client, team.dev, "fix the formula"):
        (stored,) = conn.execute(
            "UPDATE business_rules SET formula = 'fee = balance * 0.015' WHERE id = %s"
            " RETURNING review_status::text, reviewed_by, reviewed_at, review_comments, version",
            (rule,),
        ).fetchall()
    assert stored == ("pending", None, None, None, 3)
    editor = team.dev if client == "app role" else None
    assert review_state(conn, rule) == ("pending", None, False, None, editor, 3)
    assert versions(conn, rule) == [
        (1, None, None, "pending"),
        (2, team.rita, f"review: {status}", status),
        (3, editor, "fix the formula", "pending"),
    ]


@pytest.mark.parametrize("status", ["pending", "needs_clarification"])
def test_cli_an_edit_of_a_pending_or_flagged_rule_keeps_its_review_state(
    acme: Any, team: Team, conn: Conn, status: str
) -> None:
    rule = team.rules[0]
    if status != "pending":
        flagged = acme(*RITA, "review", "clarify", str(rule), "--comment", "which branch?")
        assert flagged.exit_code == 0, flagged.stderr
    before = review_state(conn, rule)

    edited = acme(*DEV, "rules", "edit", str(rule), "--confidence", "0.5", "--reason", "unsure",
                  "--format", "json")  # fmt: skip
    assert edited.exit_code == 0, edited.stderr
    assert edited.stderr == ""
    assert json.loads(edited.stdout)["changes"] == {"confidence": {"from": 0.95, "to": 0.5}}
    assert review_state(conn, rule) == (*before[:4], team.dev, before[5] + 1)
    assert versions(conn, rule)[-1] == (before[5] + 1, team.dev, "unsure", status)


@pytest.mark.parametrize("status", ["pending", "needs_clarification"])
def test_sql_an_edit_of_a_pending_or_flagged_rule_keeps_its_review_state(
    team: Team, conn: Conn, status: str
) -> None:
    rule = team.rules[0]
    if status != "pending":
        decide(conn, rule, team.rita, status, "which branch?")
    before = review_state(conn, rule)
    with session(conn, "app role", team.dev, "clearer"):
        conn.execute("UPDATE business_rules SET description = 'clearer' WHERE id = %s", (rule,))
    assert review_state(conn, rule) == (*before[:4], team.dev, before[5] + 1)
    assert versions(conn, rule)[-1] == (before[5] + 1, team.dev, "clearer", status)


@pytest.mark.parametrize(
    ("status", "comment"), [("approved", "checked the new rate"), ("rejected", "still wrong")]
)
def test_sql_a_statement_that_changes_the_content_and_decides_keeps_its_decision(
    team: Team, conn: Conn, status: str, comment: str
) -> None:
    """The reviewer saw the new content: their decision stands."""
    rule = team.rules[0]
    decide(conn, rule, team.rita, "approved", None)
    with session(conn, "app role", team.rita, "corrected and reviewed"):
        conn.execute(
            "UPDATE business_rules SET logic = 'fee = balance * 0.02', review_status = %s,"
            " reviewed_by = current_user_id(), reviewed_at = now(), review_comments = %s"
            " WHERE id = %s",
            (status, comment, rule),
        )
    assert review_state(conn, rule) == (status, team.rita, True, comment, team.rita, 3)
    assert versions(conn, rule)[-1] == (3, team.rita, "corrected and reviewed", status)


def test_cli_a_reimport_that_reopens_a_reviewed_rule_counts_it_once_in_one_version(
    acme: Any, team: Team, conn: Conn, tmp_path: Path
) -> None:
    """`rules import` sets pending itself on a changed rule; the database agrees, once."""
    tree = tmp_path / "legacy"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "FEES.cbl").write_text(SOURCE)
    assert acme(*ANA, "files", "import", str(tree), "-p", "Loans core").exit_code == 0
    records = [
        {"name": name, "category": "calculation", "confidence": 0.9, "description": name,
         "logic": f"{name} as coded", "source_file": "src/FEES.cbl", "source_start_line": line,
         "source_end_line": line}
        for line, name in ((1, "late fee"), (2, "rate"))
    ]  # fmt: skip
    path = tmp_path / "rules.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    assert acme(*DEV, "rules", "import", str(path), "-p", "Loans core").exit_code == 0
    fee, rate = (one_rule(conn, name) for name in ("late fee", "rate"))
    assert acme(*RITA, "review", "approve", str(fee), str(rate)).exit_code == 0

    records[0]["logic"] = "late fee, corrected"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    again = acme(*DEV, "rules", "import", str(path), "-p", "Loans core", "--format", "json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout) == {
        "inserted": 0,
        "updated": 1,
        "unchanged": 1,
        "reopened": 1,
        "waited_seconds": 0.0,
    }
    assert review_state(conn, fee) == ("pending", None, False, None, team.dev, 3)
    assert versions(conn, fee) == [
        (1, team.dev, "import", "pending"),
        (2, team.rita, "review: approve", "approved"),
        (3, team.dev, "reimport", "pending"),
    ]
    assert review_state(conn, rate) == ("approved", team.rita, True, None, team.dev, 2)


def one_rule(conn: Conn, name: str) -> UUID:
    return one_id(conn, "SELECT id FROM business_rules WHERE name = %s", name)


def one_id(conn: Conn, query: str, *params: Any) -> UUID:
    (found,) = rows(conn, query, *params)
    assert isinstance(found[0], UUID)
    return found[0]


def test_sql_nobody_names_the_last_editor_but_the_database(team: Team, conn: Conn) -> None:
    rule = team.rules[0]
    with session(conn, "app role", team.ana, "edit"):
        conn.execute("UPDATE business_rules SET logic = 'y' WHERE id = %s", (rule,))
    before = (review_state(conn, rule), versions(conn, rule))
    # Naming someone else: kept as it was, and no new version (nothing changed).
    for client in ("app role", "owner"):
        with session(conn, client, team.ana):
            conn.execute(
                "UPDATE business_rules SET last_edited_by = %s WHERE id = %s", (team.rita, rule)
            )
        assert (review_state(conn, rule), versions(conn, rule)) == before, client
    assert before[0][4] == team.ana
    # An insert that names another editor is recorded as its author's.
    with session(conn, "app role", team.ana):
        conn.execute(
            "INSERT INTO business_rules (project_id, name, category, confidence, source_file,"
            " source_start_line, source_end_line, description, source_code, logic,"
            " last_edited_by) VALUES (%s, 'forged', 'decision', 0.9, 'src/X.cbl', 1, 1, 'd',"
            " 'c', 'l', %s)",
            (team.project, team.rita),
        )
    assert review_state(conn, one_rule(conn, "forged"))[4] == team.ana


# ---------------------------------------------------------------------------------------------
# Four-eyes: the last editor cannot approve
# ---------------------------------------------------------------------------------------------


def test_cli_with_four_eyes_off_the_editor_may_approve(acme: Any, team: Team, conn: Conn) -> None:
    shown = json.loads(acme("orgs", "show", ORG, "--format", "json").stdout)
    assert shown["four_eyes"] is False
    rule = str(team.rules[0])
    assert acme(*ANA, "rules", "edit", rule, "--logic", "y", "--reason", "fix").exit_code == 0
    approved = acme(*ANA, "review", "approve", rule)
    assert approved.exit_code == 0, approved.stderr
    assert review_state(conn, team.rules[0]) == ("approved", team.ana, True, None, team.ana, 3)


def test_sql_with_four_eyes_off_the_editor_may_approve(team: Team, conn: Conn) -> None:
    rule = team.rules[0]
    with session(conn, "app role", team.ana, "fix"):
        conn.execute("UPDATE business_rules SET logic = 'y' WHERE id = %s", (rule,))
    decide(conn, rule, team.ana, "approved", None)
    assert review_state(conn, rule) == ("approved", team.ana, True, None, team.ana, 3)


def test_cli_with_four_eyes_on_the_editor_is_refused_and_another_reviewer_approves(
    acme: Any, team: Team, conn: Conn
) -> None:
    four_eyes(acme, "on")
    rule = team.rules[0]
    assert acme(*ANA, "rules", "edit", str(rule), "--logic", "y", "--reason", "fix").exit_code == 0
    before = everything(conn)

    refused = acme(*ANA, "review", "approve", str(rule), "--comment", "mine, and fine")
    assert (refused.exit_code, refused.stdout) == (1, "")
    assert refused.stderr == f"error: permission denied: {FOUR_EYES.format(rule)}\n"
    assert everything(conn) == before

    # Rejecting stays open to the editor; approving is for someone else.
    rejected = acme(*ANA, "review", "reject", str(rule), "--comment", "not yet")
    assert rejected.exit_code == 0, rejected.stderr
    approved = acme(*RITA, "review", "approve", str(rule))
    assert approved.exit_code == 0, approved.stderr
    assert review_state(conn, rule) == ("approved", team.rita, True, None, team.ana, 4)
    reasons = [version[2] for version in versions(conn, rule)]
    assert reasons == [None, "fix", "review: reject: not yet", "review: approve"]


@pytest.mark.parametrize("client", ["app role", "owner acting"])
def test_sql_with_four_eyes_on_the_editor_is_refused_and_another_reviewer_approves(
    acme: Any, team: Team, conn: Conn, client: str
) -> None:
    four_eyes(acme, "on")
    rule = team.rules[0]
    with session(conn, client, team.ana, "fix"):
        conn.execute("UPDATE business_rules SET logic = 'y' WHERE id = %s", (rule,))
    before = everything(conn)

    with pytest.raises(errors.InsufficientPrivilege) as refused, session(conn, client, team.ana):
        conn.execute(
            "UPDATE business_rules SET review_status = 'approved', reviewed_by = %s,"
            " reviewed_at = now() WHERE id = %s",
            (team.ana, rule),
        )
    assert refused.value.diag.sqlstate == "42501"
    assert refused.value.diag.message_primary == FOUR_EYES.format(rule)
    assert refused.value.diag.message_hint == (
        f"Four-eyes is on in {ORG}: whoever last changed a rule's content cannot approve it."
    )
    assert everything(conn) == before

    decide(conn, rule, team.rita, "approved", None)
    assert review_state(conn, rule) == ("approved", team.rita, True, None, team.ana, 3)


def test_cli_with_four_eyes_on_a_batch_with_one_rule_of_the_approver_is_refused_whole(
    acme: Any, team: Team, conn: Conn
) -> None:
    four_eyes(acme, "on")
    first, second, third = team.rules
    assert acme(*ANA, "rules", "edit", str(third), "--name", "fee", "--reason", "x").exit_code == 0
    before = everything(conn)
    batch = f"{first}\n{second}\n{third}\n"
    refused = acme(*ANA, "review", "approve", "-", "--comment", "bulk", input=batch)
    assert (refused.exit_code, refused.stdout) == (1, "")
    assert refused.stderr == f"error: permission denied: {FOUR_EYES.format(third)}\n"
    assert everything(conn) == before

    approved = acme(*RITA, "review", "approve", "-", "--comment", "bulk", "-q", input=batch)
    assert approved.exit_code == 0, approved.stderr
    assert approved.stdout.split() == [str(first), str(second), str(third)]


def test_sql_with_four_eyes_on_a_batch_with_one_rule_of_the_approver_is_refused_whole(
    acme: Any, team: Team, conn: Conn
) -> None:
    four_eyes(acme, "on")
    with session(conn, "app role", team.ana, "rename"):
        conn.execute("UPDATE business_rules SET name = 'fee' WHERE id = %s", (team.rules[1],))
    before = everything(conn)
    with pytest.raises(errors.InsufficientPrivilege, match="four-eyes"):
        decide_all(conn, team.rules, team.ana)
    assert everything(conn) == before


def decide_all(conn: Conn, rules: list[UUID], reviewer: UUID) -> int:
    """Approve ``rules`` in one statement as ``reviewer``; the number of rules approved."""
    with session(conn, "app role", reviewer, "review: approve: bulk"):
        return conn.execute(
            "UPDATE business_rules SET review_status = 'approved', reviewed_by = current_user_id(),"
            " reviewed_at = now() WHERE id = ANY(%s)",
            (rules,),
        ).rowcount


def test_sql_a_bulk_approval_is_checked_once_per_statement_not_once_per_rule(
    acme: Any, team: Team, conn: Conn
) -> None:
    """10,000 rules, four-eyes on: one call of the statement check, no row trigger of V0013
    (their WHEN clauses are false for a review); one rule of the approver refuses them all."""
    (superuser,) = rows(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")[0]
    if not superuser:
        pytest.skip("counting function calls needs track_functions, which only a superuser sets")
    four_eyes(acme, "on")
    rules = add_rules(conn, team.project, 10_000, prefix="bulk")
    with session(conn, "app role", team.ana, "rename"):
        conn.execute("UPDATE business_rules SET name = 'mine' WHERE id = %s", (rules[-1],))
    with pytest.raises(errors.InsufficientPrivilege, match=str(rules[-1])):
        decide_all(conn, rules, team.ana)
    assert rows(conn, "SELECT count(*) FROM business_rules WHERE review_status = 'approved'") == [
        (0,)
    ]

    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL track_functions = 'pl'")
        conn.execute("SET LOCAL ROLE migrationpilot_app")
        conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(team.rita),))
        updated = conn.execute(
            "UPDATE business_rules SET review_status = 'approved', reviewed_by = current_user_id(),"
            " reviewed_at = now() WHERE id = ANY(%s)",
            (rules,),
        ).rowcount
        calls = dict(
            rows(
                conn,
                "SELECT proname::text, coalesce(pg_stat_get_xact_function_calls(oid), 0)"
                " FROM pg_proc WHERE proname IN ('business_rules_enforce_four_eyes',"
                " 'business_rules_on_edit', 'business_rules_keep_last_editor')",
            )
        )
    assert updated == 10_000
    assert calls == {
        "business_rules_enforce_four_eyes": 1,
        "business_rules_on_edit": 0,
        "business_rules_keep_last_editor": 0,
    }


def test_sql_with_four_eyes_on_a_rule_inserted_approved_by_its_author_is_refused(
    acme: Any, team: Team, conn: Conn
) -> None:
    four_eyes(acme, "on")
    before = everything(conn)
    with (
        pytest.raises(errors.InsufficientPrivilege, match="four-eyes"),
        session(conn, "app role", team.ana),
    ):
        conn.execute(
            "INSERT INTO business_rules (project_id, name, category, confidence, source_file,"
            " source_start_line, source_end_line, description, source_code, logic,"
            " review_status, reviewed_by) VALUES (%s, 'self-approved', 'decision', 0.9,"
            " 'src/X.cbl', 1, 1, 'd', 'c', 'l', 'approved', current_user_id())",
            (team.project,),
        )
    assert everything(conn) == before


def test_sql_with_four_eyes_on_deleting_a_reviewer_approves_nothing(
    acme: Any, team: Team, conn: Conn
) -> None:
    """Deleting a user changes none of their rules (V0016: the review keeps its reviewer, now a
    person whose account is gone), so it approves nothing, even when the admin who deletes last
    edited those rules; a statement that also changes a rule is held to four-eyes."""
    four_eyes(acme, "on")
    added = acme(
        "users", "add", "boss@acme.test", "--name", "Boss", "--org", ORG, "--role", "admin"
    )
    assert added.exit_code == 0, added.stderr
    boss = one_id(conn, "SELECT id FROM users WHERE email = %s", "boss@acme.test")
    first, second, _ = team.rules
    with session(conn, "app role", boss, "fix"):
        conn.execute("UPDATE business_rules SET logic = 'y' WHERE id = ANY(%s)", ([first, second],))
    decide(conn, first, team.rita, "approved", None)
    decide(conn, second, team.ana, "approved", None)

    with session(conn, "app role", boss):
        assert conn.execute("DELETE FROM users WHERE id = %s", (team.rita,)).rowcount == 1
    assert review_state(conn, first) == ("approved", team.rita, True, None, boss, 3)

    before = everything(conn)
    with (
        pytest.raises(errors.InsufficientPrivilege, match=str(second)),
        session(conn, "app role", boss),
    ):
        conn.execute(
            "WITH gone AS (DELETE FROM users WHERE id = %s)"
            " UPDATE business_rules SET logic = 'mine', reviewed_by = NULL WHERE id = %s",
            (team.ana, second),
        )
    assert everything(conn) == before


def test_cli_the_operators_changes_are_nobodys_for_four_eyes(
    acme: Any, team: Team, conn: Conn
) -> None:
    """Without an acting user there is no last editor: an operator's edit leaves the rule to
    any reviewer, and still reopens it."""
    four_eyes(acme, "on")
    rule = str(team.rules[0])
    assert acme(*ANA, "rules", "edit", rule, "--logic", "y", "--reason", "fix").exit_code == 0
    assert acme(*RITA, "review", "approve", rule).exit_code == 0
    operator = acme("rules", "edit", rule, "--logic", "z", "--reason", "operator fix")
    assert operator.exit_code == 0, operator.stderr
    assert operator.stderr == (
        f"warning: rule {rule[:8]} was approved; your change puts it back to pending review\n"
    )
    assert review_state(conn, team.rules[0]) == ("pending", None, False, None, None, 4)
    approved = acme(*ANA, "review", "approve", rule)
    assert approved.exit_code == 0, approved.stderr


def test_sql_the_operator_is_not_held_to_four_eyes(acme: Any, team: Team, conn: Conn) -> None:
    four_eyes(acme, "on")
    rule = team.rules[0]
    with session(conn, "owner", None, "operator fix, reviewed"):
        conn.execute(
            "UPDATE business_rules SET logic = 'z', review_status = 'approved', reviewed_at = now()"
            " WHERE id = %s",
            (rule,),
        )
    assert review_state(conn, rule) == ("approved", None, True, None, None, 2)


# ---------------------------------------------------------------------------------------------
# orgs set --four-eyes
# ---------------------------------------------------------------------------------------------


def test_orgs_set_four_eyes_keeps_the_other_settings_and_is_audited(acme: Any, conn: Conn) -> None:
    conn.execute(
        "UPDATE organizations SET settings = %s::jsonb WHERE slug = %s",
        (json.dumps({"locale": "pt-BR"}), ORG),
    )
    on = acme("orgs", "set", ORG, "--four-eyes", "on", "--format", "json")
    assert on.exit_code == 0, on.stderr
    assert json.loads(on.stdout)["four_eyes"] is True
    assert rows(conn, "SELECT settings FROM organizations WHERE slug = %s", ORG) == [
        ({"locale": "pt-BR", "four_eyes": True},)
    ]
    shown = acme(*ANA, "orgs", "show", ORG, "--format", "json")  # a user sees it too
    assert json.loads(shown.stdout)["four_eyes"] is True

    off = acme("orgs", "set", ORG, "--four-eyes", "off", "--format", "json")
    assert json.loads(off.stdout)["four_eyes"] is False
    assert rows(conn, "SELECT settings FROM organizations WHERE slug = %s", ORG) == [
        ({"locale": "pt-BR", "four_eyes": False},)
    ]
    assert rows(
        conn,
        "SELECT a.actor_email, a.resource_type, a.resource_id = o.id,"
        " a.metadata -> 'old' -> 'settings', a.metadata -> 'new' -> 'settings'"
        " FROM audit_logs a JOIN organizations o ON o.slug = %s"
        " WHERE a.action = 'organization.update' AND a.metadata ->> 'client' ="
        " 'migrationpilot orgs set' ORDER BY a.created_at, a.ctid",
        ORG,
    ) == [
        (
            None,
            "organization",
            True,
            {"locale": "pt-BR"},
            {"locale": "pt-BR", "four_eyes": True},
        ),
        (
            None,
            "organization",
            True,
            {"locale": "pt-BR", "four_eyes": True},
            {"locale": "pt-BR", "four_eyes": False},
        ),
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("orgs", "set", "nope", "--four-eyes", "on"), 4,
         "error: no organization 'nope'; see `migrationpilot orgs list`"),
        (("orgs", "set", ORG, "--four-eyes", "yes"), 2,
         "error: Invalid value for '--four-eyes': 'yes' is not one of 'on', 'off'."
         " (see `migrationpilot orgs set --help`)"),
        (("orgs", "set", ORG), 2,
         "error: nothing to change: give --name, --slug, --settings or --four-eyes on|off"),
        ((*ANA, "orgs", "set", ORG, "--four-eyes", "on"), 1,
         "error: `orgs set` is an operator command: run it without --as"),
    ],
    ids=["unknown slug", "bad value", "no option", "as a user"],
)  # fmt: skip
def test_orgs_set_refuses_bad_input_and_changes_nothing(
    acme: Any, conn: Conn, args: tuple[str, ...], code: int, message: str
) -> None:
    before = everything(conn)
    result = acme(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", message + "\n")
    assert everything(conn) == before
