"""`review approve | reject | clarify`: batches of rules reviewed all or nothing, as the
acting user, versioned and audited by the database in the same transaction."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from tests.conftest import CONSOLE_SCRIPT, rows

ANA = ("--as", "ana@acme.test")
BOB = ("--as", "bob@globex.test")


@pytest.fixture
def loans(acme: Any) -> UUID:
    created = acme(
        *ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "java", "-q"
    )
    assert created.exit_code == 0, created.stderr
    return UUID(created.stdout.strip())


@pytest.fixture
def globex_project(acme: Any) -> UUID:
    created = acme(*BOB, "projects", "create", "Ops", "--source", "vb6", "--target", "go", "-q")
    assert created.exit_code == 0, created.stderr
    return UUID(created.stdout.strip())


def add_rules(
    conn: psycopg.Connection[Any], project: UUID, count: int, ids: list[UUID] | None = None
) -> list[UUID]:
    """``count`` pending rules in the project, as an analyzer import would leave them (with
    the given ``ids``, else ids the database makes up), in the order of their names."""
    return [
        row[0]
        for row in rows(
            conn,
            "INSERT INTO business_rules (id, description, source_file, source_start_line,"
            " source_end_line, source_code, logic, organization_id, project_id, name, category,"
            " confidence)"
            " SELECT coalesce((%s::uuid[])[n], gen_random_uuid()), 'extracted', 'src/X.cbl', 1,"
            " 1, 'COMPUTE X.', 'x', p.organization_id, p.id, 'rule ' || n, 'calculation', 0.950"
            " FROM projects p, generate_series(1, %s) AS n WHERE p.id = %s"
            " ORDER BY n RETURNING id",
            ids,
            count,
            project,
        )
    ]


@pytest.fixture
def three(conn: psycopg.Connection[Any], loans: UUID) -> list[UUID]:
    return add_rules(conn, loans, 3)


def user_id(conn: psycopg.Connection[Any], email: str) -> UUID:
    found = rows(conn, "SELECT id FROM users WHERE email = %s", email)[0][0]
    assert isinstance(found, UUID)
    return found


def unused_start(conn: psycopg.Connection[Any]) -> str:
    """Four hex digits that start no rule's id: a well-formed reference to nothing."""
    taken = {row[0].hex[:4] for row in rows(conn, "SELECT id FROM business_rules")}
    return next(start for n in range(0x10000) if (start := f"{n:04x}") not in taken)


def state(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Everything a review may touch: the rules, their versions, the audit trail."""
    return {
        "rules": rows(
            conn,
            "SELECT id, review_status::text, version, reviewed_by, reviewed_at,"
            " review_comments, updated_at FROM business_rules ORDER BY id",
        ),
        "versions": rows(conn, "SELECT rule_id, version FROM rule_versions ORDER BY 1, 2"),
        "audit": rows(conn, "SELECT id FROM audit_logs WHERE action LIKE 'rule.%%' ORDER BY id"),
    }


def review(mp: Any, verb: str, *args: str, input: str | None = None) -> Any:
    return mp(*ANA, "review", verb, *args, input=input)


def tsv(*lines: tuple[object, ...]) -> str:
    return "".join("\t".join("" if v is None else str(v) for v in line) + "\n" for line in lines)


def test_approve_reject_and_clarify_by_argument(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    first, second, third = three
    approved = review(acme, "approve", str(first))
    rejected = review(acme, "reject", str(second), "--comment", "wrong rounding")
    clarify = review(acme, "clarify", str(third), "--comment", "which branch?")

    assert approved.exit_code == 0, approved.stderr
    assert approved.stdout == tsv((first, "rule 1", "pending", "approved", "reviewed", 2))
    assert rejected.stdout == tsv((second, "rule 2", "pending", "rejected", "reviewed", 2))
    assert clarify.stdout == tsv((third, "rule 3", "pending", "needs_clarification", "reviewed", 2))
    ana = user_id(conn, "ana@acme.test")
    assert rows(
        conn,
        "SELECT id, review_status::text, reviewed_by, reviewed_at IS NOT NULL, review_comments,"
        " version FROM business_rules ORDER BY name",
    ) == [
        (first, "approved", ana, True, None, 2),
        (second, "rejected", ana, True, "wrong rounding", 2),
        (third, "needs_clarification", ana, True, "which branch?", 2),
    ]


def test_each_review_is_a_version_snapshot_with_its_reason(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    rule = three[0]
    assert review(acme, "clarify", str(rule), "--comment", "which branch?").exit_code == 0
    assert review(acme, "approve", str(rule)).exit_code == 0
    ana = user_id(conn, "ana@acme.test")
    assert rows(
        conn,
        "SELECT version, changed_by, change_reason, snapshot->>'review_status',"
        " snapshot->>'review_comments' FROM rule_versions WHERE rule_id = %s ORDER BY version",
        rule,
    ) == [
        (1, None, None, "pending", None),
        (2, ana, "review: clarify: which branch?", "needs_clarification", "which branch?"),
        (3, ana, "review: approve", "approved", None),
    ]


def test_each_reviewed_rule_gets_an_audit_row(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    first, second, _ = three
    result = review(acme, "reject", str(first), str(second), "--comment", "wrong rounding")
    assert result.exit_code == 0, result.stderr
    ana = user_id(conn, "ana@acme.test")
    assert rows(
        conn,
        "SELECT a.action, a.resource_type, a.resource_id, a.user_id, a.actor_email,"
        " a.organization_id = r.organization_id, a.tenant_id = o.tenant_id,"
        " a.metadata - 'new' - 'old', a.metadata -> 'old',"
        " (a.metadata -> 'new') - 'reviewed_at', a.metadata -> 'new' ? 'reviewed_at'"
        " FROM audit_logs a JOIN business_rules r ON r.id = a.resource_id"
        " JOIN organizations o ON o.id = r.organization_id"
        " WHERE a.action LIKE 'rule.%%' ORDER BY r.name",
    ) == [
        (
            "rule.reject",
            "rule",
            rule,
            ana,
            "ana@acme.test",
            True,
            True,
            {"client": "migrationpilot review reject", "reason": "review: reject: wrong rounding"},
            {
                "review_status": "pending",
                "reviewed_by": None,
                "reviewed_at": None,
                "review_comments": None,
                "version": 1,
            },
            {
                "review_status": "rejected",
                "reviewed_by": str(ana),
                "review_comments": "wrong rounding",
                "version": 2,
            },
            True,
        )
        for rule in (first, second)
    ]


def test_a_rule_already_in_that_state_is_unchanged_and_not_versioned(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    first, second, third = three
    assert review(acme, "approve", str(first), "--comment", "fine").exit_code == 0
    before = state(conn)

    again = review(acme, "approve", str(first), "--comment", "still fine")
    assert again.exit_code == 0, again.stderr
    assert again.stdout == tsv((first, "rule 1", "approved", "approved", "unchanged", 2))
    assert state(conn) == before  # same comment, same version, no new snapshot or audit row

    mixed = review(acme, "approve", str(second), str(first), str(third), "-q")
    assert mixed.stdout == f"{second}\n{third}\n"  # -q passes on only what changed
    assert rows(conn, "SELECT version FROM business_rules ORDER BY id") == [(2,), (2,), (2,)]
    assert rows(conn, "SELECT count(*) FROM audit_logs WHERE action = 'rule.approve'") == [(3,)]


def test_ids_from_stdin_skip_blank_lines_comments_and_extra_columns(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    first, second, third = three
    # The full uuid (as -q prints it) or the 8 hex digits a table shows: both name the rule.
    piped = f"# pending, high confidence\n{first}\trule 1\t0.950\n\n  {third.hex[:8]}  \n{first}\n"
    result = review(acme, "approve", "-", "--comment", "bulk", "--format", "json", input=piped)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "id": str(rule),
            "name": name,
            "old_status": "pending",
            "new_status": "approved",
            "outcome": "reviewed",
            "version": 2,
        }
        for rule, name in ((first, "rule 1"), (third, "rule 3"))
    ]
    assert rows(conn, "SELECT id, review_status::text FROM business_rules ORDER BY name") == [
        (first, "approved"),
        (second, "pending"),
        (third, "approved"),
    ]


def test_a_pipe_of_whole_uuids_keeps_the_order_of_the_arguments_and_drops_repeats(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    first, second, third = three
    # What `rules list -q` and `--format tsv` pipe: a whole uuid opening every line (checked in
    # one pass), here in upper case, repeated, after an argument, and without a final newline.
    piped = f"{third}\trule 3\t0.950\n{str(second).upper()}\n{third}"
    result = review(acme, "approve", str(second), "-", "--format", "json", input=piped)
    assert result.exit_code == 0, result.stderr
    assert [row["id"] for row in json.loads(result.stdout)] == [str(second), str(third)]
    assert rows(conn, "SELECT id, review_status::text FROM business_rules ORDER BY name") == [
        (first, "pending"),
        (second, "approved"),
        (third, "approved"),
    ]


def test_a_bad_id_on_stdin_names_its_line_and_writes_nothing(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    before = state(conn)
    result = review(acme, "approve", "-", input=f"{three[0]}\n\nrule-two\n")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: stdin line 3: 'rule-two' is not an id: give the id shown in a listing"
        " (e.g. 3f2a9c1e), at least 4 of its first hex digits, or the full uuid\n"
    )
    assert state(conn) == before


def test_an_empty_pipe_is_an_empty_batch_but_no_ids_at_all_is_a_usage_error(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    before = state(conn)
    piped = review(acme, "approve", "-", "-q", input="# nothing matched\n\n")
    assert (piped.exit_code, piped.stdout, piped.stderr) == (0, "", "")
    bare = review(acme, "approve")
    assert bare.exit_code == 2
    assert "Missing argument" in bare.stderr
    assert state(conn) == before


def test_an_unknown_id_fails_the_whole_batch(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    before = state(conn)
    unknown = uuid4()
    result = review(acme, "reject", *map(str, three), str(unknown), "--comment", "no")
    assert result.exit_code == 4
    assert result.stderr == (
        f"error: rule {unknown} not found or not visible to you; nothing was reviewed"
        " (--skip-missing reviews the others)\n"
    )
    assert result.stdout == ""
    assert state(conn) == before

    # A start of an id that starts no rule is not found either, before anything is written.
    start = unused_start(conn)
    short = review(acme, "reject", str(three[0]), start, "--comment", "no")
    assert (short.exit_code, short.stdout) == (4, "")
    assert short.stderr == f"error: no rule with an id starting {start} (or not visible to you)\n"
    assert state(conn) == before

    # Fewer than 4 hex digits is not an id at all: bad usage.
    tiny = review(acme, "reject", str(three[0]), "999", "--comment", "no")
    assert (tiny.exit_code, tiny.stdout) == (2, "")
    assert tiny.stderr == (
        "error: argument: '999' is not an id: give the id shown in a listing (e.g. 3f2a9c1e),"
        " at least 4 of its first hex digits, or the full uuid\n"
    )
    assert state(conn) == before


def test_a_start_shared_by_several_rules_is_ambiguous_and_writes_nothing(
    acme: Any, loans: UUID, conn: psycopg.Connection[Any]
) -> None:
    twins = [
        UUID("abcd0000-0000-4000-8000-000000000001"),
        UUID("abcd0000-0000-4000-8000-000000000002"),
    ]
    assert add_rules(conn, loans, 2, twins) == twins
    before = state(conn)
    result = review(acme, "approve", "abcd")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: abcd is ambiguous: {twins[0]}, {twins[1]}; give more digits of the rule's id\n"
    )
    assert state(conn) == before
    # More digits tell them apart.
    longer = review(acme, "approve", twins[1].hex[:32], "-q")
    assert (longer.exit_code, longer.stdout) == (0, f"{twins[1]}\n"), longer.stderr


def test_many_unknown_ids_are_named_first_few_and_counted(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    unknown = [str(uuid4()) for _ in range(7)]
    result = review(acme, "approve", *unknown)
    assert result.exit_code == 4
    assert result.stderr == (
        f"error: 7 rules ({', '.join(unknown[:5])} and 2 more) not found or not visible"
        " to you; nothing was reviewed\n"
    )
    assert rows(conn, "SELECT count(*) FROM business_rules WHERE review_status = 'pending'") == [
        (3,)
    ]


def test_skip_missing_reports_unknown_ids_and_reviews_the_rest(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    first = three[0]
    unknown = uuid4()
    result = review(acme, "approve", str(unknown), str(first), "--skip-missing")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == tsv(
        (unknown, None, None, None, "skipped", None),
        (first, "rule 1", "pending", "approved", "reviewed", 2),
    )
    assert rows(conn, "SELECT id FROM business_rules WHERE review_status = 'approved'") == [
        (first,)
    ]
    assert rows(conn, "SELECT resource_id FROM audit_logs WHERE action = 'rule.approve'") == [
        (first,)
    ]


def test_another_organizations_rule_is_invisible(
    acme: Any, three: list[UUID], globex_project: UUID, conn: psycopg.Connection[Any]
) -> None:
    (theirs,) = add_rules(conn, globex_project, 1)
    before = state(conn)
    refused = review(acme, "approve", str(three[0]), str(theirs))
    assert refused.exit_code == 4
    assert f"rule {theirs} not found or not visible to you" in refused.stderr
    assert state(conn) == before

    skipped = review(acme, "approve", str(theirs), "--skip-missing", "--format", "jsonl")
    assert json.loads(skipped.stdout)["outcome"] == "skipped"
    assert state(conn) == before  # also not by the unchanged path: bob's rule is untouched


def test_reviews_need_an_acting_user(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = state(conn)
    result = acme("review", "approve", str(three[0]))
    assert result.exit_code == 2
    assert result.stderr == "error: reviews need an acting user: pass --as EMAIL\n"
    assert state(conn) == before

    monkeypatch.setenv("MIGRATIONPILOT_USER", "ana@acme.test")
    assert acme("review", "approve", str(three[0])).exit_code == 0
    assert rows(conn, "SELECT reviewed_by FROM business_rules WHERE id = %s", three[0]) == [
        (user_id(conn, "ana@acme.test"),)
    ]


@pytest.mark.parametrize("verb", ["reject", "clarify"])
def test_reject_and_clarify_need_a_comment(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any], verb: str
) -> None:
    before = state(conn)
    missing = review(acme, verb, str(three[0]))
    assert missing.exit_code == 2
    assert "Missing option '--comment'" in missing.stderr
    blank = review(acme, verb, str(three[0]), "--comment", "  ")
    assert blank.exit_code == 2
    assert blank.stderr == "error: --comment must not be empty\n"
    assert state(conn) == before


def test_expect_version_refuses_a_rule_changed_meanwhile(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any]
) -> None:
    rule = three[0]
    conn.execute("UPDATE business_rules SET logic = 'changed by someone' WHERE id = %s", (rule,))
    before = state(conn)
    stale = review(acme, "approve", str(rule), "--expect-version", "1")
    assert stale.exit_code == 1
    assert stale.stderr == (
        f"error: rule {rule} is at version 2, not 1: someone changed it meanwhile;"
        " review it again\n"
    )
    assert state(conn) == before

    batch = review(acme, "approve", str(rule), str(three[1]), "--expect-version", "2")
    assert batch.exit_code == 2
    assert batch.stderr == "error: --expect-version takes a single id, not 2\n"

    current = review(acme, "approve", str(rule), "--expect-version", "2")
    assert current.exit_code == 0, current.stderr
    assert current.stdout == tsv((rule, "rule 1", "pending", "approved", "reviewed", 3))


def test_expect_version_waits_for_a_concurrent_reviewer_and_then_refuses(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any], database_url: str
) -> None:
    """Two reviewers read version 1; the first one's change is in flight when the second
    reviews. The second waits for it, sees version 2 and refuses: no lost update."""
    rule = three[0]
    with psycopg.connect(database_url) as first_reviewer:
        first_reviewer.execute(
            "UPDATE business_rules SET review_status = 'rejected' WHERE id = %s", (rule,)
        )
        second = subprocess.Popen(
            [
                str(CONSOLE_SCRIPT),
                "--database-url",
                database_url,
                *ANA,
                "review",
                "approve",
                str(rule),
                "--expect-version",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until_blocked(conn)
        first_reviewer.commit()
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 1, stderr
    assert "is at version 2, not 1" in stderr
    assert rows(
        conn, "SELECT review_status::text, version FROM business_rules WHERE id = %s", rule
    ) == [("rejected", 2)]


def wait_until_blocked(conn: psycopg.Connection[Any]) -> None:
    for _ in range(600):
        waiting = rows(
            conn,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name LIKE 'migrationpilot%%' AND wait_event_type = 'Lock'",
        )
        if waiting[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError("the second review never waited for the first")


def shell(command: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run a shell pipeline where ``mp`` is the installed console script on this database."""
    mp = f"{shlex.quote(str(CONSOLE_SCRIPT))} --database-url {shlex.quote(database_url)}"
    return subprocess.run(
        command.replace("mp ", mp + " "),
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ids_pipe_into_review_through_real_processes(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any], database_url: str
) -> None:
    first, second, third = three
    piped = shell(
        f"printf '{first}\\n{second}\\n' | mp --as ana@acme.test review approve - --comment bulk"
        " -q | mp --as ana@acme.test review clarify - --comment 'second look'",
        database_url,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == tsv(
        (first, "rule 1", "approved", "needs_clarification", "reviewed", 3),
        (second, "rule 2", "approved", "needs_clarification", "reviewed", 3),
    )
    assert piped.stderr == ""  # no notices when stderr is not a terminal
    assert rows(
        conn,
        "SELECT v.rule_id, v.version, v.change_reason FROM rule_versions v"
        " JOIN business_rules r ON r.id = v.rule_id WHERE v.version > 1 ORDER BY r.name, 2",
    ) == [
        (first, 2, "review: approve: bulk"),
        (first, 3, "review: clarify: second look"),
        (second, 2, "review: approve: bulk"),
        (second, 3, "review: clarify: second look"),
    ]
    assert rows(conn, "SELECT review_status::text FROM business_rules WHERE id = %s", third) == [
        ("pending",)
    ]


def test_the_reviewers_queue_pipes_into_approve(
    acme: Any, loans: UUID, globex_project: UUID, conn: psycopg.Connection[Any], database_url: str
) -> None:
    """The README's workflow: the confident pending rules, approved in one go."""
    queue = rows(
        conn,
        "INSERT INTO business_rules"
        " (description, source_file, source_start_line, source_end_line, source_code, logic,"
        " organization_id, project_id, name, category, confidence, review_status)"
        " SELECT 'extracted', 'src/X.cbl', 1, 1, 'IF X', 'x', p.organization_id, p.id, r.name,"
        " 'decision',"
        " r.confidence, r.status::review_status"
        " FROM projects p, (VALUES ('sure', 0.970, 'pending'), ('likely', 0.910, 'pending'),"
        "   ('unsure', 0.600, 'pending'), ('done', 0.990, 'rejected'))"
        "   AS r(name, confidence, status)"
        " WHERE p.id = %s RETURNING name, id",
        loans,
    )
    add_rules(conn, globex_project, 2)  # bob's, confident and pending: not in ana's queue
    piped = shell(
        "mp --as ana@acme.test rules list --pending --min-confidence 0.9 -q"
        " | mp --as ana@acme.test review approve - --comment bulk",
        database_url,
    )
    assert piped.returncode == 0, piped.stderr
    ids = dict(queue)
    assert piped.stdout == tsv(
        (ids["sure"], "sure", "pending", "approved", "reviewed", 2),
        (ids["likely"], "likely", "pending", "approved", "reviewed", 2),
    )
    assert rows(conn, "SELECT name, review_status::text FROM business_rules ORDER BY name") == [
        ("done", "rejected"),
        ("likely", "approved"),
        ("rule 1", "pending"),
        ("rule 2", "pending"),
        ("sure", "approved"),
        ("unsure", "pending"),
    ]


def test_a_pipe_with_an_unknown_id_changes_nothing(
    acme: Any, three: list[UUID], conn: psycopg.Connection[Any], database_url: str
) -> None:
    before = state(conn)
    unknown = uuid4()
    piped = shell(
        f"printf '{three[0]}\\n{unknown}\\n' | mp --as ana@acme.test review approve -", database_url
    )
    assert piped.returncode == 4
    assert f"rule {unknown} not found" in piped.stderr
    assert state(conn) == before


def test_ten_thousand_ids_in_one_batch(
    acme: Any, loans: UUID, conn: psycopg.Connection[Any]
) -> None:
    ids = add_rules(conn, loans, 10_000)
    result = review(
        acme, "approve", "-", "--comment", "bulk", "-q", input="".join(f"{i}\n" for i in ids)
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == [str(i) for i in ids]
    assert rows(
        conn, "SELECT review_status::text, version, count(*) FROM business_rules GROUP BY 1, 2"
    ) == [("approved", 2, 10_000)]
    assert rows(conn, "SELECT count(*) FROM rule_versions WHERE version = 2") == [(10_000,)]
    assert rows(conn, "SELECT count(*) FROM audit_logs WHERE action = 'rule.approve'") == [
        (10_000,)
    ]
