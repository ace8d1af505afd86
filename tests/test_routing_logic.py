"""The routing logic on its own (no database): patterns, precedence, Unleash-compatible
bucketing, the explained decision, and the exports' structure."""

from __future__ import annotations

import datetime as dt
import random
import re
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from migrationpilot_cli import routing
from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.routing import ExportFormat, Rule

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def rule(
    name: str,
    pattern: str,
    *,
    traffic: int = 100,
    shadow: bool = False,
    enabled: bool = True,
    age: int = 0,
    target: str = "new-svc",
) -> Rule:
    """``age`` in days before T0: a larger age is an older rule."""
    return Rule(name, pattern, target, traffic, shadow, enabled, T0 - dt.timedelta(days=age))


# --- patterns --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    ["/", "/api", "/api/accounts/**", "/api/*/details", "/**", "/a/**/b/*", "/v1.2/a%2Fb/~x:y@z"],
)
def test_valid_patterns_are_accepted(pattern: str) -> None:
    assert routing.pattern(pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("api/accounts", "starting with '/'"),
        ("", "starting with '/'"),
        ("/api//accounts", "empty segment"),
        ("/api/accounts/", "empty segment"),
        ("/api/acc*", "must be a whole segment"),
        ("/api/***", "must be a whole segment"),
        ("/api/**/**", "redundant"),
        ("/api/../admin", "'.' and '..'"),
        ("/api/./x", "'.' and '..'"),
        ("/api/{id}", "segment '{id}'"),
        ("/api/$x", "segment '$x'"),
        ('/api/"x', "segment"),
        ("/api/a b", "segment 'a b'"),
        ("/api/%zz", "segment '%zz'"),
        ("/" + "a" * 1000, "longer than 1000"),
    ],
)
def test_malformed_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(BadInput, match=re.escape(message)) as refused:
        routing.pattern(pattern)
    assert refused.value.message.startswith(f"--pattern {pattern!r}: ")


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/", "/", True),
        ("/", "/a", False),
        ("/api/accounts", "/api/accounts", True),
        ("/api/accounts", "/api/accounts/", False),
        ("/api/accounts", "/api/accountsX", False),
        ("/api/*", "/api/42", True),
        ("/api/*", "/api", False),
        ("/api/*", "/api/42/x", False),
        ("/api/**", "/api", True),  # '**' is any number of segments, none included
        ("/api/**", "/api/", True),
        ("/api/**", "/api/a/b/c", True),
        ("/api/**", "/apix", False),
        ("/api/**/details", "/api/details", True),
        ("/api/**/details", "/api/1/2/details", True),
        ("/api/**/details", "/api/1/2/details/x", False),
        ("/a.b", "/aXb", False),  # literal, not a regex dot
        ("/(x)+", "/(x)+", True),
    ],
)
def test_wildcards_match_segments(pattern: str, path: str, matches: bool) -> None:
    assert rule("r", pattern).matches(path) is matches


def test_request_paths_drop_the_query_and_must_be_absolute() -> None:
    assert routing.request_path("/api/accounts/42?expand=1#top") == "/api/accounts/42"
    with pytest.raises(BadInput, match="starts with '/'"):
        routing.request_path("api/accounts")


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (routing.rule_name, "accounts-read", True),
        (routing.rule_name, "v1.accounts_read", True),
        (routing.rule_name, "Accounts", False),
        (routing.rule_name, "-x", False),
        (routing.rule_name, "a" * 64, False),
        (routing.target_service, "accounts-java", True),
        (routing.target_service, "accounts.payments.svc", True),
        (routing.target_service, "legacy", False),
        (routing.target_service, " Legacy ", False),
        (routing.target_service, "Accounts_Java", False),
        (routing.header_name, "x-mp-bucket", True),
        (routing.header_name, "X-Bucket", False),
    ],
)
def test_names_targets_and_headers(check: Any, value: str, ok: bool) -> None:
    if ok:
        assert check(value) == value
    else:
        with pytest.raises(BadInput):
            check(value)


@pytest.mark.parametrize("traffic", [-1, 101, 1000])
def test_traffic_outside_0_to_100_is_refused(traffic: int) -> None:
    with pytest.raises(BadInput, match=f"--traffic {traffic}: expected a percentage"):
        routing.traffic(traffic)


# --- precedence ------------------------------------------------------------------------------

PRECEDENCE = [
    # (rules, path, winner, other candidates in order)
    (
        [rule("all", "/**"), rule("accounts", "/api/accounts/**"), rule("one", "/api/accounts/7")],
        "/api/accounts/7",
        "one",
        ["accounts", "all"],
    ),
    (  # exact beats any wildcard, even a longer literal prefix
        [rule("exact", "/api"), rule("deep", "/api/**")],
        "/api",
        "exact",
        ["deep"],
    ),
    (  # the longest literal prefix
        [rule("short", "/api/*/details"), rule("long", "/api/accounts/*")],
        "/api/accounts/details",
        "long",
        ["short"],
    ),
    (  # same prefix: fewer wildcards
        [rule("two", "/api/*/*"), rule("one", "/api/**")],
        "/api/a/b",
        "one",
        ["two"],
    ),
    (  # same prefix, same wildcard count: the older rule
        [rule("newer", "/api/*/x", age=1), rule("older", "/api/**", age=2)],
        "/api/a/x",
        "older",
        ["newer"],
    ),
    (  # a complete tie: the name
        [rule("b", "/api/*/x"), rule("a", "/api/**")],
        "/api/a/x",
        "a",
        ["b"],
    ),
    (  # disabled rules are not candidates
        [rule("off", "/api/accounts/**", enabled=False), rule("on", "/api/**")],
        "/api/accounts/1",
        "on",
        [],
    ),
    ([rule("accounts", "/api/accounts/**")], "/health", None, []),
]


@pytest.mark.parametrize(("rules", "path", "winner", "others"), PRECEDENCE)
def test_the_most_specific_rule_wins(
    rules: list[Rule], path: str, winner: str | None, others: list[str]
) -> None:
    decision = routing.resolve(rules, path, "user-1")
    assert (decision["rule"], decision["candidates"]) == (winner, others)
    # The order does not depend on the order the rules come in.
    assert routing.resolve(list(reversed(rules)), path, "user-1") == decision


def test_no_rule_means_legacy() -> None:
    decision = routing.resolve([rule("a", "/api/**")], "/health", "user-1")
    assert decision | {"candidates": None} == {
        "path": "/health",
        "key": "user-1",
        "rule": None,
        "pattern": None,
        "match": None,
        "target": None,
        "traffic": None,
        "shadow": None,
        "bucket": None,
        "served_by": "legacy",
        "mirror_to": None,
        "sticky": True,
        "reason": "no rule",
        "candidates": None,
    }


# --- bucketing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group_id", "key", "bucket"),
    [
        # Unleash SDK unit tests, "normalized values are the same across node, java, and go
        # clients": unleash-client-node src/test/strategy/util.test.ts and unleash-client-java
        # StrategyUtilsTest.
        ("gr1", "123", 73),
        ("groupX", "999", 25),
    ],
)
def test_buckets_match_unleash_normalized_values(group_id: str, key: str, bucket: int) -> None:
    assert routing.bucket(group_id, key) == bucket


UNLEASH_SPECIFICATION = [
    # Unleash/client-specification, specifications/10-flexible-rollout-strategy.json
    # (groupId = the toggle name, rollout = the percentage, key = userId or sessionId).
    ("Feature.flexibleRollout.10", 10, "174", True),  # bucket 10: the boundary is inclusive
    ("Feature.flexibleRollout.10", 10, "499", False),
    ("Feature.flexibleRollout.userId.55", 55, "25", True),
    ("Feature.flexibleRollout.sessionId.42", 42, "147", True),
    ("Feature.flexibleRollout.100", 100, None, True),  # no context at all, still enabled
    # specifications/03-gradual-rollout-user-id-strategy.json (groupId AB12A).
    ("AB12A", 100, "123", True),
    ("AB12A", 50, "122", True),
    ("AB12A", 50, "155", False),
    ("AB12A", 0, "122", False),
]


@pytest.mark.parametrize(("group_id", "traffic", "key", "enabled"), UNLEASH_SPECIFICATION)
def test_decisions_match_the_unleash_client_specification(
    group_id: str, traffic: int, key: str | None, enabled: bool
) -> None:
    # The CLI takes lower-case rule names only; Rule itself takes any group id, as Unleash.
    decision = routing.resolve([rule(group_id, "/x", traffic=traffic)], "/x", key)
    assert decision["served_by"] == ("new-svc" if enabled else "legacy")
    assert decision["sticky"] is True


@given(
    name=st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True),
    key=st.text(max_size=40),
    low=st.integers(0, 100),
    high=st.integers(0, 100),
)
def test_raising_the_percentage_only_adds_keys(name: str, key: str, low: int, high: int) -> None:
    low, high = sorted((low, high))
    at = {
        traffic: routing.resolve([rule(name, "/x", traffic=traffic)], "/x", key)["served_by"]
        for traffic in (low, high)
    }
    assert 1 <= routing.bucket(name, key) <= 100
    if at[low] != "legacy":
        assert at[high] != "legacy"


@pytest.mark.parametrize("traffic", [1, 10, 25, 50, 90])
def test_about_traffic_percent_of_random_keys_go_to_the_target(traffic: int) -> None:
    generator = random.Random(traffic)
    keys = [f"user-{generator.getrandbits(64):x}" for _ in range(10_000)]
    rules = [rule("accounts-read", "/api/accounts/**", traffic=traffic)]
    served = [routing.resolve(rules, "/api/accounts/1", key)["served_by"] for key in keys]
    share = 100 * served.count("new-svc") / len(keys)
    assert abs(share - traffic) <= 2


def test_the_decision_explains_itself() -> None:
    rules = [rule("accounts-read", "/api/accounts/**", traffic=10), rule("all", "/**")]
    inside = routing.resolve(rules, "/api/accounts/42", "174")
    bucket = routing.bucket("accounts-read", "174")
    assert inside | {"reason": None} == {
        "path": "/api/accounts/42",
        "key": "174",
        "rule": "accounts-read",
        "pattern": "/api/accounts/**",
        "match": "wildcard",
        "target": "new-svc",
        "traffic": 10,
        "shadow": False,
        "bucket": bucket,
        "served_by": "new-svc" if bucket <= 10 else "legacy",
        "mirror_to": None,
        "sticky": True,
        "reason": None,
        "candidates": ["all"],
    }
    assert inside["reason"] == (
        f"bucket {bucket} <= 10%" if bucket <= 10 else f"bucket {bucket} > 10%"
    )


@pytest.mark.parametrize(
    ("traffic", "served_by", "sticky", "reason"),
    [
        (0, "legacy", True, "traffic 0%"),
        (30, "legacy", False, "no key: traffic 30% needs a key to stick"),
        (99, "legacy", False, "no key: traffic 99% needs a key to stick"),
        (100, "new-svc", True, "traffic 100%"),
    ],
)
def test_without_a_key_only_0_and_100_percent_are_certain(
    traffic: int, served_by: str, sticky: bool, reason: str
) -> None:
    decision = routing.resolve([rule("r", "/x", traffic=traffic)], "/x", None)
    assert (decision["served_by"], decision["sticky"], decision["reason"], decision["bucket"]) == (
        served_by,
        sticky,
        reason,
        None,
    )


def _key_with_bucket(name: str, inside: bool, traffic: int) -> str:
    return next(
        key
        for key in (f"k{n}" for n in range(10_000))
        if (routing.bucket(name, key) <= traffic) is inside
    )


@pytest.mark.parametrize(
    ("inside", "key_given", "traffic", "mirror_to", "sticky"),
    [
        (True, True, 30, "orders-java", True),
        (False, True, 30, None, True),
        (None, False, 30, None, False),
        (None, False, 100, "orders-java", True),
        (None, True, 0, None, True),
    ],
)
def test_shadow_rules_serve_legacy_and_mirror_their_percentage(
    inside: bool | None, key_given: bool, traffic: int, mirror_to: str | None, sticky: bool
) -> None:
    shadow = rule("orders", "/orders/*", traffic=traffic, shadow=True, target="orders-java")
    key = _key_with_bucket("orders", bool(inside), traffic) if key_given else None
    decision = routing.resolve([shadow], "/orders/1", key)
    assert (decision["served_by"], decision["mirror_to"], decision["sticky"]) == (
        "legacy",
        mirror_to,
        sticky,
    )
    assert decision["reason"].startswith("shadow: ")


def test_summaries_count_per_rule() -> None:
    rules = [
        rule("accounts", "/api/accounts/**", traffic=50, target="accounts-java"),
        rule("orders", "/orders/*", traffic=100, shadow=True, target="orders-java"),
    ]
    requests = [("/api/accounts/1", f"u{n}") for n in range(200)] + [
        ("/orders/1", None),
        ("/health", "u1"),
        ("/api/accounts/1", None),
    ]
    summary = routing.summarize(routing.resolve(rules, path, key) for path, key in requests)
    by_rule = {row["rule"]: row for row in summary}
    accounts = by_rule["accounts"]
    assert accounts["requests"] == 201
    assert accounts["served_by_target"] + accounts["served_by_legacy"] == 201
    assert 70 <= accounts["served_by_target"] <= 130
    assert accounts["not_sticky"] == 1
    assert by_rule["orders"] | {"rule": None} == {
        "rule": None,
        "target": "orders-java",
        "traffic": 100,
        "shadow": True,
        "requests": 1,
        "served_by_target": 0,
        "served_by_legacy": 1,
        "mirrored": 1,
        "not_sticky": 0,
    }
    assert by_rule[None]["requests"] == 1
    assert list(summary[0]) == list(routing.SUMMARY_COLUMNS)


# --- exports ---------------------------------------------------------------------------------

RULES = [
    rule("accounts-read", "/api/accounts/**", traffic=10, target="accounts-java", age=3),
    rule("accounts-summary", "/api/accounts/summary", traffic=100, target="accounts-java"),
    rule("orders-shadow", "/api/orders/*", traffic=25, shadow=True, target="orders-java"),
    rule("ledger", "/api/ledger/**", traffic=0, target="ledger-py"),
    rule("reports-mirror", "/reports/**", traffic=100, shadow=True, target="reports-go"),
    rule("off", "/api/off", traffic=50, enabled=False, target="off-svc"),
]
PATHS = [
    "/api/accounts/summary",
    "/api/accounts/42",
    "/api/accounts",
    "/api/orders/7",
    "/api/orders/7/lines",
    "/api/ledger/x",
    "/reports/2024/q1",
    "/api/off",
    "/health",
]


def test_bucket_regex_matches_exactly_1_to_traffic() -> None:
    for traffic in range(1, 101):
        pattern = routing.bucket_regex(traffic)
        matched = [n for n in range(0, 1000) if re.fullmatch(pattern, str(n))]
        assert matched == list(range(1, traffic + 1)), pattern
        assert not re.fullmatch(pattern, f"0{traffic}") and not re.fullmatch(pattern, "")


@pytest.mark.parametrize("fmt", list(ExportFormat))
@pytest.mark.parametrize("sticky_header", [None, "x-mp-bucket"])
def test_exports_are_deterministic_and_say_how_they_split(
    fmt: ExportFormat, sticky_header: str | None
) -> None:
    def text(rules: list[Rule]) -> str:
        return routing.export(
            fmt, rules, project="Loans core", project_id=7, sticky_header=sticky_header
        )

    exported = text(RULES)
    assert exported == text(list(reversed(RULES)))
    comment = exported.split("\n\n", 1)[0]  # the leading comment ends at the first blank line
    assert all(line.startswith("#") for line in comment.splitlines())
    if sticky_header:
        assert "Sticky: the split follows the request header x-mp-bucket" in comment
    else:
        assert "RANDOM PER REQUEST" in comment and "--sticky-header x-mp-bucket" in comment
    assert "off-svc" not in exported  # the disabled rule is left out
    listed = [line.split(":")[0] for line in comment.splitlines() if re.match(r"# \d\.", line)]
    assert listed == [
        "# 1. accounts-summary",
        "# 2. accounts-read",
        "# 3. ledger",
        "# 4. orders-shadow",
        "# 5. reports-mirror",
    ]


def _first_match(candidates: list[tuple[str, str | None, str | None]], path: str) -> str:
    """The route a proxy takes: the first whose exact path or regex matches."""
    for name, exact, pattern in candidates:
        if path == exact or (pattern is not None and re.fullmatch(pattern, path)):
            return name.removesuffix("/in")
    return "legacy"


@pytest.mark.parametrize("sticky_header", [None, "x-mp-bucket"])
def test_envoy_routes_are_sorted_split_and_mirrored(sticky_header: str | None) -> None:
    config = yaml.safe_load(
        routing.export(
            ExportFormat.envoy, RULES, project="P", project_id=7, sticky_header=sticky_header
        )
    )
    (host,) = config["virtual_hosts"]
    routes = {route["name"]: route for route in host["routes"]}
    assert host["routes"][-1] == {
        "name": "legacy",
        "match": {"prefix": "/"},
        "route": {"cluster": "legacy"},
    }
    assert routes["accounts-summary"]["match"] == {"path": "/api/accounts/summary"}
    assert routes["accounts-summary"]["route"] == {"cluster": "accounts-java"}
    assert routes["ledger"]["route"] == {"cluster": "legacy"}
    mirror_all = {
        "cluster": "reports-go",
        "runtime_fraction": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
    }
    assert routes["reports-mirror"]["route"] == {
        "cluster": "legacy",
        "request_mirror_policies": [mirror_all],
    }
    if sticky_header is None:
        assert routes["accounts-read"]["route"] == {
            "weighted_clusters": {
                "clusters": [
                    {"name": "accounts-java", "weight": 10},
                    {"name": "legacy", "weight": 90},
                ]
            }
        }
        mirror = routes["orders-shadow"]["route"]["request_mirror_policies"][0]
        assert mirror["runtime_fraction"]["default_value"]["numerator"] == 25
    else:
        inside = routes["accounts-read/in"]
        assert inside["match"]["headers"] == [
            {"name": "x-mp-bucket", "range_match": {"start": 1, "end": 11}}
        ]
        assert inside["route"] == {"cluster": "accounts-java"}
        assert routes["accounts-read"]["route"] == {"cluster": "legacy"}
        assert routes["orders-shadow/in"]["route"]["request_mirror_policies"][0]["cluster"] == (
            "orders-java"
        )
        assert routes["orders-shadow"]["route"] == {"cluster": "legacy"}
    candidates = [
        (r["name"], r["match"].get("path"), r["match"].get("safe_regex", {}).get("regex"))
        for r in host["routes"][:-1]
    ]
    for path in PATHS:
        assert _first_match(candidates, path) == (
            routing.resolve(RULES, path, None)["rule"] or "legacy"
        )


@pytest.mark.parametrize("sticky_header", [None, "x-mp-bucket"])
def test_istio_virtual_service_is_sorted_weighted_and_mirrored(sticky_header: str | None) -> None:
    service = yaml.safe_load(
        routing.export(
            ExportFormat.istio, RULES, project="P", project_id=7, sticky_header=sticky_header
        )
    )
    assert (service["apiVersion"], service["kind"]) == (
        "networking.istio.io/v1beta1",
        "VirtualService",
    )
    assert service["metadata"] == {"name": "migrationpilot-project-7"}
    assert service["spec"]["hosts"] == ["legacy"]
    http = service["spec"]["http"]
    routes = {route["name"]: route for route in http}
    assert http[-1] == {
        "name": "legacy",
        "route": [{"destination": {"host": "legacy"}, "weight": 100}],
    }
    assert routes["accounts-summary"]["match"] == [{"uri": {"exact": "/api/accounts/summary"}}]
    assert routes["reports-mirror"]["mirror"] == {"host": "reports-go"}
    assert routes["reports-mirror"]["mirrorPercentage"] == {"value": 100.0}
    assert "mirror" not in routes["ledger"]
    if sticky_header is None:
        assert [r["name"] for r in http] == [
            "accounts-summary",
            "accounts-read",
            "ledger",
            "orders-shadow",
            "reports-mirror",
            "legacy",
        ]
        assert routes["accounts-read"]["route"] == [
            {"destination": {"host": "accounts-java"}, "weight": 10},
            {"destination": {"host": "legacy"}, "weight": 90},
        ]
        assert routes["orders-shadow"]["route"] == [
            {"destination": {"host": "legacy"}, "weight": 100}
        ]
        assert routes["orders-shadow"]["mirrorPercentage"] == {"value": 25.0}
    else:
        inside = routes["accounts-read/in"]["match"][0]
        assert inside["headers"] == {"x-mp-bucket": {"regex": routing.bucket_regex(10)}}
        assert routes["orders-shadow/in"]["mirror"] == {"host": "orders-java"}
        assert "mirror" not in routes["orders-shadow"]
    candidates = [
        (r["name"], r["match"][0]["uri"].get("exact"), r["match"][0]["uri"].get("regex"))
        for r in http[:-1]
    ]
    for path in PATHS:
        assert _first_match(candidates, path) == (
            routing.resolve(RULES, path, None)["rule"] or "legacy"
        )


def test_nginx_picks_the_rule_by_regex_in_precedence_order() -> None:
    exported = routing.export(ExportFormat.nginx, RULES, project="P", project_id=7)
    block = exported[exported.index("map $mp_path $mp_rule {") :].split("}\n", 1)[0]
    entries = re.findall(r'"~(.+?)" (\S+);', block)
    assert [name for _, name in entries] == [
        "accounts-summary",
        "accounts-read",
        "ledger",
        "orders-shadow",
        "reports-mirror",
    ]
    for path in PATHS:
        first = next((name for pattern, name in entries if re.search(pattern, path)), "legacy")
        assert first == (routing.resolve(RULES, path, None)["rule"] or "legacy")
    assert 'split_clients "${request_id}" $mp_split_2 {\n    10% accounts-java;\n    * legacy;' in (
        exported
    )
    assert "    orders-shadow $mp_split_4;" in exported
    assert "    reports-mirror reports-go;" in exported
    assert "    ledger legacy;" in exported
