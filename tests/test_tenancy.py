"""`tenants`, `orgs`, `users`: operator administration, audited, with bad input refused."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from migrationpilot_cli.vocabulary import DATABASE_ENUMS
from tests.conftest import rows


def audit_actions(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    # audit_logs is append-only and the test's database fresh: ctid is insertion order.
    return rows(conn, "SELECT action, resource_type FROM audit_logs ORDER BY ctid")


def test_python_enums_mirror_the_database(conn: psycopg.Connection[Any]) -> None:
    for type_name, enum in DATABASE_ENUMS.items():
        labels = rows(
            conn,
            "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s::regtype ORDER BY enumsortorder",
            type_name,
        )
        assert [label for (label,) in labels] == [member.value for member in enum], type_name


def test_create_tenant_with_limits_is_stored_and_audited(
    mp: Any, conn: psycopg.Connection[Any]
) -> None:
    result = mp(
        "tenants",
        "create",
        "Acme Corp",
        "--slug",
        "acme",
        "--subscription",
        "pro",
        "--max-projects",
        "20",
        "--max-lines-of-code",
        "2000000",
        "--retention-days",
        "365",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)
    assert (created["slug"], created["subscription"], created["max_projects"]) == (
        "acme",
        "pro",
        20,
    )
    assert rows(
        conn,
        "SELECT name, max_lines_of_code, data_retention_days, max_users_per_project FROM tenants",
    ) == [("Acme Corp", 2000000, 365, 10)]
    assert rows(
        conn,
        "SELECT action, tenant_id, organization_id, user_id, db_role IS NOT NULL,"
        " metadata->'new'->>'slug' FROM audit_logs",
    ) == [("tenant.create", uuid.UUID(created["id"]), None, None, True, "acme")]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("--slug", "Acme Corp"), "--slug 'Acme Corp': use lower-case letters"),
        (("--slug", "acme", "--subscription", "gold"), "'gold' is not one of"),
        (
            ("--slug", "acme", "--max-projects", "-1"),
            "'--max-projects': -1 is not in the range x>=0",
        ),
        (("--slug", "acme", "--retention-days", "0"), "--retention-days must be at least 1"),
        (
            ("--slug", "acme", "--max-lines-of-code", "lots"),
            "'--max-lines-of-code': 'lots' is not a whole number from -2147483648 to 2147483647",
        ),
    ],
)
def test_bad_tenant_input_exits_2_and_writes_nothing(
    mp: Any, conn: psycopg.Connection[Any], arguments: tuple[str, ...], message: str
) -> None:
    result = mp("tenants", "create", "Acme Corp", *arguments)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert rows(conn, "SELECT count(*) FROM tenants") == [(0,)]
    assert audit_actions(conn) == []


def test_duplicate_slug_fails_with_exit_1_naming_it(
    acme: Any, conn: psycopg.Connection[Any]
) -> None:
    before = audit_actions(conn)
    result = acme("tenants", "create", "Acme again", "--slug", "acme")
    assert result.exit_code == 1
    assert result.stderr == "error: already exists in tenants: (slug) = (acme)\n"
    assert rows(conn, "SELECT count(*) FROM tenants") == [(2,)]
    assert audit_actions(conn) == before


def test_list_show_and_set_tenants(acme: Any, conn: psycopg.Connection[Any]) -> None:
    listed = acme("tenants", "list").stdout.splitlines()
    assert [line.split("\t")[1] for line in listed] == ["acme", "globex"]
    assert listed[0].split("\t")[-2] == "2"  # organizations

    shown = dict(line.split("\t") for line in acme("tenants", "show", "acme").stdout.splitlines())
    assert shown["max_projects"] == "3"

    changed = acme("tenants", "set", "acme", "--max-lines-of-code", "5000000", "--format", "json")
    assert changed.exit_code == 0
    assert json.loads(changed.stdout)["max_lines_of_code"] == 5000000
    assert rows(conn, "SELECT metadata FROM audit_logs WHERE action = 'tenant.update'") == [
        (
            {
                "client": "migrationpilot tenants set",
                "old": {"max_lines_of_code": 100000},
                "new": {"max_lines_of_code": 5000000},
            },
        )
    ]

    assert acme("tenants", "set", "acme").exit_code == 2
    missing = acme("tenants", "show", "initech")
    assert (missing.exit_code, missing.stderr) == (
        4,
        "error: no tenant 'initech'; see `migrationpilot tenants list`\n",
    )


def test_tenant_and_org_administration_is_operator_only(
    acme: Any, conn: psycopg.Connection[Any]
) -> None:
    result = acme("--as", "ana@acme.test", "tenants", "create", "Evil", "--slug", "evil")
    assert result.exit_code == 1
    assert "operator command" in result.stderr
    result = acme("--as", "ana@acme.test", "orgs", "create", "X", "--slug", "x", "--tenant", "acme")
    assert result.exit_code == 1
    assert rows(conn, "SELECT count(*) FROM tenants") == [(2,)]


def test_orgs_list_filter_and_show(acme: Any) -> None:
    assert acme("orgs", "list", "-q").stdout.split() != []
    by_tenant = acme("orgs", "list", "--tenant", "acme", "--format", "json")
    assert [org["slug"] for org in json.loads(by_tenant.stdout)] == ["acme-cards", "acme-pay"]
    shown = json.loads(acme("orgs", "show", "acme-pay", "--format", "json").stdout)
    assert (shown["tenant"], shown["users"], shown["projects"]) == ("acme", 1, 0)
    assert acme("orgs", "create", "Y", "--slug", "y", "--tenant", "nope").exit_code == 4


def test_users_add_list_show_set_role(acme: Any, conn: psycopg.Connection[Any]) -> None:
    added = acme("users", "add", "  Dora@Acme.TEST ", "--name", "Dora", "--org", "acme-pay", "-q")
    assert added.exit_code == 0
    # Stored as given (trimmed), and found again without regard to case.
    user_id = uuid.UUID(added.stdout.strip())
    assert rows(conn, "SELECT email, role::text FROM users WHERE id = %s", user_id) == [
        ("Dora@Acme.TEST", "developer")
    ]
    listed = acme("users", "list", "--org", "acme-pay", "--format", "csv").stdout.splitlines()
    assert listed[0] == "id,email,name,organization,role,state,created_at"
    # By email without regard to case, whatever the server's collation.
    assert [line.split(",")[1] for line in listed[1:]] == ["ana@acme.test", "Dora@Acme.TEST"]

    promoted = acme("users", "set-role", "dora@acme.test", "architect", "--format", "json")
    assert json.loads(promoted.stdout)["role"] == "architect"
    assert rows(
        conn,
        "SELECT metadata - 'client' FROM audit_logs WHERE action = 'user.update'"
        " AND resource_id = (SELECT id FROM users WHERE email = 'Dora@Acme.TEST')",
    ) == [({"old": {"role": "developer"}, "new": {"role": "architect"}},)]


@pytest.mark.parametrize(
    "arguments, code, message",
    [
        (("not-an-email", "--name", "X", "--org", "acme-pay"), 2, "is not an email address"),
        (("x@acme.test", "--name", " ", "--org", "acme-pay"), 2, "--name must not be empty"),
        (("x@acme.test", "--name", "X", "--org", "acme-pay", "--role", "boss"), 2, "'boss'"),
        (("x@acme.test", "--name", "X", "--org", "nowhere"), 4, "no organization 'nowhere'"),
        (
            ("ANA@acme.test", "--name", "X", "--org", "acme-pay"),
            1,
            "already exists in users: (lower(email::text)) = (ana@acme.test)",
        ),
    ],
)
def test_bad_user_input_is_refused_and_nothing_written(
    acme: Any, conn: psycopg.Connection[Any], arguments: tuple[str, ...], code: int, message: str
) -> None:
    before = (rows(conn, "SELECT count(*) FROM users"), audit_actions(conn))
    result = acme("users", "add", *arguments)
    assert result.exit_code == code
    assert message in result.stderr
    assert (rows(conn, "SELECT count(*) FROM users"), audit_actions(conn)) == before


def test_acting_user_sees_only_their_organization(acme: Any) -> None:
    orgs = acme("--as", "ana@acme.test", "orgs", "list", "--format", "json")
    assert [org["slug"] for org in json.loads(orgs.stdout)] == ["acme-pay"]
    users = acme("--as", "ana@acme.test", "users", "list", "-q")
    assert len(users.stdout.split()) == 1
    hidden = acme("--as", "ana@acme.test", "users", "show", "bob@globex.test")
    assert hidden.exit_code == 4
    unknown = acme("--as", "nobody@acme.test", "projects", "list")
    assert unknown.exit_code == 4
    assert "no user with email nobody@acme.test" in unknown.stderr


def _organization(conn: psycopg.Connection[Any], slug: str) -> list[tuple[Any, ...]]:
    return rows(conn, "SELECT name, slug, settings FROM organizations WHERE slug = %s", slug)


def test_orgs_set_renames_and_merges_settings(acme: Any, conn: psycopg.Connection[Any]) -> None:
    assert acme("orgs", "set", "acme-pay", "--four-eyes", "on").exit_code == 0
    changed = acme("orgs", "set", "acme-pay", "--name", "Acme Payments EU", "--slug",
                   "acme-pay-eu", "--settings", '{"locale": "pt-BR", "fee": 0.015}',
                   "--format", "json")  # fmt: skip
    assert changed.exit_code == 0, changed.stderr
    shown = json.loads(changed.stdout)
    assert (shown["slug"], shown["four_eyes"]) == ("acme-pay-eu", True)
    # Each key given replaces the stored one, null removes one, the others stay.
    assert acme("orgs", "set", "acme-pay-eu", "--settings", '{"locale": null}').exit_code == 0
    assert _organization(conn, "acme-pay-eu") == [
        ("Acme Payments EU", "acme-pay-eu", {"four_eyes": True, "fee": 0.015})
    ]
    # --four-eyes is its setting, and wins over the same key in --settings.
    both = acme("orgs", "set", "acme-pay-eu", "--settings", '{"four_eyes": true}',
                "--four-eyes", "off")  # fmt: skip
    assert both.exit_code == 0, both.stderr
    assert _organization(conn, "acme-pay-eu")[0][2] == {"four_eyes": False, "fee": 0.015}
    assert [action for action, _ in audit_actions(conn)][-4:] == ["organization.update"] * 4


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--settings", "[1, 2]"), 2, "--settings: expected a JSON object, got an array"),
        (("--settings", "{locale: 1}"), 2,
         "--settings: malformed JSON: Expecting property name enclosed in double quotes"
         " (column 2)"),
        (("--settings", '{"a": NaN}'), 2, "--settings: malformed JSON: NaN is not a JSON value"),
        (("--settings", '{"a": "\\u0000"}'), 2,
         "--settings: a string holds \\u0000, which PostgreSQL cannot store"),
        (("--slug", "Acme Pay"), 2,
         "--slug 'Acme Pay': use lower-case letters, digits and single hyphens (e.g. acme-pay)"),
        (("--slug", "acme-cards"), 1,
         "already exists in organizations: (slug) = (acme-cards)"),
        (("--name", " "), 2, "--name must not be empty"),
    ],
)  # fmt: skip
def test_orgs_set_refuses_bad_input_and_writes_nothing(
    acme: Any, conn: psycopg.Connection[Any], args: tuple[str, ...], code: int, message: str
) -> None:
    before = rows(conn, "SELECT * FROM organizations ORDER BY id")
    result = acme("orgs", "set", "acme-pay", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"error: {message}\n")
    assert rows(conn, "SELECT * FROM organizations ORDER BY id") == before
