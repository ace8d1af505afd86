"""The routing logic on its own (no database): input, patterns, precedence, splits,
Unleash-compatible bucketing, the explained decision, and the exports' structure."""

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
    slug: str | None = None,
) -> Rule:
    """``age`` in days before T0: a larger age is an older rule. The slug is the name unless
    given, as the database derives it from a name that is already an identifier."""
    created_at = T0 - dt.timedelta(days=age)
    return Rule(name, slug or name, pattern, target, traffic, shadow, enabled, created_at)


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
    (route,) = routing.in_effect([rule("r", pattern)])
    assert route.matches(path) is matches


def test_request_paths_drop_the_query_and_must_be_absolute() -> None:
    assert routing.request_path("/api/accounts/42?expand=1#top") == "/api/accounts/42"
    with pytest.raises(BadInput, match="starts with '/'"):
        routing.request_path("api/accounts")


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (routing.rule_name, "accounts-read", True),
        (routing.rule_name, "Late fees API", True),
        (routing.rule_name, "Zinsberechnung (Übergang): Phase 2 ✓", True),
        (routing.rule_name, " padded ", True),  # kept as given, as the database would
        (routing.rule_name, "a" * 255, True),
        (routing.rule_name, "a" * 256, False),
        (routing.rule_name, "", False),
        (routing.rule_name, "   ", False),
        (routing.rule_name, "a\tb", False),
        (routing.rule_name, "a\nb", False),
        (routing.rule_name, "a\u2028b", False),
        (routing.rule_name, "\x1b[31mred", False),
        (routing.rule_name, "bad\udcffbytes", False),  # an argument that was not UTF-8
        (routing.target_service, "accounts-java", True),
        (routing.target_service, "legacy", True),
        (routing.target_service, "modern", True),
        (routing.target_service, "Accounts Java", True),
        (routing.target_service, "x" * 50, True),
        (routing.target_service, "x" * 51, False),
        (routing.target_service, " ", False),
        (routing.target_service, "a\rb", False),
        (routing.header_name, "x-mp-bucket", True),
        (routing.header_name, "X-Bucket", False),
    ],
)
def test_names_targets_and_headers(check: Any, value: str, ok: bool) -> None:
    if ok:
        assert check(value) == value
    else:
        with pytest.raises(BadInput) as refused:
            check(value)
        assert "\n" not in refused.value.message  # one line, whatever the input


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (routing.rule_name, " ", "--name ' ': must not be blank"),
        (routing.rule_name, "x" * 300, "--name: 300 characters; at most 255"),
        (routing.rule_name, "a\tb", "--name 'a\\tb': no control characters (tabs, line breaks)"),
        (routing.target_service, "", "--target '': must not be blank"),
        (routing.target_service, "y" * 51, "--target: 51 characters; at most 50"),
    ],
)
def test_bad_names_and_targets_say_why(check: Any, value: str, message: str) -> None:
    with pytest.raises(BadInput) as refused:
        check(value)
    assert refused.value.message == message


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
    (  # a complete tie: the slug of the route's oldest rule
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
    (  # a split is one route: its rules rank together, with its oldest rule's age
        [
            rule("new", "/api/*/x", age=2),
            rule("split-b", "/api/**", age=1, traffic=50),
            rule("split-a", "/api/**", age=3, traffic=50),
        ],
        "/api/a/x",
        "split-a" if routing.bucket("split-a", "user-1") <= 50 else "split-b",
        ["new"],
    ),
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
        "group": None,
        "bucket": None,
        "served_by": "legacy",
        "mirror_to": None,
        "to_target": False,
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
    # Slugs are lower-case; Rule itself takes any group id, as Unleash does.
    decision = routing.resolve([rule("Any name", "/x", slug=group_id, traffic=traffic)], "/x", key)
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
    rules = [
        rule("Accounts read", "/api/accounts/**", traffic=10, slug="accounts-read"),
        rule("all", "/**"),
    ]
    inside = routing.resolve(rules, "/api/accounts/42", "174")
    # The bucket comes from the slug, never from the name.
    bucket = routing.bucket("accounts-read", "174")
    assert inside | {"reason": None} == {
        "path": "/api/accounts/42",
        "key": "174",
        "rule": "Accounts read",
        "pattern": "/api/accounts/**",
        "match": "wildcard",
        "target": "new-svc",
        "traffic": 10,
        "shadow": False,
        "group": "accounts-read",
        "bucket": bucket,
        "served_by": "new-svc" if bucket <= 10 else "legacy",
        "mirror_to": None,
        "to_target": bucket <= 10,
        "sticky": True,
        "reason": None,
        "candidates": ["all"],
    }
    assert inside["reason"] == (
        f"bucket {bucket} in 1..10" if bucket <= 10 else f"bucket {bucket} > 10%"
    )


def test_renaming_keeps_every_bucket() -> None:
    """The name is for people; the slug, which a rename keeps, buckets the keys."""
    before = [rule("accounts-read", "/api/**", traffic=30)]
    after = [rule("Accounts (read only)", "/api/**", traffic=30, slug="accounts-read")]
    for key in (f"user-{n}" for n in range(500)):
        old, new = (routing.resolve(rules, "/api/x", key) for rules in (before, after))
        assert old | {"rule": None} == new | {"rule": None}


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


# --- splits ----------------------------------------------------------------------------------

LATE_FEES = [  # the example: 10% stay on a target named legacy, 90% go to modern
    rule("Late fees (legacy)", "/api/late-fees/**", traffic=10, target="legacy", age=2,
         slug="late-fees-legacy"),
    rule("Late fees (modern)", "/api/late-fees/**", traffic=90, target="modern", age=1,
         slug="late-fees-modern"),
]  # fmt: skip


def test_a_split_is_sticky_per_key_and_shares_as_weighted() -> None:
    generator = random.Random(17)
    keys = [f"user-{generator.getrandbits(64):x}" for _ in range(10_000)]
    decisions = [routing.resolve(LATE_FEES, "/api/late-fees/7", key) for key in keys]
    for key, decision in zip(keys[:500], decisions, strict=False):
        # One bucket per request, from the oldest rule's slug; ranges 1..10 and 11..100.
        bucket = routing.bucket("late-fees-legacy", key)
        assert (decision["group"], decision["bucket"]) == ("late-fees-legacy", bucket)
        assert decision["rule"] == ("Late fees (legacy)" if bucket <= 10 else "Late fees (modern)")
        assert decision["reason"] == (
            f"bucket {bucket} in 1..10" if bucket <= 10 else f"bucket {bucket} in 11..100"
        )
        assert (decision["to_target"], decision["sticky"]) == (True, True)
        # Deterministic: the same key, the rules in any order, the same decision.
        assert routing.resolve(list(reversed(LATE_FEES)), "/api/late-fees/7", key) == decision
    served = [decision["served_by"] for decision in decisions]
    assert set(served) == {"legacy", "modern"}
    assert abs(100 * served.count("legacy") / len(keys) - 10) <= 2
    assert abs(100 * served.count("modern") / len(keys) - 90) <= 2


def test_the_rest_of_a_split_stays_on_the_legacy_default() -> None:
    """A target named legacy is a target: the summary tells it from the default."""
    rules = [
        rule("a", "/x", traffic=10, target="legacy", age=2),
        rule("b", "/x", traffic=20, target="modern", age=1),
    ]
    decisions = [routing.resolve(rules, "/x", f"k{n}") for n in range(3000)]
    for decision in decisions:
        bucket = decision["bucket"]
        expected = "b" if 10 < bucket <= 30 else "a"  # the rest: the oldest rule
        assert decision["rule"] == expected
        assert decision["to_target"] is (bucket <= 30)
        assert decision["served_by"] == ("modern" if 10 < bucket <= 30 else "legacy")
        if bucket > 30:
            assert decision["reason"] == f"bucket {bucket} > 30%"
    by_rule = {row["rule"]: row for row in routing.summarize(decisions)}
    taken_by_a = sum(d["rule"] == "a" and d["to_target"] for d in decisions)
    assert by_rule["a"]["served_by_target"] == taken_by_a > 0
    assert by_rule["a"]["served_by_legacy"] == by_rule["a"]["requests"] - taken_by_a > 0
    assert by_rule["b"]["served_by_legacy"] == 0
    nokey = routing.resolve(rules, "/x", None)
    assert (nokey["rule"], nokey["served_by"], nokey["to_target"], nokey["sticky"]) == (
        "a",
        "legacy",
        False,
        False,
    )
    assert nokey["reason"] == "no key: traffic 10%+20% needs a key to stick"


def test_adding_a_rule_to_a_pattern_reshuffles_nobody() -> None:
    """The group id is the oldest rule's slug and the new rule takes the buckets after the
    others: every key the old rules took stays with them."""
    old = [rule("accounts", "/api/**", traffic=30, target="java", age=5)]
    grown = [*old, rule("accounts-go", "/api/**", traffic=20, target="go", age=1)]
    for key in (f"user-{n}" for n in range(2000)):
        before = routing.resolve(old, "/api/x", key)
        after = routing.resolve(grown, "/api/x", key)
        assert after["bucket"] == before["bucket"]
        if before["to_target"]:
            assert after["served_by"] == before["served_by"] == "java"
        else:
            assert after["served_by"] in ("legacy", "go")


@pytest.mark.parametrize(
    ("traffics", "ranges"),
    [
        ([10, 90], [(1, 10), (11, 100)]),
        ([0, 25, 0, 5], [(1, 25), (26, 30)]),  # a 0% rule takes no bucket
        ([100, 0], [(1, 100)]),
        ([0, 0], []),
    ],
)
def test_a_route_gives_each_rule_the_next_buckets(
    traffics: list[int], ranges: list[tuple[int, int]]
) -> None:
    rules = [rule(f"r{n}", "/x", traffic=t, age=10 - n) for n, t in enumerate(traffics)]
    (route,) = routing.in_effect(rules)
    assert route.group == "r0"
    assert [(first, last) for _, first, last in route.ranges()] == ranges
    assert route.certain is (ranges in ([], [(1, 100)]))


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
    *LATE_FEES,
]
PATHS = [
    "/api/late-fees/2024/3",
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


def test_bucket_regex_matches_exactly_first_to_last() -> None:
    numbers = [str(n) for n in range(0, 1000)] + ["", "01", "010", "+5", " 5"]
    for first in range(1, 101):
        for last in range(first, 101):
            compiled = re.compile(routing.bucket_regex(first, last))
            matched = [text for text in numbers if compiled.fullmatch(text)]
            assert matched == [str(n) for n in range(first, last + 1)], compiled.pattern
    assert routing.bucket_regex(1, 10) == "^(?:[1-9]|10)$"
    assert routing.bucket_regex(11, 100) == "^(?:1[1-9]|100|[2-9][0-9])$"


def test_proxy_names_tell_targets_apart_and_from_the_legacy_default() -> None:
    assert routing.proxy_name("accounts-java") == "accounts-java"
    assert routing.proxy_name("accounts.payments.svc") == "accounts.payments.svc"
    derived = {
        target: routing.proxy_name(target)
        for target in ("legacy", "Legacy", "Accounts Java", "accounts_java", "Ünïcode", "!!!")
    }
    assert re.fullmatch(r"legacy-[0-9a-f]{8}", derived["legacy"])
    assert re.fullmatch(r"accounts-java-[0-9a-f]{8}", derived["Accounts Java"])
    assert re.fullmatch(r"target-[0-9a-f]{8}", derived["!!!"])
    assert len(set(derived.values()) | {"legacy", "accounts-java"}) == len(derived) + 2
    label = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")  # an Istio host, a DNS label
    assert all(label.fullmatch(name) for name in derived.values())
    assert routing.proxy_name("x" * 50) == "x" * 50
    assert label.fullmatch(routing.proxy_name("X" * 50))


@pytest.mark.parametrize("fmt", list(ExportFormat))
@pytest.mark.parametrize("sticky_header", [None, "x-mp-bucket"])
def test_exports_are_deterministic_and_say_how_they_split(
    fmt: ExportFormat, sticky_header: str | None
) -> None:
    def text(rules: list[Rule]) -> str:
        return routing.export(
            fmt, rules, project="Loans core", project_id=PROJECT_ID, sticky_header=sticky_header
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
    assert f"Project 'Loans core' (id {PROJECT_ID}): 6 routes of enabled rules." in comment
    listed = [line for line in comment.splitlines() if re.match(r"# \d\.", line)]
    assert listed == [
        "# 1. /api/accounts/summary (group accounts-summary)",
        "# 2. /api/late-fees/** (group late-fees-legacy)",
        "# 3. /api/accounts/** (group accounts-read)",
        "# 4. /api/ledger/** (group ledger)",
        "# 5. /api/orders/* (group orders-shadow)",
        "# 6. /reports/** (group reports-mirror)",
    ]
    assert "#    late-fees-modern 'Late fees (modern)': 'modern' 90%, buckets 11..100\n" in comment
    # The target named legacy has an upstream, cluster or host of its own.
    legacy_target = routing.proxy_name("legacy")
    assert f"{legacy_target} (target 'legacy')" in comment or (
        f"upstream {legacy_target} {{ server {legacy_target}.internal:8080; }}  # target 'legacy'"
        in comment
    )


PROJECT_ID = "0190a3c2-6a1e-7c3d-9f00-5a1b2c3d4e5f"
LEGACY_TARGET = routing.proxy_name("legacy")


def _first_match(candidates: list[tuple[str | None, str | None]], path: str) -> str | None:
    """The pattern of the route a proxy takes (ignoring bucket headers): the first whose
    exact path or regex matches; None: the catch-all."""
    for exact, pattern in candidates:
        if path == exact or (pattern is not None and re.fullmatch(pattern, path)):
            return exact or pattern
    return None


def _expected_match(path: str) -> str | None:
    decision = routing.resolve(RULES, path, None)
    if decision["rule"] is None:
        return None
    return (
        decision["pattern"] if decision["match"] == "exact" else routing.regex(decision["pattern"])
    )


@pytest.mark.parametrize("sticky_header", [None, "x-mp-bucket"])
def test_envoy_routes_are_sorted_split_and_mirrored(sticky_header: str | None) -> None:
    config = yaml.safe_load(
        routing.export(
            ExportFormat.envoy,
            RULES,
            project="P",
            project_id=PROJECT_ID,
            sticky_header=sticky_header,
        )
    )
    assert config["name"] == f"migrationpilot-project-{PROJECT_ID}"
    (host,) = config["virtual_hosts"]
    routes = {route["name"]: route for route in host["routes"]}
    assert host["routes"][-1] == {
        "name": "legacy/default",
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
        # The split: one route, weighted among its targets (the rest would go to legacy).
        assert routes["late-fees-legacy"]["route"] == {
            "weighted_clusters": {
                "clusters": [
                    {"name": LEGACY_TARGET, "weight": 10},
                    {"name": "modern", "weight": 90},
                ]
            }
        }
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
        # The split: one route per rule for its bucket range, then the rest to legacy.
        names = [route["name"] for route in host["routes"]]
        at = names.index("late-fees-legacy/in")
        assert names[at : at + 3] == [
            "late-fees-legacy/in",
            "late-fees-modern/in",
            "late-fees-legacy",
        ]
        assert [
            (routes[name]["match"]["headers"][0]["range_match"], routes[name]["route"])
            for name in names[at : at + 2]
        ] == [
            ({"start": 1, "end": 11}, {"cluster": LEGACY_TARGET}),
            ({"start": 11, "end": 101}, {"cluster": "modern"}),
        ]
        assert routes["late-fees-legacy"]["route"] == {"cluster": "legacy"}
    candidates = [
        (r["match"].get("path"), r["match"].get("safe_regex", {}).get("regex"))
        for r in host["routes"][:-1]
    ]
    for path in PATHS:
        assert _first_match(candidates, path) == _expected_match(path)


@pytest.mark.parametrize("sticky_header", [None, "x-mp-bucket"])
def test_istio_virtual_service_is_sorted_weighted_and_mirrored(sticky_header: str | None) -> None:
    service = yaml.safe_load(
        routing.export(
            ExportFormat.istio,
            RULES,
            project="P",
            project_id=PROJECT_ID,
            sticky_header=sticky_header,
        )
    )
    assert (service["apiVersion"], service["kind"]) == (
        "networking.istio.io/v1beta1",
        "VirtualService",
    )
    assert service["metadata"] == {"name": f"migrationpilot-project-{PROJECT_ID}"}
    assert service["spec"]["hosts"] == ["legacy"]
    http = service["spec"]["http"]
    routes = {route["name"]: route for route in http}
    assert http[-1] == {
        "name": "legacy/default",
        "route": [{"destination": {"host": "legacy"}, "weight": 100}],
    }
    assert routes["accounts-summary"]["match"] == [{"uri": {"exact": "/api/accounts/summary"}}]
    assert routes["reports-mirror"]["mirror"] == {"host": "reports-go"}
    assert routes["reports-mirror"]["mirrorPercentage"] == {"value": 100.0}
    assert "mirror" not in routes["ledger"]
    if sticky_header is None:
        assert [r["name"] for r in http] == [
            "accounts-summary",
            "late-fees-legacy",
            "accounts-read",
            "ledger",
            "orders-shadow",
            "reports-mirror",
            "legacy/default",
        ]
        assert routes["late-fees-legacy"]["route"] == [
            {"destination": {"host": LEGACY_TARGET}, "weight": 10},
            {"destination": {"host": "modern"}, "weight": 90},
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
        assert inside["headers"] == {"x-mp-bucket": {"regex": routing.bucket_regex(1, 10)}}
        assert routes["orders-shadow/in"]["mirror"] == {"host": "orders-java"}
        assert "mirror" not in routes["orders-shadow"]
        modern = routes["late-fees-modern/in"]
        assert modern["match"][0]["headers"] == {
            "x-mp-bucket": {"regex": routing.bucket_regex(11, 100)}
        }
        assert modern["route"] == [{"destination": {"host": "modern"}, "weight": 100}]
    candidates = [
        (r["match"][0]["uri"].get("exact"), r["match"][0]["uri"].get("regex")) for r in http[:-1]
    ]
    for path in PATHS:
        assert _first_match(candidates, path) == _expected_match(path)


def _nginx_block(exported: str, header: str) -> str:
    return exported[exported.index(header) :].split("}\n", 1)[0]


def test_nginx_picks_the_route_by_regex_in_precedence_order() -> None:
    exported = routing.export(ExportFormat.nginx, RULES, project="P", project_id=PROJECT_ID)
    entries = re.findall(r'"~(.+?)" (\S+);', _nginx_block(exported, "map $mp_path $mp_route {"))
    assert [group for _, group in entries] == [
        "accounts-summary",
        "late-fees-legacy",
        "accounts-read",
        "ledger",
        "orders-shadow",
        "reports-mirror",
    ]
    for path in PATHS:
        first = next((group for regex, group in entries if re.search(regex, path)), None)
        assert first == routing.resolve(RULES, path, None)["group"]
    # The route picks the rule that takes the request ("": none), the rule its upstream.
    assert _nginx_block(exported, "map $mp_route $mp_rule {").splitlines()[1:] == [
        '    default "";',
        "    accounts-summary accounts-summary;",
        "    late-fees-legacy $mp_split_2;",
        "    accounts-read $mp_split_3;",
        '    ledger "";',
        "    orders-shadow $mp_split_5;",
        "    reports-mirror reports-mirror;",
    ]
    assert (
        'split_clients "${request_id}" $mp_split_2 {\n'
        "    10% late-fees-legacy;\n"
        "    90% late-fees-modern;\n"
        "}"
    ) in exported  # 100% in all: no rest for legacy
    assert 'split_clients "${request_id}" $mp_split_3 {\n    10% accounts-read;\n    * "";\n}' in (
        exported
    )
    assert _nginx_block(exported, "map $mp_rule $mp_upstream {").splitlines()[1:] == [
        "    default legacy;",
        "    accounts-summary accounts-java;",
        f"    late-fees-legacy {LEGACY_TARGET};",
        "    late-fees-modern modern;",
        "    accounts-read accounts-java;",
    ]
    assert _nginx_block(exported, "map $mp_rule $mp_mirror {").splitlines()[1:] == [
        '    default "";',
        "    orders-shadow orders-java;",
        "    reports-mirror reports-go;",
    ]


def test_nginx_sticky_splits_map_the_bucket_header_to_the_rule() -> None:
    exported = routing.export(
        ExportFormat.nginx, RULES, project="P", project_id=PROJECT_ID, sticky_header="x-mp-bucket"
    )
    assert _nginx_block(exported, "map $http_x_mp_bucket $mp_split_2 {").splitlines()[1:] == [
        '    default "";',
        f'    "~{routing.bucket_regex(1, 10)}" late-fees-legacy;',
        f'    "~{routing.bucket_regex(11, 100)}" late-fees-modern;',
    ]
    assert "split_clients" not in exported


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_several_shadow_targets_on_one_pattern_are_each_mirrored(fmt: ExportFormat) -> None:
    rules = [
        rule("serve", "/x", traffic=50, target="java", age=3),
        rule("shadow-go", "/x", traffic=20, shadow=True, target="go", age=2),
        rule("shadow-py", "/x", traffic=10, shadow=True, target="py", age=1),
    ]
    exported = routing.export(fmt, rules, project="P", project_id=PROJECT_ID)
    if fmt is ExportFormat.nginx:
        assert "    shadow-go go;\n    shadow-py py;" in exported
        return
    if fmt is ExportFormat.haproxy:  # it cannot mirror, and its leading comment says so
        assert "# haproxy CANNOT MIRROR: a shadow rule's buckets stay on legacy" in exported
        assert "use_backend java if { var(txn.mp_rule) -m str serve }" in exported
        assert "use_backend go" not in exported and "use_backend py" not in exported
        return
    document = yaml.safe_load(exported)
    if fmt is ExportFormat.envoy:
        (route, _) = document["virtual_hosts"][0]["routes"]
        assert route["route"]["weighted_clusters"]["clusters"] == [
            {"name": "java", "weight": 50},
            {"name": "legacy", "weight": 50},
        ]
        mirrors = route["route"]["request_mirror_policies"]
        assert [
            (m["cluster"], m["runtime_fraction"]["default_value"]["numerator"]) for m in mirrors
        ] == [
            ("go", 20),
            ("py", 10),
        ]
    else:
        (route, _) = document["spec"]["http"]
        assert route["mirrors"] == [
            {"destination": {"host": "go"}, "percentage": {"value": 20.0}},
            {"destination": {"host": "py"}, "percentage": {"value": 10.0}},
        ]
