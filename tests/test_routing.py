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

import psycopg
import pytest
import yaml

from migrationpilot_cli import routing
from tests.conftest import CONSOLE_SCRIPT, rows

ANA = ("--as", "ana@acme.test")
CARL = ("--as", "carl@acme.test")
P = ("--project", "Loans core")
RULE_ROWS = (
    "SELECT name, path_pattern, target_service, traffic_percentage, shadow_mode, enabled"
    " FROM routing_rules ORDER BY name"
)
AUDIT_ROWS = (
    "SELECT action, actor_email, metadata FROM audit_logs WHERE action LIKE 'routing.%%'"
    " ORDER BY id"
)


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
        k: record[k] for k in ("name", "pattern", "target", "traffic", "shadow", "enabled")
    } == {
        "name": "accounts-read",
        "pattern": "/api/accounts/**",
        "target": "accounts-java",
        "traffic": 10,
        "shadow": False,
        "enabled": False,
    }
    assert record["project"] == "Loans core"
    assert rows(conn, RULE_ROWS) == [
        ("accounts-read", "/api/accounts/**", "accounts-java", 10, False, False)
    ]
    new = {
        "name": "accounts-read",
        "pattern": "/api/accounts/**",
        "target": "accounts-java",
        "traffic": 10,
        "shadow": False,
        "enabled": False,
    }
    (audit,) = rows(conn, AUDIT_ROWS)
    assert audit[:2] == ("routing.add", "ana@acme.test")
    assert audit[2] == {"name": "accounts-read", "project_id": record["project_id"], "new": new}
    assert rows(
        conn,
        "SELECT resource_type, resource_id FROM audit_logs WHERE action = 'routing.add'",
    ) == [("routing_rule", str(record["id"]))]


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
            ("--name", "bad", "--pattern", "/x", "--target", "Legacy"),
            "error: --target 'Legacy': 'legacy' is reserved for the legacy system\n",
        ),
        (
            ("--name", "bad", "--pattern", "/x", "--target", "Accounts Java"),
            "error: --target 'Accounts Java': use a lower-case DNS name such as accounts-java"
            " (letters, digits, '-' and '.')\n",
        ),
        (
            ("--name", "Bad Name", "--pattern", "/x", "--target", "x"),
            "error: --name 'Bad Name': use 1-63 lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter or digit (e.g. accounts-read)\n",
        ),
        (
            ("--name", "accounts-read", "--pattern", "/other", "--target", "x"),
            "error: --name 'accounts-read': the project already has a rule with that name\n",
        ),
        (
            ("--name", "other", "--pattern", "/api/accounts/**", "--target", "x"),
            "error: --pattern '/api/accounts/**': another rule of the project already routes it\n",
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
        ("accounts-read", "/api/acc/**", "accounts-java", 25, False, False)
    ]
    audits = [(action, meta.get("old"), meta["new"]) for action, _, meta in rows(conn, AUDIT_ROWS)]
    assert audits[1:] == [
        # The unchanged target is not a change.
        ("routing.set", {"traffic": 10, "shadow": False}, {"traffic": 25, "shadow": True}),
        ("routing.set", {"pattern": "/api/accounts/**"}, {"pattern": "/api/acc/**"}),
        ("routing.set", {"shadow": True}, {"shadow": False}),
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
            "error: nothing to change: give --traffic, --shadow/--no-shadow, --target or"
            " --pattern\n",
        ),
        (("--traffic", "150"), 2, "error: --traffic 150: expected a percentage from 0 to 100\n"),
        (
            ("--pattern", "/api//x"),
            2,
            "error: --pattern '/api//x': empty segment: remove the doubled or trailing '/'\n",
        ),
        (
            ("--pattern", "/orders/*"),
            2,
            "error: --pattern '/orders/*': another rule of the project already routes it\n",
        ),
        (
            ("--target", "legacy"),
            2,
            "error: --target 'legacy': 'legacy' is reserved for the legacy system\n",
        ),
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
    project_id = audits[0][1]["project_id"]
    common = {"name": "accounts-read", "project_id": project_id}
    assert [action for action, _ in audits] == [
        "routing.add",
        "routing.enable",
        "routing.disable",
        "routing.remove",
    ]
    assert audits[1][1] == {**common, "old": {"enabled": False}, "new": {"enabled": True}}
    assert audits[2][1] == {**common, "old": {"enabled": True}, "new": {"enabled": False}}
    assert audits[3][1] == {
        **common,
        "old": {
            "name": "accounts-read",
            "pattern": "/api/accounts/**",
            "target": "accounts-java",
            "traffic": 10,
            "shadow": False,
            "enabled": False,
        },
    }
    assert rows(
        conn, "SELECT DISTINCT resource_id FROM audit_logs WHERE action LIKE 'routing.%%'"
    ) == [(removed.stdout.strip(),)]


def test_a_concurrent_duplicate_is_exit_2_too(
    loans: Any, conn: psycopg.Connection[Any], database_url: str
) -> None:
    """Another session inserts the same name after our duplicate check: the unique index
    makes our insert wait, then refuse; the user sees the same exit 2."""
    project, organization = rows(conn, "SELECT id, organization_id FROM projects")[0]
    with psycopg.connect(database_url) as other:
        other.execute(
            "INSERT INTO routing_rules (organization_id, project_id, name, path_pattern,"
            " target_service) VALUES (%s, %s, 'accounts-read', '/elsewhere', 'x')",
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
    assert rows(conn, "SELECT name, path_pattern FROM routing_rules") == [
        ("accounts-read", "/elsewhere")
    ]
    assert rows(conn, AUDIT_ROWS) == []


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
    assert lines[1][1:8] == [
        "Loans core",
        "accounts-read",
        "/api/accounts/**",
        "accounts-java",
        "10",
        "false",
        "true",
    ]
    ids = several(*ANA, "routing", "list", "-q").stdout.split()
    assert len(ids) == 5 and all(value.isdigit() for value in ids)
    # Operators see every organization's rules, or one organization's with --org.
    assert several("routing", "list", "--org", "acme-pay", "-q").stdout.split() == ids
    assert several("routing", "list", "--org", "acme-cards", "-q").stdout == ""
    csv_out = several(*ANA, "routing", "list", "--format", "csv").stdout.splitlines()
    assert (
        csv_out[0] == "id,project,name,pattern,target,traffic,shadow,enabled,created_at,updated_at"
    )


def test_show_includes_the_regex_the_proxies_use(several: Any) -> None:
    shown = several(*ANA, "routing", "show", "accounts-read", *P, "--format", "json")
    record = json.loads(shown.stdout)
    assert (record["pattern"], record["regex"]) == ("/api/accounts/**", "^/api/accounts(?:/.*)?$")
    tsv = several(*ANA, "routing", "show", "accounts-read", *P).stdout
    assert "traffic\t10\n" in tsv


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
        "bucket": bucket,
        "served_by": "accounts-java" if inside else "legacy",
        "mirror_to": None,
        "sticky": True,
        "reason": f"bucket {bucket} {'<=' if inside else '>'} 10%",
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
        "legacy",
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
        "legacy",
    ]
    # The same export twice is the same text.
    assert several(*ANA, "routing", "export", *P, "--format", "envoy").stdout == envoy.stdout


def test_export_refuses_bad_options(mp: Any) -> None:
    unknown = mp("routing", "export", *P, "--format", "haproxy")
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
    exported = several(*ANA, "routing", "export", *P, "--format", "nginx", *sticky)
    assert exported.exit_code == 0, exported.stderr
    snippet = tmp_path / "routing.conf"
    snippet.write_text(exported.stdout)
    upstreams = "\n".join(
        f"    upstream {name} {{ server 127.0.0.1:{9000 + n}; }}"
        for n, name in enumerate(
            ["legacy", "accounts-java", "orders-java", "ledger-py", "default-svc"]
        )
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
