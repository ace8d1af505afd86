"""The routing decision as pure logic, no I/O: input validation, pattern matching, routes
(the rules of one pattern, a weighted split) and their precedence, sticky bucketing compatible
with Unleash, the explained `resolve` decision and its summary. Nothing here knows a proxy:
the exports (proxies.py and one module per proxy) read the routes this module builds.

docs/routing.md is the user-facing description of every rule implemented here.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from migrationpilot_cli.errors import BadInput

# The implicit default destination: the legacy system, which serves every request no rule
# takes. In the exports it is the upstream, cluster and host `legacy`; a target that happens
# to be called "legacy" gets a name of its own there (see proxies.proxy_name).
LEGACY = "legacy"
EXACT = "exact"
WILDCARD = "wildcard"

MAX_NAME = 255
MAX_TARGET = 50
# Control characters, line and paragraph separators (PostgreSQL's [[:cntrl:]] under glibc),
# and lone surrogates (bytes of an argument that are not UTF-8).
_REFUSED_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")
# Literal segments: RFC 3986 path characters minus `$` and `*`, so that a pattern goes into
# an nginx string, a YAML scalar and a regular expression without quoting surprises.
# A string, which the re module compiles on first use: not every command that imports this
# module checks a pattern.
_LITERAL = r"(?:[A-Za-z0-9._~!&'()+,;=:@-]|%[0-9A-Fa-f]{2})+"
_MAX_PATTERN = 1000


def rule_name(value: str) -> str:
    """A rule's name: free text for people ("Late fees API"). The exports use its slug."""
    return _free_text("--name", value, MAX_NAME)


def target_service(value: str) -> str:
    """A target: any service name, `legacy` and `modern` included."""
    return _free_text("--target", value, MAX_TARGET)


def _free_text(option: str, value: str, limit: int) -> str:
    if not value.strip():
        raise BadInput(f"{option} {value!r}: must not be blank")
    if len(value) > limit:
        raise BadInput(f"{option}: {len(value)} characters; at most {limit}")
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in value):
        raise BadInput(f"{option} {value!r}: no control characters (tabs, line breaks)")
    return value


def traffic(value: int) -> int:
    if not 0 <= value <= 100:
        raise BadInput(f"--traffic {value}: expected a percentage from 0 to 100")
    return value


def pattern(value: str) -> str:
    """A path pattern, validated: ``/`` then segments; ``*`` is one segment, ``**`` any
    number (zero included), anything else is literal."""
    _segments(value)
    return value


def _segments(value: str) -> list[str]:
    def refuse(why: str) -> BadInput:
        return BadInput(f"--pattern {value!r}: {why}")

    if not value.startswith("/"):
        raise refuse("a pattern is a path starting with '/' (e.g. /api/accounts/**)")
    if len(value) > _MAX_PATTERN:
        raise refuse(f"longer than {_MAX_PATTERN} characters")
    if value == "/":
        return []
    segments = value[1:].split("/")
    for index, segment in enumerate(segments):
        if segment == "":
            raise refuse("empty segment: remove the doubled or trailing '/'")
        if segment in (".", ".."):
            raise refuse("'.' and '..' segments never reach a proxy: clients remove them")
        if "*" in segment and segment not in ("*", "**"):
            raise refuse(f"'*' and '**' must be a whole segment, not {segment!r}")
        if segment == "**" and index > 0 and segments[index - 1] == "**":
            raise refuse("'**/**' is redundant: write '**' once")
        if segment not in ("*", "**") and not re.fullmatch(_LITERAL, segment):
            raise refuse(
                f"segment {segment!r}: use letters, digits, -._~!&'()+,;=:@ or %XX escapes"
            )
    return segments


def regex(value: str) -> str:
    """The anchored regular expression of a pattern, the same for Python, PCRE (nginx) and
    RE2 (Envoy, Istio): so `resolve` and every export agree on what matches."""
    segments = _segments(value)
    if not segments:
        return "^/$"
    parts = []
    for segment in segments:
        if segment == "**":
            parts.append("(?:/.*)?")
        elif segment == "*":
            parts.append("/[^/]+")
        else:
            parts.append("/" + re.sub(r"([.()+])", r"\\\1", segment))
    return "^" + "".join(parts) + "$"


def bucket(group: str, key: str) -> int:
    """The key's bucket, 1..100, in the route whose group id is ``group``: Unleash's
    normalizedValue(key, groupId=group), murmur3_x86_32 of ``"<group>:<key>"`` (UTF-8, seed
    0, unsigned) modulo 100, plus 1."""
    import mmh3

    # Bytes, encoded here: mmh3 encodes a str itself without checking that it can, and a str
    # holding a lone surrogate crashed the process. A key is hashed as the bytes a request
    # carries, UTF-8 or not, as the proxies hash a header: `--keys-from` reads bytes that are
    # not UTF-8 as surrogateescape, which gives them back here (the input boundary refuses
    # such a `--key` argument, exit 2).
    data = f"{group}:{key}".encode("utf-8", "surrogateescape")
    return int(mmh3.hash(data, 0, signed=False)) % 100 + 1


def bucket_regex(first: int, last: int) -> str:
    """A regular expression matching exactly the decimal numbers first..last (1 <= first <=
    last <= 100): the buckets of a precomputed bucket header that one rule takes."""
    parts = []
    whole = []  # the decades inside the range, written together as [a-b][0-9]
    for tens in range(11):
        low, high = max(first, 10 * tens, 1), min(last, 10 * tens + 9)
        if low > high:
            continue
        if 0 < tens < 10 and high - low == 9:
            whole.append(tens)
        else:
            parts.append(("" if tens == 0 else str(tens)) + _digits(low % 10, high % 10))
    if whole:
        parts.append(_digits(whole[0], whole[-1]) + "[0-9]")
    return "^(?:" + "|".join(parts) + ")$"


def _digits(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


@dataclass(frozen=True)
class Rule:
    name: str  # free text, for people
    slug: str  # the identifier: the group id and the route names of the exports
    pattern: str
    target: str
    traffic: int
    shadow: bool
    enabled: bool
    created_at: dt.datetime

    @property
    def age(self) -> tuple[dt.datetime, str]:
        """Sort key, oldest first: the order of the rules in a route."""
        return (self.created_at, self.slug)


@dataclass(frozen=True)
class Route:
    """The rules of one path pattern, oldest first: one rule, or a weighted split among
    targets. A request gets one bucket, computed with the route's group id, the slug of its
    oldest rule (so that adding a rule reshuffles nobody); the rules take the buckets in
    order, each as many as its traffic (1..p1, p1+1..p1+p2, ...); the rest stays on legacy."""

    rules: tuple[Rule, ...]

    @property
    def pattern(self) -> str:
        return self.rules[0].pattern

    @property
    def group(self) -> str:
        return self.rules[0].slug

    @property
    def match_kind(self) -> str:
        return WILDCARD if "*" in self.pattern else EXACT

    def ranges(self) -> list[tuple[Rule, int, int]]:
        """The rules that take buckets, each with its own: (rule, first, last), inclusive."""
        ranges = []
        taken = 0
        for rule in self.rules:
            first, taken = taken + 1, min(100, taken + rule.traffic)
            if taken >= first:
                ranges.append((rule, first, taken))
        return ranges

    @property
    def certain(self) -> bool:
        """Every request goes the same way: no rule takes a bucket, or one takes all 100."""
        ranges = self.ranges()
        return not ranges or ranges[0][1:] == (1, 100)

    def precedence(self) -> tuple[int, int, int, dt.datetime, str]:
        """Sort key, most specific first: exact beats wildcard; then the longest literal
        text before the first wildcard; then fewer wildcards; then the older route (its
        oldest rule); then the group id."""
        segments = _segments(self.pattern)
        wildcards = sum(segment in ("*", "**") for segment in segments)
        star = self.pattern.find("*")
        literal_prefix = len(self.pattern) if star < 0 else star
        created_at, group = self.rules[0].age
        return (0 if self.match_kind == EXACT else 1, -literal_prefix, wildcards, created_at, group)

    def matches(self, path: str) -> bool:
        return re.fullmatch(regex(self.pattern), path) is not None


def routes(rules: Iterable[Rule]) -> list[Route]:
    """The rules grouped by pattern, in the order a request tries them: the first match
    wins. Every rule given counts: :func:`in_effect` gives the enabled ones."""
    by_pattern: dict[str, list[Rule]] = {}
    for rule in sorted(rules, key=lambda rule: rule.age):
        by_pattern.setdefault(rule.pattern, []).append(rule)
    return sorted((Route(tuple(group)) for group in by_pattern.values()), key=Route.precedence)


def in_effect(rules: Iterable[Rule]) -> list[Route]:
    """The routes of the enabled rules, in precedence order."""
    return routes(rule for rule in rules if rule.enabled)


def in_precedence(rules: Iterable[Rule]) -> list[Rule]:
    """The rules route by route, each route's oldest first: where every rule ranks, a
    disabled one where it would once enabled."""
    return [rule for route in routes(rules) for rule in route.rules]


def request_path(value: str) -> str:
    """The path a request is matched on: as sent, without query string or fragment."""
    path = re.split(r"[?#]", value.strip(), maxsplit=1)[0]
    if not path.startswith("/"):
        raise BadInput(f"path {value!r}: a request path starts with '/' (e.g. /api/accounts/42)")
    return path


def resolve(rules: Sequence[Rule], path: str, key: str | None) -> dict[str, Any]:
    """Where one request goes, and why. ``path`` comes from :func:`request_path`."""
    return decide(matching(rules, path), path, key)


def matching(rules: Sequence[Rule], path: str) -> list[Route]:
    """The routes of the enabled rules that match ``path``, the winner first."""
    return [route for route in in_effect(rules) if route.matches(path)]


def decide(candidates: Sequence[Route], path: str, key: str | None) -> dict[str, Any]:
    """The decision for one key among the routes :func:`matching` found for ``path``."""
    decision: dict[str, Any] = {
        "path": path,
        "key": key,
        "rule": None,
        "pattern": None,
        "match": None,
        "target": None,
        "traffic": None,
        "shadow": None,
        "group": None,
        "bucket": None,
        "served_by": LEGACY,
        "mirror_to": None,
        "to_target": False,
        "sticky": True,
        "reason": "no rule",
        "candidates": [rule.name for route in candidates[1:] for rule in route.rules],
    }
    if not candidates:
        return decision
    route = candidates[0]
    chosen = _choice(route, None if key is None else bucket(route.group, key))
    rule = chosen.rule
    goes_to = rule.target if chosen.to_target else None
    decision.update(
        rule=rule.name,
        pattern=route.pattern,
        match=route.match_kind,
        target=rule.target,
        traffic=rule.traffic,
        shadow=rule.shadow,
        group=route.group,
        bucket=chosen.bucket,
        served_by=LEGACY if rule.shadow or goes_to is None else goes_to,
        mirror_to=goes_to if rule.shadow else None,
        to_target=chosen.to_target,
        sticky=chosen.sticky,
        reason=("shadow: " if rule.shadow else "") + chosen.reason,
    )
    return decision


@dataclass(frozen=True)
class _Choice:
    rule: Rule  # the rule whose buckets hold the request's, else the route's oldest
    bucket: int | None
    to_target: bool  # the rule takes the request: its target serves it (shadow: a copy)
    sticky: bool
    reason: str


def _choice(route: Route, key_bucket: int | None) -> _Choice:
    """Which rule takes the request: the one whose range holds the key's bucket. Without a
    key only certainty counts (no rule takes any bucket, or one takes all 100); a split is
    made per request by the proxy, so the answer is legacy and not sticky."""
    ranges = route.ranges()
    oldest = route.rules[0]
    if not ranges:
        return _Choice(oldest, key_bucket, False, True, "traffic 0%")
    if route.certain:
        return _Choice(ranges[0][0], key_bucket, True, True, "traffic 100%")
    if key_bucket is None:
        shares = "+".join(f"{last - first + 1}%" for _, first, last in ranges)
        return _Choice(oldest, None, False, False, f"no key: traffic {shares} needs a key to stick")
    for rule, first, last in ranges:
        if first <= key_bucket <= last:
            return _Choice(rule, key_bucket, True, True, f"bucket {key_bucket} in {first}..{last}")
    return _Choice(oldest, key_bucket, False, True, f"bucket {key_bucket} > {ranges[-1][2]}%")


SUMMARY_COLUMNS = (
    "rule",
    "target",
    "traffic",
    "shadow",
    "requests",
    "served_by_target",
    "served_by_legacy",
    "mirrored",
    "not_sticky",
)


def summarize(decisions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counts per deciding rule (``None``: no rule matched), in order of first appearance."""
    rows: dict[str | None, dict[str, Any]] = {}
    for decision in decisions:
        row = rows.setdefault(
            decision["rule"],
            {
                **{column: decision[column] for column in ("rule", "target", "traffic", "shadow")},
                **dict.fromkeys(SUMMARY_COLUMNS[4:], 0),
            },
        )
        served = decision["to_target"] and not decision["shadow"]
        row["requests"] += 1
        row["served_by_target" if served else "served_by_legacy"] += 1
        row["mirrored"] += decision["mirror_to"] is not None
        row["not_sticky"] += not decision["sticky"]
    return list(rows.values())
