"""History is never destroyed (V0014): a deleted rule keeps its versions, and its deletion is
its last version; `rules history` and `rules diff` read a deleted rule, `rules show` points
there; only the owner removes history, by `audit purge` past the tenant's retention or by
deleting the whole organization. Checked through the CLI and in plain SQL as the app role."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import errors

from tests.conftest import rows

Conn = psycopg.Connection[Any]
ANA = ("--as", "ana@acme.test")
# A rule as the design's applications insert it. Parameters: project, name.
RULE = (
    "INSERT INTO business_rules (project_id, name, description, category, source_file,"
    " source_start_line, source_end_line, source_code, logic, confidence)"
    " VALUES (%s, %s, 'd', 'calculation', 'src/A.cbl', 1, 2, 'x', 'l', 0.9) RETURNING id"
)
# The same with its id first.
RULE_WITH_ID = (
    "INSERT INTO business_rules (id, project_id, name, description, category, source_file,"
    " source_start_line, source_end_line, source_code, logic, confidence)"
    " VALUES (%s, %s, %s, 'd', 'calculation', 'src/A.cbl', 1, 2, 'x', 'l', 0.9)"
)
NOT_WRITTEN = "written by this transaction to complete"


def one(conn: Conn, query: str, *params: Any) -> Any:
    found = rows(conn, query, *params)
    assert len(found) == 1, found
    return found[0][0] if len(found[0]) == 1 else found[0]


def as_user(conn: Conn, email: str) -> UUID:
    """Act as ``email`` for the rest of the transaction, in plain SQL as any client does."""
    user: UUID = one(conn, "SELECT id FROM users WHERE email = %s", email)
    conn.execute("SET LOCAL ROLE migrationpilot_app")
    conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(user),))
    return user


def versions(conn: Conn, rule: UUID) -> list[tuple[Any, ...]]:
    """Each version of ``rule``: number, reason, author's email, and the snapshot's version and
    name."""
    return rows(
        conn,
        "SELECT v.version, v.change_reason, u.email, (v.snapshot->>'version')::int,"
        " v.snapshot->>'name' FROM rule_versions v LEFT JOIN users u ON u.id = v.changed_by"
        " WHERE v.rule_id = %s ORDER BY v.version",
        rule,
    )


def deleted_on(conn: Conn, rule: UUID) -> str:
    """When ``rule`` was deleted (its last version), as the CLI's messages print it."""
    moment: dt.datetime = one(
        conn, "SELECT max(created_at) FROM rule_versions WHERE rule_id = %s", rule
    )
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def delete_as(conn: Conn, email: str, statement: str, *params: Any, reason: str = "") -> None:
    with conn.transaction():
        as_user(conn, email)
        conn.execute("SELECT set_config('app.change_reason', %s, true)", (reason,))
        conn.execute(statement, params)


@pytest.fixture
def loans(acme: Any) -> UUID:
    """Ana's project "Loans core" (acme-pay)."""
    created = acme(
        *ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "java", "-q"
    )
    assert created.exit_code == 0, created.stderr
    return UUID(created.stdout.strip())


@pytest.fixture
def fee(acme: Any, loans: UUID, conn: Conn) -> UUID:
    """A rule of Loans core at version 2: inserted by the operator, renamed by Ana."""
    rule: UUID = one(conn, RULE, loans, "late fee")
    edited = acme(*ANA, "rules", "edit", str(rule), "--name", "late fees", "--reason", "plural")
    assert edited.exit_code == 0, edited.stderr
    return rule


# ---------------------------------------------------------------------------------------------
# What a deletion keeps and records
# ---------------------------------------------------------------------------------------------


def test_deleting_a_rule_keeps_its_versions_and_records_the_deletion(fee: UUID, conn: Conn) -> None:
    before = versions(conn, fee)
    assert before == [
        (1, None, None, 1, "late fee"),
        (2, "plural", "ana@acme.test", 2, "late fees"),
    ]
    delete_as(conn, "ana@acme.test", "DELETE FROM business_rules WHERE id = %s", fee)
    assert rows(conn, "SELECT count(*) FROM business_rules WHERE id = %s", fee) == [(0,)]
    # The rule's version + 1, by the acting user; the snapshot is the deleted row, numbered so.
    assert versions(conn, fee) == [*before, (3, "deleted", "ana@acme.test", 3, "late fees")]
    assert one(
        conn,
        "SELECT snapshot - 'version' = (SELECT snapshot - 'version' FROM rule_versions"
        " WHERE rule_id = %s AND version = 2) FROM rule_versions"
        " WHERE rule_id = %s AND version = 3",
        fee,
        fee,
    )


def test_versions_get_time_ordered_ids_and_rules_keep_random_ones(fee: UUID, conn: Conn) -> None:
    """V0017: every version the database writes (insert, edit, deletion) has a uuidv7 id in the
    order written, so a bulk change appends to rule_versions_pkey; a rule's id stays random,
    since people name rules by its first digits."""
    delete_as(conn, "ana@acme.test", "DELETE FROM business_rules WHERE id = %s", fee)
    ids = [
        id_
        for (id_,) in rows(
            conn, "SELECT id FROM rule_versions WHERE rule_id = %s ORDER BY version", fee
        )
    ]
    assert [id_.version for id_ in ids] == [7, 7, 7]
    assert ids == sorted(ids)
    written = dt.datetime.fromtimestamp(int(ids[-1].hex[:12], 16) / 1000, dt.UTC)  # RFC 9562
    assert abs(written - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert fee.version == 4


def test_a_deletion_takes_the_transactions_change_reason(
    acme: Any, loans: UUID, conn: Conn
) -> None:
    rule = one(conn, RULE, loans, "late fee")
    delete_as(
        conn,
        "ana@acme.test",
        "DELETE FROM business_rules WHERE id = %s",
        rule,
        reason="duplicate of LATEFEE",
    )
    assert versions(conn, rule)[-1] == (2, "duplicate of LATEFEE", "ana@acme.test", 2, "late fee")


def test_deleting_a_project_keeps_every_rules_versions_in_one_statement(
    fee: UUID, loans: UUID, conn: Conn
) -> None:
    conn.execute(
        "INSERT INTO business_rules (project_id, name, description, category, source_file,"
        " source_start_line, source_end_line, source_code, logic, confidence)"
        " SELECT %s, 'bulk ' || n, 'd', 'calculation', 'src/A.cbl', n, n, 'x', 'l', 0.5"
        " FROM generate_series(1, 10000) AS n",
        (loans,),
    )
    kept = rows(conn, "SELECT rule_id, version, snapshot FROM rule_versions ORDER BY 1, 2")
    delete_as(conn, "ana@acme.test", "DELETE FROM projects WHERE id = %s", loans)
    assert rows(conn, "SELECT count(*) FROM business_rules") == [(0,)]
    after = rows(conn, "SELECT rule_id, version, snapshot FROM rule_versions ORDER BY 1, 2")
    earlier = {row[:2] for row in kept}
    assert [row for row in after if row[:2] in earlier] == kept
    # One deletion version per rule, its rule's version + 1 (the bulk rules were at 1, the fee
    # at 2), all by Ana and written by the one statement.
    assert rows(
        conn,
        "SELECT v.version, count(*), count(DISTINCT v.created_at), min(u.email), max(u.email)"
        " FROM rule_versions v JOIN users u ON u.id = v.changed_by"
        " WHERE v.change_reason = 'deleted' GROUP BY v.version ORDER BY v.version",
    ) == [
        (2, 10_000, 1, "ana@acme.test", "ana@acme.test"),
        (3, 1, 1, "ana@acme.test", "ana@acme.test"),
    ]
    assert len(after) == len(kept) + 10_001
    assert versions(conn, fee)[-1] == (3, "deleted", "ana@acme.test", 3, "late fees")


def test_the_deletion_trigger_is_set_based_and_runs_as_the_owner(conn: Conn) -> None:
    trigger = rows(
        conn,
        "SELECT t.tgtype & 1 = 0, t.tgoldtable, p.prosecdef, p.proconfig,"
        " has_function_privilege('public', p.oid, 'EXECUTE'),"
        " has_function_privilege('migrationpilot_app', p.oid, 'EXECUTE')"
        " FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
        " WHERE t.tgrelid = 'business_rules'::regclass AND t.tgtype & 8 = 8"  # DELETE
        " AND NOT t.tgisinternal AND t.tgtype & 2 = 0"  # AFTER
        " AND t.tgname = 'business_rules_record_versions_delete'",
    )
    assert trigger == [(True, "old_rules", True, ["search_path=pg_catalog, public"], False, False)]


def test_rule_versions_refer_to_their_organization_not_their_rule(conn: Conn) -> None:
    keys = rows(
        conn,
        "SELECT conname, confrelid::regclass::text, confdeltype FROM pg_constraint"
        " WHERE conrelid = 'rule_versions'::regclass AND contype = 'f' ORDER BY conname",
    )
    assert keys == [
        # The author is a person (V0016): removing their account keeps the version's author.
        ("rule_versions_changed_by_fkey", "people", "n"),
        ("rule_versions_organization_fkey", "organizations", "c"),
    ]


# ---------------------------------------------------------------------------------------------
# Append-only, and no invented versions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE rule_versions SET change_reason = 'rewritten' WHERE rule_id = %(rule)s",
        "DELETE FROM rule_versions WHERE rule_id = %(rule)s",
        "TRUNCATE rule_versions",
    ],
)
def test_a_user_still_cannot_rewrite_or_remove_a_deleted_rules_versions(
    fee: UUID, conn: Conn, statement: str
) -> None:
    delete_as(conn, "ana@acme.test", "DELETE FROM business_rules WHERE id = %s", fee)
    before = rows(conn, "SELECT * FROM rule_versions ORDER BY id")
    with (
        pytest.raises(errors.InsufficientPrivilege, match="permission denied for table"),
        conn.transaction(),
    ):
        as_user(conn, "ana@acme.test")
        conn.execute(statement, {"rule": fee})
    assert rows(conn, "SELECT * FROM rule_versions ORDER BY id") == before


def test_a_client_cannot_invent_versions_of_a_deleted_or_unknown_rule(
    fee: UUID, conn: Conn
) -> None:
    delete_as(conn, "ana@acme.test", "DELETE FROM business_rules WHERE id = %s", fee)
    before = rows(conn, "SELECT * FROM rule_versions ORDER BY id")
    insert = "INSERT INTO rule_versions (rule_id, version, snapshot) VALUES (%s, %s, '{}')"
    # The next number, the deletion itself (an earlier transaction's), a rule nobody had.
    for rule, version in ((fee, 4), (fee, 3), (uuid4(), 1)):
        with pytest.raises(errors.CheckViolation, match=NOT_WRITTEN), conn.transaction():
            as_user(conn, "ana@acme.test")
            conn.execute(insert, (rule, version))
        with pytest.raises(errors.CheckViolation, match=NOT_WRITTEN):  # nor the owner
            conn.execute(insert, (rule, version))
    assert rows(conn, "SELECT * FROM rule_versions ORDER BY id") == before


def test_a_client_completes_the_deletion_version_in_the_deleting_transaction(
    acme: Any, loans: UUID, conn: Conn
) -> None:
    """As the design's applications complete any version: change, then write its row."""
    rule = one(conn, RULE, loans, "late fee")
    with conn.transaction():
        ana = as_user(conn, "ana@acme.test")
        conn.execute("DELETE FROM business_rules WHERE id = %s", (rule,))
        conn.execute(
            "INSERT INTO rule_versions (rule_id, version, snapshot, changed_by, change_reason)"
            " VALUES (%s, 2, '{\"forged\": true}', %s, 'retired in the web app')",
            (rule, ana),
        )
    assert versions(conn, rule) == [
        (1, None, None, 1, "late fee"),
        (2, "retired in the web app", "ana@acme.test", 2, "late fee"),  # the database's snapshot
    ]


def test_a_deleted_rules_id_is_never_taken_again(fee: UUID, loans: UUID, conn: Conn) -> None:
    delete_as(conn, "ana@acme.test", "DELETE FROM business_rules WHERE id = %s", fee)
    before = rows(conn, "SELECT * FROM rule_versions ORDER BY id")
    bob_project = one(
        conn,
        "INSERT INTO projects (name, organization_id, source_language, target_language,"
        " created_by)"  # bob made it: he is on its team (V0015)
        " SELECT 'Ops', organization_id, 'cobol', 'go', id FROM users"
        " WHERE email = 'bob@globex.test' RETURNING id",
    )
    taken = f"rule id {fee} belongs to a deleted rule's history"
    with pytest.raises(errors.UniqueViolation, match=taken), conn.transaction():
        as_user(conn, "ana@acme.test")
        conn.execute(RULE_WITH_ID, (fee, loans, "late fee again"))
    with pytest.raises(errors.UniqueViolation, match=taken), conn.transaction():
        as_user(conn, "bob@globex.test")  # another organization: two histories under one id
        conn.execute(RULE_WITH_ID, (fee, bob_project, "late fee"))
    with pytest.raises(errors.UniqueViolation, match=taken):
        conn.execute(RULE_WITH_ID, (fee, loans, "late fee again"))
    assert rows(conn, "SELECT count(*) FROM business_rules WHERE id = %s", fee) == [(0,)]
    assert rows(conn, "SELECT * FROM rule_versions ORDER BY id") == before


# ---------------------------------------------------------------------------------------------
# rules history | diff | show of a deleted rule
# ---------------------------------------------------------------------------------------------


def test_history_and_diff_of_a_deleted_rule_by_its_short_id(
    acme: Any, fee: UUID, conn: Conn
) -> None:
    delete_as(
        conn, "ana@acme.test", "DELETE FROM business_rules WHERE id = %s", fee, reason="retired"
    )
    short = fee.hex[:8]
    warned = f"warning: rule {short} was deleted on {deleted_on(conn, fee)}; showing its history\n"
    history = acme(*ANA, "rules", "history", short, "--format", "json")
    assert (history.exit_code, history.stderr) == (0, warned)
    assert [
        (v["version"], v["changed_by"], v["change_reason"], v["review_status"])
        for v in json.loads(history.stdout)
    ] == [
        (1, "operator", None, "pending"),
        (2, "ana@acme.test", "plural", "pending"),
        (3, "ana@acme.test", "retired", "pending"),
    ]
    # The operator reads it too, by the full id; -q prints the version numbers.
    quiet = acme("rules", "history", str(fee), "-q")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "1\n2\n3\n", warned)

    # The deletion changed nothing but the version; earlier versions compare as usual.
    latest = acme(*ANA, "rules", "diff", short)
    assert (latest.exit_code, latest.stdout, latest.stderr) == (0, "version\t2\t3\n", warned)
    renamed = acme(*ANA, "rules", "diff", short, "--from", "1", "--to", "3")
    assert renamed.exit_code == 0, renamed.stderr
    assert renamed.stdout == "name\tlate fee\tlate fees\nversion\t1\t3\n"
    beyond = acme(*ANA, "rules", "diff", short, "--to", "4")
    assert (beyond.exit_code, beyond.stdout) == (4, "")
    assert beyond.stderr == f"error: rule {short} has no version 4 (--to); it has versions 1-3\n"


def test_show_of_a_deleted_rule_is_not_found_and_points_to_its_history(
    acme: Any, fee: UUID, conn: Conn
) -> None:
    delete_as(conn, "ana@acme.test", "DELETE FROM business_rules WHERE id = %s", fee)
    short = fee.hex[:8]
    pointer = (
        f"error: rule {short} was deleted on {deleted_on(conn, fee)}; see its history:"
        f" `migrationpilot rules history {short}`\n"
    )
    for acting, ref in ((ANA, short), (ANA, str(fee)), ((), short)):
        shown = acme(*acting, "rules", "show", ref)
        assert (shown.exit_code, shown.stdout, shown.stderr) == (4, "", pointer)


def test_another_organization_finds_no_deleted_rule(acme: Any, fee: UUID, conn: Conn) -> None:
    delete_as(conn, "ana@acme.test", "DELETE FROM business_rules WHERE id = %s", fee)
    short = fee.hex[:8]
    for user in ("bob@globex.test", "carl@acme.test"):
        for command in ("show", "history", "diff"):
            by_start = acme("--as", user, "rules", command, short)
            assert (by_start.exit_code, by_start.stdout) == (4, "")
            assert by_start.stderr == (
                f"error: no rule with an id starting {short} (or not visible to you)\n"
            )
            by_id = acme("--as", user, "rules", command, str(fee))
            assert (by_id.exit_code, by_id.stdout) == (4, "")
            assert by_id.stderr == (
                f"error: no rule {fee} (or it is not visible to you);"
                " see `migrationpilot rules list`\n"
            )


def test_a_start_shared_by_a_live_and_a_deleted_rule_is_ambiguous(
    acme: Any, loans: UUID, conn: Conn
) -> None:
    live, gone = (UUID(f"abcdef12-0000-4000-8000-00000000000{n}") for n in (1, 2))
    for rule, name in ((live, "live"), (gone, "gone")):
        conn.execute(RULE_WITH_ID, (rule, loans, name))
    delete_as(conn, "ana@acme.test", "DELETE FROM business_rules WHERE id = %s", gone)
    for command in ("show", "history", "diff"):
        ambiguous = acme(*ANA, "rules", command, "abcdef12")
        assert (ambiguous.exit_code, ambiguous.stdout) == (2, "")
        assert ambiguous.stderr == (
            f"error: abcdef12 is ambiguous: {live}, {gone}; give more digits of the rule's id\n"
        )
    # A whole id names that rule and no other.
    assert acme(*ANA, "rules", "show", str(live), "--format", "json").exit_code == 0
    assert acme(*ANA, "rules", "history", str(gone), "-q").stdout == "1\n2\n"


# ---------------------------------------------------------------------------------------------
# Who removes history: the owner, by the retention purge or a whole organization's deletion
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def aged_history(acme: Any, loans: UUID, conn: Conn) -> dict[str, UUID]:
    """acme keeps 30 days, globex the default 90. Rules of acme-pay: `expired` deleted 40 days
    ago, `recent` deleted 10 days ago (its first version 400 days old), `living` never deleted
    (400 days old); of globex-ops: `kept` deleted 40 days ago, `old` deleted 100 days ago. The
    owner backdates the versions."""
    assert acme("tenants", "set", "acme", "--retention-days", "30").exit_code == 0
    ops = one(
        conn,
        "INSERT INTO projects (name, organization_id, source_language, target_language,"
        " created_by)"  # bob made it: he is on its team (V0015)
        " SELECT 'Ops', organization_id, 'cobol', 'go', id FROM users"
        " WHERE email = 'bob@globex.test' RETURNING id",
    )
    made = {
        name: one(conn, RULE, project, name)
        for name, project in (
            ("expired", loans),
            ("recent", loans),
            ("living", loans),
            ("kept", ops),
            ("old", ops),
        )
    }
    # Every version as old as its rule's story: first written this many days ago...
    for name, days in (("expired", 50), ("recent", 400), ("living", 400), ("kept", 50),
                       ("old", 110)):  # fmt: skip
        conn.execute(
            "UPDATE rule_versions SET created_at = now() - make_interval(days => %s)"
            " WHERE rule_id = %s",
            (days, made[name]),
        )
    conn.execute(
        "DELETE FROM business_rules WHERE id = ANY(%s)",
        ([made[name] for name in ("expired", "recent", "kept", "old")],),
    )
    # ... and deleted this many days ago (the deletion is version 2).
    for name, days in (("expired", 40), ("recent", 10), ("kept", 40), ("old", 100)):
        conn.execute(
            "UPDATE rule_versions SET created_at = now() - make_interval(days => %s)"
            " WHERE rule_id = %s AND version = 2",
            (days, made[name]),
        )
    return made


def version_counts(conn: Conn, made: dict[str, UUID]) -> dict[str, int]:
    return {
        name: one(conn, "SELECT count(*) FROM rule_versions WHERE rule_id = %s", rule)
        for name, rule in made.items()
    }


def test_purge_dry_run_counts_expired_versions_and_deletes_nothing(
    aged_history: dict[str, UUID], mp: Any, conn: Conn
) -> None:
    before = rows(conn, "SELECT * FROM rule_versions ORDER BY id")
    dry = mp("audit", "purge", "--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout) == [
        {"tenant": "acme", "retention_days": 30, "would_purge": 0, "would_purge_versions": 2},
        {"tenant": "globex", "retention_days": 90, "would_purge": 0, "would_purge_versions": 2},
    ]
    assert rows(conn, "SELECT * FROM rule_versions ORDER BY id") == before


def test_purge_removes_only_expired_versions_of_deleted_rules_per_tenant(
    aged_history: dict[str, UUID], mp: Any, conn: Conn
) -> None:
    assert version_counts(conn, aged_history) == {
        "expired": 2, "recent": 2, "living": 1, "kept": 2, "old": 2,
    }  # fmt: skip
    others = rows(
        conn,
        "SELECT * FROM rule_versions WHERE rule_id <> ALL(%s) ORDER BY id",
        [aged_history["expired"], aged_history["old"]],
    )
    purged = mp("audit", "purge")
    assert (purged.exit_code, purged.stdout, purged.stderr) == (
        0,
        "acme\t30\t0\t2\nglobex\t90\t0\t2\n",
        "",
    )
    # Per tenant: acme's 30 days expire `expired`, globex's 90 keep `kept`; a deletion 10 days
    # ago keeps the whole history however old its first version; a living rule keeps all.
    assert version_counts(conn, aged_history) == {
        "expired": 0, "recent": 2, "living": 1, "kept": 2, "old": 0,
    }  # fmt: skip
    assert rows(conn, "SELECT * FROM rule_versions ORDER BY id") == others
    assert rows(
        conn,
        "SELECT t.slug, a.resource_id = a.tenant_id, a.metadata->'purged',"
        " a.metadata->'versions_purged', a.metadata->'retention_days'"
        " FROM audit_logs a JOIN tenants t ON t.id = a.tenant_id"
        " WHERE a.action = 'audit.purge' ORDER BY t.slug",
    ) == [("acme", True, 0, 2, 30), ("globex", True, 0, 2, 90)]
    again = mp("audit", "purge")
    assert again.stdout == "acme\t30\t0\t0\nglobex\t90\t0\t0\n"
    assert rows(conn, "SELECT count(*) FROM audit_logs WHERE action = 'audit.purge'") == [(2,)]


def test_the_owner_still_deletes_organizations_and_tenants(
    aged_history: dict[str, UUID], conn: Conn
) -> None:
    # A reviewed rule: deleting the organization clears its reviewer (a change, so a version
    # the versioning trigger skips) and deletes it in the same statement.
    conn.execute(
        "UPDATE business_rules SET review_status = 'approved',"
        " reviewed_by = (SELECT id FROM users WHERE email = 'ana@acme.test') WHERE id = %s",
        (aged_history["living"],),
    )
    audited = {audit_id for (audit_id,) in rows(conn, "SELECT id FROM audit_logs")}
    assert conn.execute("DELETE FROM organizations WHERE slug = 'acme-pay'").rowcount == 1
    assert version_counts(conn, aged_history) == {
        "expired": 0, "recent": 0, "living": 0, "kept": 2, "old": 2,
    }  # fmt: skip
    assert conn.execute("DELETE FROM tenants WHERE slug = 'globex'").rowcount == 1
    assert rows(conn, "SELECT count(*) FROM rule_versions") == [(0,)]
    assert rows(conn, "SELECT slug FROM organizations") == [("acme-cards",)]
    # The audit trail stays, and records the deletions (V0012): acme-pay, then globex and
    # its organization.
    after = rows(conn, "SELECT id, action FROM audit_logs")
    assert audited <= {audit_id for audit_id, _ in after}
    assert sorted(action for audit_id, action in after if audit_id not in audited) == [
        "organization.delete",
        "organization.delete",
        "tenant.delete",
    ]
