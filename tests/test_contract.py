"""The design's schema as a contract (issue 17), proved with plain SQL and through the CLI.

What the design lets an insert omit is filled by the database from the parent row (and a
value that disagrees with the parent is still refused); emails keep their case but collide
without regard to it; a client's rule_versions row completes the version the database wrote;
routing names are free text with a derived slug that survives a rename; the enabled rules of
one pattern share at most 100% of its traffic. People name rows by the start of their uuid:
an unknown start is exit 4, an ambiguous one exit 2 naming the candidates.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors

from migrationpilot_cli.db.connect import act_as
from tests.conftest import rows

Conn = psycopg.Connection[Any]
ANA = ("--as", "ana@acme.test")
# A rule as the design's applications insert it: no organization_id. Parameters: project, name.
RULE = (
    "INSERT INTO business_rules (project_id, name, description, category, source_file,"
    " source_start_line, source_end_line, source_code, logic, confidence)"
    " VALUES (%s, %s, 'd', 'calculation', 'src/A.cbl', 1, 2, 'x', 'l', 0.9)"
)
# The same with the organization (then project, name) and with the id (then project, name).
RULE_IN_ORG = (
    "INSERT INTO business_rules (organization_id, project_id, name, description, category,"
    " source_file, source_start_line, source_end_line, source_code, logic, confidence)"
    " VALUES (%s, %s, %s, 'd', 'calculation', 'src/A.cbl', 1, 2, 'x', 'l', 0.9)"
)
RULE_WITH_ID = (
    "INSERT INTO business_rules (id, project_id, name, description, category, source_file,"
    " source_start_line, source_end_line, source_code, logic, confidence)"
    " VALUES (%s, %s, %s, 'd', 'calculation', 'src/A.cbl', 1, 2, 'x', 'l', 0.9)"
)


@pytest.fixture
def loans(acme: Any, conn: Conn) -> UUID:
    created = acme(
        *ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "java", "-q"
    )
    assert created.exit_code == 0, created.stderr
    return UUID(created.stdout.strip())


def one(conn: Conn, query: str, *params: Any) -> Any:
    found = rows(conn, query, *params)
    assert len(found) == 1, found
    return found[0][0] if len(found[0]) == 1 else found[0]


# ---------------------------------------------------------------------------------------------
# Filled by the database
# ---------------------------------------------------------------------------------------------


def test_children_take_their_organization_from_the_parent(conn: Conn, loans: UUID) -> None:
    org = one(conn, "SELECT organization_id FROM projects WHERE id = %s", loans)
    rule = one(
        conn,
        RULE + " RETURNING organization_id, id",
        loans,
        "late fee",
    )
    assert rule[0] == org
    case = one(
        conn,
        "INSERT INTO test_cases (rule_id, inputs, expected) VALUES (%s, '{}', '1')"
        " RETURNING organization_id, project_id, name",
        rule[1],
    )
    assert case[:2] == (org, loans) and case[2].startswith("case-")
    content = "       MOVE 1 TO X.\n\n       STOP RUN.\n"
    source = one(
        conn,
        "INSERT INTO source_files (project_id, path, content) VALUES (%s, 'a.cbl', %s)"
        " RETURNING organization_id, language::text, size_bytes, line_count, blank_lines,"
        " code_lines, sha256 = encode(sha256(convert_to(content, 'UTF8')), 'hex')",
        loans,
        content,
    )
    assert source == (org, "cobol", len(content.encode()), 3, 1, 2, True)


def test_a_parent_that_disagrees_or_is_not_there_is_refused(
    acme: Any, conn: Conn, loans: UUID
) -> None:
    other = one(conn, "SELECT id FROM organizations WHERE slug = 'globex-ops'")
    with pytest.raises(errors.ForeignKeyViolation, match="business_rules_project_fkey"):
        conn.execute(
            RULE_IN_ORG,
            (other, loans, "stray"),
        )
    with pytest.raises(errors.ForeignKeyViolation, match="no project"):
        conn.execute(
            RULE,
            (UUID(int=1), "orphan"),
        )
    assert rows(conn, "SELECT count(*) FROM business_rules") == [(0,)]


def test_an_organization_takes_the_only_tenant_or_names_the_column(conn: Conn) -> None:
    conn.execute("INSERT INTO tenants (name, slug) VALUES ('One', 'one')")
    conn.execute("INSERT INTO organizations (name, slug) VALUES ('A', 'a')")
    assert rows(conn, "SELECT count(*) FROM organizations WHERE tenant_id IS NOT NULL") == [(1,)]
    conn.execute("INSERT INTO tenants (name, slug) VALUES ('Two', 'two')")
    with pytest.raises(errors.NotNullViolation, match=r"organizations\.tenant_id is required"):
        conn.execute("INSERT INTO organizations (name, slug) VALUES ('B', 'b')")
    assert rows(conn, "SELECT slug FROM organizations") == [("a",)]


def test_a_user_acting_adds_users_to_their_own_organization(acme: Any, conn: Conn) -> None:
    conn.execute("UPDATE users SET role = 'admin' WHERE email = 'ana@acme.test'")
    with conn.transaction():
        act_as(conn, "ANA@acme.test")  # any case
        conn.execute("INSERT INTO users (email, name) VALUES ('Dora@Acme.test', 'Dora')")
    assert rows(
        conn,
        "SELECT u.email, o.slug FROM users u JOIN organizations o ON o.id = u.organization_id"
        " WHERE lower(email) = 'dora@acme.test'",
    ) == [("Dora@Acme.test", "acme-pay")]


def test_emails_keep_their_case_and_collide_without_regard_to_it(acme: Any, conn: Conn) -> None:
    taken = acme("users", "add", "ANA@ACME.TEST", "--name", "Ana again", "--org", "acme-pay")
    assert taken.exit_code == 1
    assert "already exists" in taken.stderr
    assert rows(conn, "SELECT email FROM users WHERE lower(email) = 'ana@acme.test'") == [
        ("ana@acme.test",)
    ]
    shown = acme("users", "show", "Ana@Acme.Test", "--format", "json")
    assert shown.exit_code == 0, shown.stderr


def test_design_lengths_are_enforced(acme: Any, conn: Conn) -> None:
    long = acme(*ANA, "projects", "create", "x" * 256, "--source", "cobol", "--target", "go")
    assert long.exit_code != 0
    assert rows(conn, "SELECT count(*) FROM projects") == [(0,)]


# ---------------------------------------------------------------------------------------------
# Rule versions written by a client
# ---------------------------------------------------------------------------------------------


def test_a_client_version_row_completes_the_one_the_database_wrote(
    acme: Any, conn: Conn, loans: UUID
) -> None:
    rule = one(
        conn,
        RULE + " RETURNING id",
        loans,
        "late fee",
    )
    ana = one(conn, "SELECT id FROM users WHERE email = 'ana@acme.test'")
    with conn.transaction():  # as the design's applications do: change, then write the version
        conn.execute(
            "UPDATE business_rules SET review_status = 'approved', reviewed_by = %s,"
            " version = version + 1 WHERE id = %s",
            (ana, rule),
        )
        mine = one(
            conn,
            "INSERT INTO rule_versions (rule_id, version, snapshot, changed_by, change_reason)"
            " VALUES (%s, 2, '{\"client\": true}', %s, 'approved in the web app') RETURNING id",
            rule,
            ana,
        )
    assert rows(
        conn,
        "SELECT id, version, changed_by, change_reason, snapshot->>'review_status'"
        " FROM rule_versions WHERE rule_id = %s ORDER BY version",
        rule,
    )[1:] == [(mine, 2, ana, "approved in the web app", "approved")]
    assert rows(conn, "SELECT count(*) FROM rule_versions WHERE rule_id = %s", rule) == [(2,)]
    # Recorded history is not rewritten: version 2 belongs to a finished transaction now.
    with pytest.raises(errors.CheckViolation, match="has no version 2 written by this"):
        conn.execute(
            "INSERT INTO rule_versions (rule_id, version, snapshot, change_reason)"
            " VALUES (%s, 2, '{}', 'rewritten')",
            (rule,),
        )
    # A version the database never wrote cannot be invented.
    with pytest.raises(errors.CheckViolation, match="has no version 3"):
        conn.execute(
            "INSERT INTO rule_versions (rule_id, version, snapshot) VALUES (%s, 3, '{}')", (rule,)
        )


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------


def add_route(conn: Conn, project: UUID, name: str, target: str, traffic: int) -> Any:
    return conn.execute(
        "INSERT INTO routing_rules (project_id, name, path_pattern, target_service,"
        " traffic_percentage, enabled) VALUES (%s, %s, '/api/fees/**', %s, %s, true)"
        " RETURNING slug",
        (project, name, target, traffic),
    ).fetchone()


def test_routing_names_are_free_text_with_a_slug_kept_for_life(conn: Conn, loans: UUID) -> None:
    assert add_route(conn, loans, "Late fees API", "legacy", 10) == ("late-fees-api",)
    assert add_route(conn, loans, "late-fees-api", "modern", 20) == ("late-fees-api-2",)
    with pytest.raises(errors.UniqueViolation):
        add_route(conn, loans, "LATE FEES API", "modern", 0)
    conn.execute("UPDATE routing_rules SET name = 'Fees' WHERE slug = 'late-fees-api'")
    with pytest.raises(errors.CheckViolation, match="keeps its slug"):
        conn.execute("UPDATE routing_rules SET slug = 'fees' WHERE name = 'Fees'")
    assert rows(conn, "SELECT name, slug FROM routing_rules ORDER BY slug") == [
        ("Fees", "late-fees-api"),
        ("late-fees-api", "late-fees-api-2"),
    ]


def test_the_enabled_rules_of_a_pattern_share_at_most_all_of_its_traffic(
    conn: Conn, loans: UUID
) -> None:
    add_route(conn, loans, "legacy share", "legacy", 10)
    add_route(conn, loans, "modern share", "modern", 90)
    with pytest.raises(errors.CheckViolation, match="add up to 101%"):
        add_route(conn, loans, "one more", "other", 1)
    with pytest.raises(errors.CheckViolation, match="add up to 105%"):
        conn.execute("UPDATE routing_rules SET traffic_percentage = 95 WHERE name = 'modern share'")
    assert rows(
        conn, "SELECT name, traffic_percentage FROM routing_rules ORDER BY traffic_percentage"
    ) == [("legacy share", 10), ("modern share", 90)]


# ---------------------------------------------------------------------------------------------
# References people type
# ---------------------------------------------------------------------------------------------


def test_a_rule_is_named_by_any_start_of_its_id_and_an_ambiguous_one_is_refused(
    acme: Any, conn: Conn, loans: UUID
) -> None:
    first, second = (
        UUID("abcd1234-0000-4000-8000-000000000001"),
        UUID("abcd1234-0000-4000-8000-000000000002"),
    )
    for rule_id, name in ((first, "one"), (second, "two")):
        conn.execute(
            RULE_WITH_ID,
            (rule_id, loans, name),
        )
    table = acme(*ANA, "rules", "list", "--format", "table")
    assert "abcd1234" in table.stdout and str(first) not in table.stdout
    piped = acme(*ANA, "rules", "list", "--fields", "id")
    assert sorted(piped.stdout.split()) == [str(first), str(second)]

    ambiguous = acme(*ANA, "rules", "show", "ABCD-1234")
    assert ambiguous.exit_code == 2
    assert ambiguous.stderr == (
        f"error: abcd1234 is ambiguous: {first}, {second}; give more digits of the rule's id\n"
    )
    for ref in (str(first), first.hex, str(first).upper()):
        shown = acme(*ANA, "rules", "show", ref, "--format", "json")
        assert (shown.exit_code, shown.stderr) == (0, ""), ref
    from_stdin = acme(*ANA, "rules", "show", "-", "--format", "json", input=f"{second}\n")
    assert '"name": "two"' in from_stdin.stdout

    unknown = acme(*ANA, "rules", "show", "0000ffff")
    assert (unknown.exit_code, unknown.stderr) == (
        4,
        "error: no rule with an id starting 0000ffff (or not visible to you)\n",
    )
    # Invisible to a user of another organization: not found, not ambiguous.
    hidden = acme("--as", "bob@globex.test", "rules", "show", "abcd1234")
    assert hidden.exit_code == 4
    bad = acme(*ANA, "rules", "show", "abc")
    assert bad.exit_code == 2 and "is not an id" in bad.stderr


def test_a_version_cannot_be_forged_from_a_trigger_of_the_clients_own(
    acme: Any, conn: Conn, loans: UUID
) -> None:
    """Trigger depth proves nothing: a client may nest its insert in a temporary table's
    trigger. The app role's rows are checked at any depth."""
    rule = one(conn, RULE + " RETURNING id", loans, "late fee")
    conn.execute("UPDATE users SET role = 'viewer' WHERE email = 'ana@acme.test'")
    with pytest.raises(errors.CheckViolation, match="has no version 2"), conn.transaction():
        act_as(conn, "ana@acme.test")
        conn.execute("CREATE TEMPORARY TABLE forge (rule_id uuid, version int)")
        conn.execute(
            "CREATE FUNCTION pg_temp.forge() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " INSERT INTO public.rule_versions (rule_id, version, snapshot, change_reason)"
            " VALUES (NEW.rule_id, NEW.version, '{}', 'forged'); RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER forge BEFORE INSERT ON forge"
            " FOR EACH ROW EXECUTE FUNCTION pg_temp.forge()"
        )
        conn.execute("INSERT INTO forge VALUES (%s, 2)", (rule,))
    assert rows(conn, "SELECT version FROM rule_versions WHERE rule_id = %s", rule) == [(1,)]


def test_a_whole_uuid_names_a_row_by_its_id_never_by_a_name_that_looks_like_it(
    acme: Any, conn: Conn, loans: UUID
) -> None:
    # Another project named like Loans core's id does not stand in for it.
    decoy = acme(*ANA, "projects", "create", str(loans), "--source", "vb6", "--target", "go")
    assert decoy.exit_code == 0, decoy.stderr
    shown = acme(*ANA, "projects", "show", str(loans), "--format", "json")
    assert '"name": "Loans core"' in shown.stdout
    # The start a table shows names it too (no project is called that).
    short = acme(*ANA, "projects", "show", loans.hex[:8], "--format", "json")
    assert '"name": "Loans core"' in short.stdout


def test_routing_rules_are_named_by_name_slug_or_id(acme: Any, conn: Conn, loans: UUID) -> None:
    rule_id = add_route(conn, loans, "Late fees API", "modern", 10)
    (found,) = rows(conn, "SELECT id FROM routing_rules WHERE slug = %s", rule_id[0])[0]
    for ref in ("late FEES api", "late-fees-api", str(found), found.hex[:8]):
        shown = acme(*ANA, "routing", "show", ref, "-p", "Loans core", "--format", "json")
        assert (shown.exit_code, '"slug": "late-fees-api"' in shown.stdout) == (0, True), ref


def test_one_rule_named_three_ways_is_reviewed_once(acme: Any, conn: Conn, loans: UUID) -> None:
    rule = one(conn, RULE + " RETURNING id", loans, "late fee")
    reviewed = acme(*ANA, "review", "approve", rule.hex[:8], str(rule), str(rule).upper(), "-q")
    assert (reviewed.exit_code, reviewed.stdout) == (0, f"{rule}\n")
