"""`routing ...` through the CLI against a real database: validated, audited changes, the
explained `resolve`, and exports a proxy accepts."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
import yaml

from migrationpilot_cli import routing
from tests.conftest import CONSOLE_SCRIPT, rows

ANA = ("--as", "ana@acme.test")
CARL = ("--as", "carl@acme.test")
P = ("--project", "Loans core")
RULE_ROWS = (
    "SELECT name, slug, path_pattern, target_service, traffic_percentage, shadow_mode, enabled"
    " FROM routing_rules ORDER BY name"
)
AUDIT_ROWS = (
    "SELECT action, actor_email, metadata FROM audit_logs WHERE action LIKE 'routing_rule.%%'"
    " ORDER BY created_at"
)
LATE_FEES = "/api/late-fees/**"


@pytest.fixture
def loans(acme: Any) -> Any:
    created = acme(
        *ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "java", "-q"
    )
    assert created.exit_code == 0, created.stderr
    return acme


def add(mp: Any, name: str, pattern: str, target: str, *extra: str) -> Any:
    result = mp(
        *ANA, "routing", "add", *P, "--name", name, "--pattern", pattern, "--target", target, *extra
    )
    assert result.exit_code == 0, result.stderr
    return result


def split(mp: Any) -> None:
    """The issue's split on /api/late-fees/**: 10% to a target named legacy, 90% to modern."""
    add(mp, "Late fees (legacy)", LATE_FEES, "legacy", "--traffic", "10", "--enable")
    add(mp, "Late fees (modern)", LATE_FEES, "modern", "--traffic", "90", "--enable")


@pytest.fixture
def several(loans: Any) -> Any:
    """Loans core with five rules: plain, exact, shadow, 0% and one disabled."""
    add(loans, "accounts-read", "/api/accounts/**", "accounts-java", "--traffic", "10", "--enable")
    add(loans, "accounts-summary", "/api/accounts/summary", "accounts-java", "--traffic", "100")
    add(loans, "orders-shadow", "/api/orders/*", "orders-java", "--traffic", "25", "--shadow")
    add(loans, "ledger", "/api/ledger/**", "ledger-py", "--enable")
    add(loans, "off", "/api/off", "off-svc", "--traffic", "50")
    for name in ("accounts-summary", "orders-shadow"):
        assert loans(*ANA, "routing", "enable", name, *P).exit_code == 0
    return loans


def test_add_creates_a_disabled_rule_and_audits_it(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    created = add(
        loans,
        "accounts-read",
        "/api/accounts/**",
        "accounts-java",
        "--traffic",
        "10",
        "--format",
        "json",
    )
    record = json.loads(created.stdout)
    assert {
        k: record[k] for k in ("name", "slug", "pattern", "target", "traffic", "shadow", "enabled")
    } == {
        "name": "accounts-read",
        "slug": "accounts-read",  # a name that is an identifier is its own slug
        "pattern": "/api/accounts/**",
        "target": "accounts-java",
        "traffic": 10,
        "shadow": False,
        "enabled": False,
    }
    assert record["project"] == "Loans core"
    assert str(UUID(record["id"])) == record["id"]  # ids are full uuids
    assert rows(conn, RULE_ROWS) == [
        ("accounts-read", "accounts-read", "/api/accounts/**", "accounts-java", 10, False, False)
    ]
    (audit,) = rows(conn, AUDIT_ROWS)
    assert audit[:2] == ("routing_rule.create", "ana@acme.test")
    assert audit[2]["client"] == "migrationpilot routing add"
    assert {key: value for key, value in audit[2]["new"].items() if key != "organization_id"} == {
        "id": record["id"],
        "project_id": record["project_id"],
        "name": "accounts-read",
        "slug": "accounts-read",
        "path_pattern": "/api/accounts/**",
        "target_service": "accounts-java",
        "traffic_percentage": 10,
        "shadow_mode": False,
        "enabled": False,
    }
    assert rows(
        conn,
        "SELECT resource_type, resource_id::text FROM audit_logs"
        " WHERE action = 'routing_rule.create'",
    ) == [("routing_rule", record["id"])]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--name", "bad", "--pattern", "/api/acc*", "--target", "x"),
            "error: --pattern '/api/acc*': '*' and '**' must be a whole segment, not 'acc*'\n",
        ),
        (
            ("--name", "bad", "--pattern", "api", "--target", "x"),
            "error: --pattern 'api': a pattern is a path starting with '/'"
            " (e.g. /api/accounts/**)\n",
        ),
        (
            ("--name", "bad", "--pattern", "/x", "--target", "x", "--traffic", "101"),
            "error: --traffic 101: expected a percentage from 0 to 100\n",
        ),
        (
            ("--name", "bad", "--pattern", "/x", "--target", "x", "--traffic", "-1"),
            "error: --traffic -1: expected a percentage from 0 to 100\n",
        ),
        (
            ("--name", "bad", "--pattern", "/x", "--target", "x" * 51),
            "error: --target: 51 characters; at most 50\n",
        ),
        (
            ("--name", "bad", "--pattern", "/x", "--target", "a\tb"),
            "error: --target 'a\\tb': no control characters (tabs, line breaks)\n",
        ),
        (
            ("--name", "  ", "--pattern", "/x", "--target", "x"),
            "error: --name '  ': must not be blank\n",
        ),
        (
            ("--name", "n" * 256, "--pattern", "/x", "--target", "x"),
            "error: --name: 256 characters; at most 255\n",
        ),
        (
            ("--name", "Late\nfees", "--pattern", "/x", "--target", "x"),
            "error: --name 'Late\\nfees': no control characters (tabs, line breaks)\n",
        ),
        (
            ("--name", "accounts-read", "--pattern", "/other", "--target", "x"),
            "error: --name 'accounts-read': the project already has a rule with that name\n",
        ),
        (  # names are unique without regard to case
            ("--name", "Accounts-READ", "--pattern", "/other", "--target", "x"),
            "error: --name 'Accounts-READ': the project already has a rule with that name\n",
        ),
    ],
)
def test_bad_rules_are_refused_and_nothing_is_written(
    loans: Any, conn: psycopg.Connection[Any], options: tuple[str, ...], message: str
) -> None:
    add(loans, "accounts-read", "/api/accounts/**", "accounts-java")
    before = (rows(conn, RULE_ROWS), rows(conn, AUDIT_ROWS))
    refused = loans(*ANA, "routing", "add", *P, *options)
    assert (refused.exit_code, refused.stderr, refused.stdout) == (2, message, "")
    assert (rows(conn, RULE_ROWS), rows(conn, AUDIT_ROWS)) == before


def test_rules_of_an_unknown_or_invisible_project_are_not_found(loans: Any) -> None:
    add(loans, "accounts-read", "/api/accounts/**", "accounts-java")
    unknown = loans(*ANA, "routing", "list", "--project", "Nope")
    assert (unknown.exit_code, unknown.stderr.startswith("error: no project 'Nope'")) == (4, True)
    # carl is in acme-cards: ana's project and its rules are invisible to him.
    hidden = loans(*CARL, "routing", "show", "accounts-read", *P)
    assert hidden.exit_code == 4
    assert loans(*CARL, "routing", "list", "-q").stdout == ""
    missing = loans(*ANA, "routing", "show", "nope", *P)
    assert missing.exit_code == 4
    assert missing.stderr.startswith("error: no routing rule 'nope' in project 'Loans core';")


def test_set_changes_fields_and_audits_old_and_new(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    add(loans, "accounts-read", "/api/accounts/**", "accounts-java", "--traffic", "10")
    changed = loans(
        *ANA, "routing", "set", "accounts-read", *P, "--traffic", "25", "--shadow",
        "--target", "accounts-java", "--format", "json",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.stderr
    assert (json.loads(changed.stdout)["traffic"], json.loads(changed.stdout)["shadow"]) == (
        25,
        True,
    )
    moved = loans(*ANA, "routing", "set", "accounts-read", *P, "--pattern", "/api/acc/**")
    assert moved.exit_code == 0
    back = loans(*ANA, "routing", "set", "accounts-read", *P, "--no-shadow")
    assert back.exit_code == 0
    assert rows(conn, RULE_ROWS) == [
        ("accounts-read", "accounts-read", "/api/acc/**", "accounts-java", 25, False, False)
    ]
    audits = [(action, meta.get("old"), meta["new"]) for action, _, meta in rows(conn, AUDIT_ROWS)]
    assert audits[1:] == [
        # The unchanged target is not a change.
        (
            "routing_rule.update",
            {"traffic_percentage": 10, "shadow_mode": False},
            {"traffic_percentage": 25, "shadow_mode": True},
        ),
        (
            "routing_rule.update",
            {"path_pattern": "/api/accounts/**"},
            {"path_pattern": "/api/acc/**"},
        ),
        ("routing_rule.update", {"shadow_mode": True}, {"shadow_mode": False}),
    ]
    # A request that changes nothing writes nothing.
    assert loans(*ANA, "routing", "set", "accounts-read", *P, "--traffic", "25").exit_code == 0
    assert len(rows(conn, AUDIT_ROWS)) == 4


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        (
            (),
            2,
            "error: nothing to change: give --name, --traffic, --shadow/--no-shadow, --target"
            " or --pattern\n",
        ),
        (("--traffic", "150"), 2, "error: --traffic 150: expected a percentage from 0 to 100\n"),
        (
            ("--pattern", "/api//x"),
            2,
            "error: --pattern '/api//x': empty segment: remove the doubled or trailing '/'\n",
        ),
        (
            ("--name", "ORDERS"),
            2,
            "error: --name 'ORDERS': the project already has a rule with that name\n",
        ),
        (("--name", ""), 2, "error: --name '': must not be blank\n"),
        (("--target", " "), 2, "error: --target ' ': must not be blank\n"),
    ],
)
def test_bad_changes_are_refused_and_nothing_is_written(
    loans: Any, conn: psycopg.Connection[Any], options: tuple[str, ...], code: int, message: str
) -> None:
    add(loans, "accounts-read", "/api/accounts/**", "accounts-java")
    add(loans, "orders", "/orders/*", "orders-java")
    before = (rows(conn, RULE_ROWS), rows(conn, AUDIT_ROWS))
    refused = loans(*ANA, "routing", "set", "accounts-read", *P, *options)
    assert (refused.exit_code, refused.stderr) == (code, message)
    assert (rows(conn, RULE_ROWS), rows(conn, AUDIT_ROWS)) == before


def test_unknown_rules_are_exit_4_for_every_change(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    for command in (
        ("set", "ghost", *P, "--traffic", "5"),
        ("enable", "ghost", *P),
        ("disable", "ghost", *P),
        ("remove", "ghost", *P),
        ("show", "ghost", *P),
    ):
        result = loans(*ANA, "routing", *command)
        assert result.exit_code == 4, command
        assert result.stderr.startswith("error: no routing rule 'ghost' in project 'Loans core';")
    assert rows(conn, AUDIT_ROWS) == []


def test_enable_disable_and_remove_are_audited(loans: Any, conn: psycopg.Connection[Any]) -> None:
    add(loans, "accounts-read", "/api/accounts/**", "accounts-java", "--traffic", "10")
    enabled = loans(*ANA, "routing", "enable", "accounts-read", *P, "--format", "json")
    assert json.loads(enabled.stdout)["enabled"] is True
    assert loans(*ANA, "routing", "enable", "accounts-read", *P).exit_code == 0  # no change
    assert loans(*ANA, "routing", "disable", "accounts-read", *P).exit_code == 0
    removed = loans(*ANA, "routing", "remove", "accounts-read", *P, "-q")
    assert removed.exit_code == 0
    assert rows(conn, RULE_ROWS) == []
    audits = [(action, meta) for action, _, meta in rows(conn, AUDIT_ROWS)]
    assert [(action, meta["client"]) for action, meta in audits] == [
        ("routing_rule.create", "migrationpilot routing add"),
        ("routing_rule.update", "migrationpilot routing enable"),
        ("routing_rule.update", "migrationpilot routing disable"),
        ("routing_rule.delete", "migrationpilot routing remove"),
    ]
    assert (audits[1][1]["old"], audits[1][1]["new"]) == ({"enabled": False}, {"enabled": True})
    assert (audits[2][1]["old"], audits[2][1]["new"]) == ({"enabled": True}, {"enabled": False})
    # The removed rule, whole: the audit log keeps what it was.
    assert audits[3][1]["old"] == audits[0][1]["new"]
    assert rows(
        conn,
        "SELECT DISTINCT resource_id::text FROM audit_logs WHERE action LIKE 'routing_rule.%%'",
    ) == [(removed.stdout.strip(),)]


def test_a_concurrent_duplicate_is_exit_2_too(
    loans: Any, conn: psycopg.Connection[Any], database_url: str
) -> None:
    """Another session inserts the same name, in another case, after our duplicate check:
    a unique index makes our insert wait, then refuse; the user sees the same exit 2."""
    project, organization = rows(conn, "SELECT id, organization_id FROM projects")[0]
    with psycopg.connect(database_url) as other:
        other.execute(
            "INSERT INTO routing_rules (organization_id, project_id, name, path_pattern,"
            " target_service) VALUES (%s, %s, 'Accounts-Read', '/elsewhere', 'x')",
            (organization, project),
        )
        outcome: dict[str, Any] = {}
        command = [
            str(CONSOLE_SCRIPT), "--database-url", database_url, *ANA, "routing", "add", *P,
            "--name", "accounts-read", "--pattern", "/api/accounts/**", "--target", "y",
        ]  # fmt: skip
        runner = threading.Thread(
            target=lambda: outcome.update(
                result=subprocess.run(command, capture_output=True, text=True, timeout=60)
            )
        )
        runner.start()
        while not rows(
            conn,
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%%INSERT INTO routing_rules%%'",
        ):
            assert runner.is_alive(), outcome
            time.sleep(0.05)
        other.commit()
        runner.join()
    result = outcome["result"]
    assert (result.returncode, result.stderr) == (
        2,
        "error: --name 'accounts-read': the project already has a rule with that name\n",
    )
    assert rows(conn, "SELECT name, slug, path_pattern FROM routing_rules") == [
        ("Accounts-Read", "accounts-read", "/elsewhere")
    ]
    # Only the other session's insert is audited: ours wrote nothing.
    assert [(action, meta["client"]) for action, _, meta in rows(conn, AUDIT_ROWS)] == [
        ("routing_rule.create", "sql")
    ]


def test_list_orders_each_project_by_precedence(several: Any) -> None:
    listed = several(*ANA, "routing", "list", *P, "--format", "json")
    assert [rule["name"] for rule in json.loads(listed.stdout)] == [
        "accounts-summary",
        "off",  # exact, disabled: where it would rank once enabled
        "accounts-read",
        "orders-shadow",  # the same literal prefix length and wildcards as ledger, but older
        "ledger",
    ]
    enabled = several(*ANA, "routing", "list", "--enabled")
    lines = [line.split("\t") for line in enabled.stdout.splitlines()]
    assert [line[2] for line in lines] == [
        "accounts-summary",
        "accounts-read",
        "orders-shadow",
        "ledger",
    ]
    assert lines[1][1:9] == [
        "Loans core",
        "accounts-read",
        "accounts-read",
        "/api/accounts/**",
        "accounts-java",
        "10",
        "false",
        "true",
    ]
    ids = several(*ANA, "routing", "list", "-q").stdout.split()
    assert len(ids) == 5 and all(str(UUID(value)) == value for value in ids)
    # Operators see every organization's rules, or one organization's with --org.
    assert several("routing", "list", "--org", "acme-pay", "-q").stdout.split() == ids
    assert several("routing", "list", "--org", "acme-cards", "-q").stdout == ""
    csv_out = several(*ANA, "routing", "list", "--format", "csv").stdout.splitlines()
    assert csv_out[0] == (
        "id,project,name,slug,pattern,target,traffic,shadow,enabled,created_at,updated_at"
    )


def test_show_includes_the_regex_the_proxies_use(several: Any) -> None:
    shown = several(*ANA, "routing", "show", "accounts-read", *P, "--format", "json")
    record = json.loads(shown.stdout)
    assert (record["pattern"], record["regex"]) == ("/api/accounts/**", "^/api/accounts(?:/.*)?$")
    tsv = several(*ANA, "routing", "show", "accounts-read", *P).stdout
    assert "traffic\t10\n" in tsv and "slug\taccounts-read\n" in tsv


def test_free_text_names_get_a_slug_that_show_displays(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    add(
        loans,
        "Late fees API",
        "/api/late-fees/**",
        "Late Fees (Java)",
        "--traffic",
        "20",
        "--enable",
    )
    add(loans, "Late fees: API!", "/api/late-fees/v2/**", "modern")
    add(loans, "rule", "/rule", "modern")
    assert rows(conn, "SELECT name, slug FROM routing_rules ORDER BY created_at") == [
        ("Late fees API", "late-fees-api"),
        ("Late fees: API!", "late-fees-api-2"),  # made unique
        ("rule", "rule"),
    ]
    shown = json.loads(
        loans(*ANA, "routing", "show", "Late fees API", *P, "--format", "json").stdout
    )
    assert (shown["name"], shown["slug"], shown["target"]) == (
        "Late fees API",
        "late-fees-api",
        "Late Fees (Java)",
    )
    # A rule is found by its name in any case, or by its slug.
    for ref in ("late FEES api", "late-fees-api"):
        found = loans(*ANA, "routing", "show", ref, *P, "--format", "json")
        assert json.loads(found.stdout)["id"] == shown["id"], ref
    assert "slug\tlate-fees-api-2\n" in loans(*ANA, "routing", "show", "late-fees-api-2", *P).stdout
    listed = loans(*ANA, "routing", "list", *P, "--fields", "name,slug", "--format", "csv")
    assert listed.stdout.splitlines()[1:] == [  # in precedence order
        "rule,rule",
        "Late fees: API!,late-fees-api-2",
        "Late fees API,late-fees-api",
    ]
    # The exports name routes by the slug, and the free-text target by a derived name.
    nginx = loans(*ANA, "routing", "export", *P, "--format", "nginx").stdout
    assert f"    late-fees-api {routing.proxy_name('Late Fees (Java)')};" in nginx
    assert "Late fees API" in nginx.split("\n\n", 1)[0]  # only in the leading comment


def test_rename_keeps_the_slug_and_the_bucket(loans: Any, conn: psycopg.Connection[Any]) -> None:
    add(loans, "Late fees API", LATE_FEES, "modern", "--traffic", "30", "--enable")
    keys = "".join(f"user-{n}\n" for n in range(300))

    def decisions() -> list[list[str]]:
        resolved = loans(*ANA, "routing", "resolve", "/api/late-fees/1", *P, "--keys-from", "-",
                         input=keys)  # fmt: skip
        assert resolved.exit_code == 0, resolved.stderr
        # path key rule served_by mirror_to bucket traffic sticky reason, without the rule
        return [
            line.split("\t")[:2] + line.split("\t")[3:] for line in resolved.stdout.splitlines()
        ]

    before = decisions()
    renamed = loans(
        *ANA, "routing", "set", "late fees api", *P, "--name", "Late fees (v2)", "--format", "json"
    )
    assert renamed.exit_code == 0, renamed.stderr
    record = json.loads(renamed.stdout)
    assert (record["name"], record["slug"]) == ("Late fees (v2)", "late-fees-api")
    assert decisions() == before
    assert {line[2] for line in before} == {"legacy", "modern"}  # served_by
    (audit,) = [
        meta for action, _, meta in rows(conn, AUDIT_ROWS) if action == "routing_rule.update"
    ]
    # The slug does not change: the audit row names only the name.
    assert (audit["old"], audit["new"]) == ({"name": "Late fees API"}, {"name": "Late fees (v2)"})
    # A case-only rename of the rule itself is a rename, not a clash.
    again = loans(*ANA, "routing", "set", "late-fees-api", *P, "--name", "LATE FEES (V2)")
    assert again.exit_code == 0, again.stderr
    assert rows(conn, "SELECT name, slug FROM routing_rules") == [
        ("LATE FEES (V2)", "late-fees-api")
    ]


def test_a_split_resolves_per_key_with_the_expected_shares(loans: Any) -> None:
    split(loans)
    keys = [f"customer-{n}" for n in range(4000)]
    stdin = "\n".join(keys) + "\n"
    per_key = loans(
        *ANA, "routing", "resolve", "/api/late-fees/7", *P, "--keys-from", "-", input=stdin
    )
    assert per_key.exit_code == 0, per_key.stderr
    lines = [line.split("\t") for line in per_key.stdout.splitlines()]
    for (_, key, rule, served_by, _, bucket, traffic, sticky, reason), expected in zip(
        lines, keys, strict=True
    ):
        # One bucket per key, from the oldest rule's slug; legacy 1..10, modern 11..100.
        assert (key, int(bucket)) == (expected, routing.bucket("late-fees-legacy", expected))
        inside = int(bucket) <= 10
        assert (rule, served_by, traffic, sticky) == (
            ("Late fees (legacy)", "legacy", "10", "true")
            if inside
            else ("Late fees (modern)", "modern", "90", "true")
        )
        assert reason == (f"bucket {bucket} in 1..10" if inside else f"bucket {bucket} in 11..100")
    # Deterministic: the same keys, the same decisions.
    again = loans(
        *ANA, "routing", "resolve", "/api/late-fees/7", *P, "--keys-from", "-", input=stdin
    )
    assert again.stdout == per_key.stdout
    summary = loans(
        *ANA, "routing", "resolve", "/api/late-fees/7", *P, "--keys-from", "-", "--summary",
        "--format", "json", input=stdin,
    )  # fmt: skip
    by_rule = {row["rule"]: row for row in json.loads(summary.stdout)}
    legacy, modern = by_rule["Late fees (legacy)"], by_rule["Late fees (modern)"]
    # The target named legacy serves its own share: counted as the rule's target.
    assert (legacy["served_by_target"], legacy["served_by_legacy"]) == (legacy["requests"], 0)
    assert legacy["requests"] + modern["requests"] == 4000
    assert abs(100 * legacy["requests"] / 4000 - 10) <= 2
    assert abs(100 * modern["requests"] / 4000 - 90) <= 2
    one = json.loads(
        loans(*ANA, "routing", "resolve", "/api/late-fees/7", *P, "--key", keys[0],
              "--format", "json").stdout
    )  # fmt: skip
    assert (one["group"], one["to_target"]) == ("late-fees-legacy", True)
    nokey = loans(*ANA, "routing", "resolve", "/api/late-fees/7", *P, "--format", "json")
    assert json.loads(nokey.stdout)["reason"] == "no key: traffic 10%+90% needs a key to stick"


def test_a_split_over_100_percent_is_refused_and_nothing_is_written(
    loans: Any, conn: psycopg.Connection[Any]
) -> None:
    split(loans)
    add(loans, "Late fees (go)", LATE_FEES, "go", "--traffic", "5")  # disabled: allowed
    before = (rows(conn, RULE_ROWS), rows(conn, AUDIT_ROWS))
    message = (
        "error: the enabled rules on /api/late-fees/** add up to {total}% ({rules}); at most"
        " 100%: lower one rule's traffic before raising another's, or disable one\n"
    )
    for command, total, rules in (
        (
            ("add", *P, "--name", "More", "--pattern", LATE_FEES, "--target", "x", "--traffic",
             "1", "--enable"),
            101,
            "Late fees (legacy) 10%, Late fees (modern) 90%, More 1%",
        ),
        (
            ("enable", "Late fees (go)", *P),
            105,
            "Late fees (legacy) 10%, Late fees (modern) 90%, Late fees (go) 5%",
        ),
        (
            ("set", "Late fees (legacy)", *P, "--traffic", "11"),
            101,
            "Late fees (legacy) 11%, Late fees (modern) 90%",
        ),
    ):  # fmt: skip
        refused = loans(*ANA, "routing", *command)
        assert (refused.exit_code, refused.stderr, refused.stdout) == (
            1,
            message.format(total=total, rules=rules),
            "",
        )
        assert (rows(conn, RULE_ROWS), rows(conn, AUDIT_ROWS)) == before
    # A disabled rule may have any share: it moves nothing.
    assert loans(*ANA, "routing", "set", "Late fees (go)", *P, "--traffic", "50").exit_code == 0
    # Lowering one rule first makes room for another.
    assert loans(*ANA, "routing", "set", "Late fees (modern)", *P, "--traffic", "80").exit_code == 0
    assert loans(*ANA, "routing", "set", "Late fees (legacy)", *P, "--traffic", "20").exit_code == 0


def test_a_target_named_legacy_is_a_target(loans: Any) -> None:
    add(loans, "Back to legacy", "/api/old/**", "legacy", "--traffic", "100", "--enable")
    add(loans, "Legacy Half", "/api/half/**", "Legacy", "--traffic", "50", "--enable")
    resolved = json.loads(
        loans(*ANA, "routing", "resolve", "/api/old/1", *P, "--format", "json").stdout
    )
    assert (resolved["served_by"], resolved["to_target"], resolved["reason"]) == (
        "legacy",
        True,
        "traffic 100%",
    )
    # The exports keep it apart from the legacy default, whatever the case of its name.
    legacy, capitalized = routing.proxy_name("legacy"), routing.proxy_name("Legacy")
    assert len({"legacy", legacy, capitalized}) == 3
    nginx = loans(*ANA, "routing", "export", *P, "--format", "nginx").stdout
    assert f"    back-to-legacy {legacy};" in nginx and "    default legacy;" in nginx
    assert f"upstream {legacy} {{ server {legacy}.internal:8080; }}  # target 'legacy'" in nginx
    envoy = yaml.safe_load(loans(*ANA, "routing", "export", *P, "--format", "envoy").stdout)
    routes = {route["name"]: route for route in envoy["virtual_hosts"][0]["routes"]}
    assert routes["back-to-legacy"]["route"] == {"cluster": legacy}
    assert routes["legacy-half"]["route"]["weighted_clusters"]["clusters"] == [
        {"name": capitalized, "weight": 50},
        {"name": "legacy", "weight": 50},
    ]
    assert routes["legacy/default"]["route"] == {"cluster": "legacy"}


def test_resolve_explains_one_decision(several: Any) -> None:
    resolved = several(
        *ANA, "routing", "resolve", "/api/accounts/42?x=1", *P, "--key", "user-174", "--format",
        "json",
    )  # fmt: skip
    assert resolved.exit_code == 0, resolved.stderr
    decision = json.loads(resolved.stdout)
    bucket = routing.bucket("accounts-read", "user-174")
    inside = bucket <= 10
    assert decision == {
        "path": "/api/accounts/42",
        "key": "user-174",
        "rule": "accounts-read",
        "pattern": "/api/accounts/**",
        "match": "wildcard",
        "target": "accounts-java",
        "traffic": 10,
        "shadow": False,
        "group": "accounts-read",
        "bucket": bucket,
        "served_by": "accounts-java" if inside else "legacy",
        "mirror_to": None,
        "to_target": inside,
        "sticky": True,
        "reason": f"bucket {bucket} in 1..10" if inside else f"bucket {bucket} > 10%",
        "candidates": [],
    }
    exact = json.loads(
        several(*ANA, "routing", "resolve", "/api/accounts/summary", *P, "--format", "json").stdout
    )
    assert (exact["rule"], exact["match"], exact["served_by"], exact["candidates"]) == (
        "accounts-summary",
        "exact",
        "accounts-java",
        ["accounts-read"],
    )
    # The disabled exact rule is not a candidate; no rule at all is legacy.
    off = several(*ANA, "routing", "resolve", "/api/off", *P, "-q")
    assert off.stdout == "legacy\n"
    nothing = json.loads(
        several(*ANA, "routing", "resolve", "/health", *P, "--format", "json").stdout
    )
    assert (nothing["rule"], nothing["served_by"], nothing["reason"]) == (None, "legacy", "no rule")


def test_resolve_many_keys_from_stdin(several: Any) -> None:
    keys = [f"user-{n}" for n in range(400)]
    stdin = "\n".join(keys) + "\n\n"
    per_key = several(
        *ANA, "routing", "resolve", "/api/orders/7", *P, "--keys-from", "-", input=stdin
    )
    assert per_key.exit_code == 0, per_key.stderr
    lines = [line.split("\t") for line in per_key.stdout.splitlines()]
    assert len(lines) == 400
    for (path, key, rule, served_by, mirror_to, bucket, traffic, sticky, _), expected in zip(
        lines, keys, strict=True
    ):
        inside = int(bucket) <= 25
        assert (path, key, rule, served_by, traffic, sticky) == (
            "/api/orders/7",
            expected,
            "orders-shadow",
            "legacy",
            "25",
            "true",
        )
        assert mirror_to == ("orders-java" if inside else "")
    mirrored = sum(line[4] == "orders-java" for line in lines)

    summary = several(
        *ANA, "routing", "resolve", "/api/orders/7", *P, "--keys-from", "-", "--summary",
        "--format", "json", input=stdin,
    )  # fmt: skip
    assert json.loads(summary.stdout) == [
        {
            "rule": "orders-shadow",
            "target": "orders-java",
            "traffic": 25,
            "shadow": True,
            "requests": 400,
            "served_by_target": 0,
            "served_by_legacy": 400,
            "mirrored": mirrored,
            "not_sticky": 0,
        }
    ]
    assert 60 <= mirrored <= 140


def test_resolve_replays_path_and_key_lines_from_a_file(several: Any, tmp_path: Path) -> None:
    log = tmp_path / "requests.tsv"
    log.write_text("/api/accounts/summary\tu1\n/health\tu2\n/api/accounts/1\n")
    summary = several(
        *ANA, "routing", "resolve", *P, "--keys-from", str(log), "--summary", "--format", "json"
    )
    assert summary.exit_code == 0, summary.stderr
    by_rule = {row["rule"]: row for row in json.loads(summary.stdout)}
    assert by_rule["accounts-summary"]["served_by_target"] == 1
    assert by_rule[None]["served_by_legacy"] == 1
    # A request without a key at 10%: legacy, and not sticky.
    assert (
        by_rule["accounts-read"]["served_by_legacy"],
        by_rule["accounts-read"]["not_sticky"],
    ) == (
        1,
        1,
    )


@pytest.mark.parametrize(
    ("arguments", "stdin", "message"),
    [
        (("/x", "--key", "k", "--keys-from", "-"), "", "--key and --keys-from exclude each other"),
        ((), None, "give the request PATH (or --keys-from with PATH<TAB>KEY lines)"),
        (("/x", "--summary"), None, "--summary counts the decisions of --keys-from"),
        (("api/x",), None, "path 'api/x': a request path starts with '/' (e.g. /api/accounts/42)"),
        (("/x", "--keys-from", "-"), "\n\n", "stdin: no keys"),
        (
            ("--keys-from", "-"),
            "/ok\tk\nbad\tk\n",
            "stdin line 2: path 'bad': a request path starts with '/' (e.g. /api/accounts/42)",
        ),
        (("/x", "--keys-from", "/nonexistent/keys"), None, "--keys-from /nonexistent/keys:"),
    ],
)
def test_resolve_refuses_bad_usage(
    mp: Any, arguments: tuple[str, ...], stdin: str | None, message: str
) -> None:
    # Refused before the database is asked anything: an empty one will do.
    refused = mp("routing", "resolve", *P, *arguments, input=stdin)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: {message}")
    assert refused.stderr.count("\n") == 1


def test_export_yaml_for_envoy_and_istio(several: Any) -> None:
    envoy = several(*ANA, "routing", "export", *P, "--format", "envoy")
    assert envoy.exit_code == 0, envoy.stderr
    assert envoy.stdout.startswith("# Generated by `migrationpilot routing export --format envoy`")
    assert "RANDOM PER REQUEST" in envoy.stdout
    routes = yaml.safe_load(envoy.stdout)["virtual_hosts"][0]["routes"]
    assert [route["name"] for route in routes] == [
        "accounts-summary",
        "accounts-read",
        "orders-shadow",
        "ledger",
        "legacy/default",
    ]
    assert routes[2]["route"]["request_mirror_policies"][0]["cluster"] == "orders-java"

    istio = several(
        *ANA, "routing", "export", *P, "--format", "istio", "--sticky-header", "x-mp-bucket"
    )
    service = yaml.safe_load(istio.stdout)
    assert [route["name"] for route in service["spec"]["http"]] == [
        "accounts-summary",
        "accounts-read/in",
        "accounts-read",
        "orders-shadow/in",
        "orders-shadow",
        "ledger",
        "legacy/default",
    ]
    # The same export twice is the same text.
    assert several(*ANA, "routing", "export", *P, "--format", "envoy").stdout == envoy.stdout


@pytest.mark.parametrize("sticky", [(), ("--sticky-header", "x-mp-bucket")])
def test_exports_of_a_split(loans: Any, sticky: tuple[str, ...]) -> None:
    split(loans)
    legacy_target = routing.proxy_name("legacy")
    regex = "^/api/late-fees(?:/.*)?$"
    envoy = loans(*ANA, "routing", "export", *P, "--format", "envoy", *sticky)
    assert envoy.exit_code == 0, envoy.stderr
    assert "# 1. /api/late-fees/** (group late-fees-legacy)\n" in envoy.stdout
    routes = yaml.safe_load(envoy.stdout)["virtual_hosts"][0]["routes"]
    istio = loans(*ANA, "routing", "export", *P, "--format", "istio", *sticky)
    http = yaml.safe_load(istio.stdout)["spec"]["http"]
    nginx = loans(*ANA, "routing", "export", *P, "--format", "nginx", *sticky).stdout
    if not sticky:
        assert routes[0] == {
            "name": "late-fees-legacy",
            "match": {"safe_regex": {"regex": regex}},
            "route": {
                "weighted_clusters": {
                    "clusters": [
                        {"name": legacy_target, "weight": 10},
                        {"name": "modern", "weight": 90},
                    ]
                }
            },
        }
        assert http[0]["route"] == [
            {"destination": {"host": legacy_target}, "weight": 10},
            {"destination": {"host": "modern"}, "weight": 90},
        ]
        assert (
            'split_clients "${request_id}" $mp_split_1 {\n'
            "    10% late-fees-legacy;\n    90% late-fees-modern;\n}"
        ) in nginx
        return
    assert [(route["name"], route["match"].get("headers"), route["route"]) for route in routes] == [
        (
            "late-fees-legacy/in",
            [{"name": "x-mp-bucket", "range_match": {"start": 1, "end": 11}}],
            {"cluster": legacy_target},
        ),
        (
            "late-fees-modern/in",
            [{"name": "x-mp-bucket", "range_match": {"start": 11, "end": 101}}],
            {"cluster": "modern"},
        ),
        ("late-fees-legacy", None, {"cluster": "legacy"}),  # no header: the legacy default
        ("legacy/default", None, {"cluster": "legacy"}),
    ]
    assert [route["name"] for route in http] == [
        "late-fees-legacy/in",
        "late-fees-modern/in",
        "late-fees-legacy",
        "legacy/default",
    ]
    assert http[1]["match"][0]["headers"] == {
        "x-mp-bucket": {"regex": routing.bucket_regex(11, 100)}
    }
    assert f'    "~{routing.bucket_regex(1, 10)}" late-fees-legacy;' in nginx


def test_export_refuses_bad_options(mp: Any) -> None:
    unknown = mp("routing", "export", *P, "--format", "traefik")
    assert unknown.exit_code == 2
    header = mp("routing", "export", *P, "--format", "nginx", "--sticky-header", "X Y")
    assert (header.exit_code, header.stderr) == (
        2,
        "error: --sticky-header 'X Y': use a lower-case header name such as x-mp-bucket\n",
    )


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
@pytest.mark.parametrize("sticky", [(), ("--sticky-header", "x-mp-bucket")])
def test_nginx_accepts_the_export(several: Any, tmp_path: Path, sticky: tuple[str, ...]) -> None:
    # A rule named like a map parameter must be escaped in the map.
    add(several, "default", "/api/default/**", "default-svc", "--traffic", "30", "--enable")
    split(several)  # with a target named legacy
    add(several, "Accounts (Java)", "/api/java/**", "Accounts Java", "--traffic", "40", "--enable")
    exported = several(*ANA, "routing", "export", *P, "--format", "nginx", *sticky)
    assert exported.exit_code == 0, exported.stderr
    snippet = tmp_path / "routing.conf"
    snippet.write_text(exported.stdout)
    targets = ["accounts-java", "orders-java", "default-svc", "legacy", "modern", "Accounts Java"]
    upstreams = "\n".join(
        f"    upstream {name} {{ server 127.0.0.1:{9000 + n}; }}"
        for n, name in enumerate(["legacy", *map(routing.proxy_name, targets)])
    )
    (tmp_path / "logs").mkdir()
    config = tmp_path / "nginx.conf"
    config.write_text(
        f"error_log {tmp_path}/error.log;\npid {tmp_path}/nginx.pid;\nevents {{}}\n"
        f"http {{\n    access_log off;\n{upstreams}\n    include {snippet};\n}}\n"
    )
    tested = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(config)], capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stderr
    assert "test is successful" in tested.stderr
