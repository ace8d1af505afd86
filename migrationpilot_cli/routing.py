"""Strangler-fig routing as pure logic, no I/O: input validation, pattern matching, routes
(the rules of one pattern, a weighted split) and their precedence, sticky bucketing compatible
with Unleash, the explained `resolve` decision, and proxy exports.

docs/routing.md is the user-facing description of every rule implemented here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from migrationpilot_cli.errors import BadInput

# The implicit default destination: the legacy system, which serves every request no rule
# takes. In the exports it is the upstream, cluster and host `legacy`; a target that happens
# to be called "legacy" gets a name of its own there (see proxy_name).
LEGACY = "legacy"
EXACT = "exact"
WILDCARD = "wildcard"

MAX_NAME = 255
MAX_TARGET = 50
# Control characters, line and paragraph separators (PostgreSQL's [[:cntrl:]] under glibc),
# and lone surrogates (bytes of an argument that are not UTF-8).
_REFUSED_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")
# A lower-case DNS name (RFC 1123), as Kubernetes services are named: such a target is its
# own upstream, cluster and host in the exports.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# Literal segments: RFC 3986 path characters minus `$` and `*`, so that a pattern goes into
# an nginx string, a YAML scalar and a regular expression without quoting surprises.
_LITERAL = re.compile(r"(?:[A-Za-z0-9._~!&'()+,;=:@-]|%[0-9A-Fa-f]{2})+")
_HEADER = re.compile(r"[a-z0-9][a-z0-9-]*")
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
        if segment not in ("*", "**") and not _LITERAL.fullmatch(segment):
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

    return int(mmh3.hash(f"{group}:{key}", 0, signed=False)) % 100 + 1


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


# ---------------------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------------------

# The last route of the Envoy and Istio exports: never a rule's slug (no '/' in a slug).
CATCH_ALL = "legacy/default"


class ExportFormat(StrEnum):
    nginx = "nginx"
    envoy = "envoy"
    istio = "istio"


def header_name(value: str) -> str:
    if not _HEADER.fullmatch(value):
        raise BadInput(
            f"--sticky-header {value!r}: use a lower-case header name such as x-mp-bucket"
        )
    return value


def proxy_name(target: str) -> str:
    """A target's nginx upstream, Envoy cluster and Istio host: the target itself when it is
    a lower-case DNS name other than `legacy`, else its lower-case letters and digits joined
    by '-' and 8 hex digits of its SHA-256 ('Accounts Java' -> 'accounts-java-<hash>'), so
    that no two targets share one, and no target shares the legacy default's `legacy`."""
    if target != LEGACY and _DNS_NAME.fullmatch(target):
        return target
    base = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-")[:40].strip("-") or "target"
    return f"{base}-{hashlib.sha256(target.encode()).hexdigest()[:8]}"


def export(
    fmt: ExportFormat,
    rules: Sequence[Rule],
    *,
    project: str,
    project_id: UUID | str,
    sticky_header: str | None = None,
) -> str:
    """The enabled rules as a proxy configuration, deterministic: routes in precedence
    order, each route's rules oldest first."""
    ordered = in_effect(rules)
    comment = _leading_comment(fmt, ordered, project, project_id, sticky_header)
    if fmt is ExportFormat.nginx:
        body = _nginx(ordered, sticky_header)
    elif fmt is ExportFormat.envoy:
        body = _yaml(_envoy(ordered, project_id, sticky_header))
    else:
        body = _yaml(_istio(ordered, project_id, sticky_header))
    return comment + body


def _leading_comment(
    fmt: ExportFormat,
    ordered: Sequence[Route],
    project: str,
    project_id: UUID | str,
    sticky_header: str | None,
) -> str:
    targets = {rule.target for route in ordered for rule, _, _ in route.ranges()}
    # (proxy name, the target it stands for when the name does not say)
    notes = sorted(
        (proxy_name(target), "" if proxy_name(target) == target else f"target {target!r}")
        for target in targets
    )
    if fmt is ExportFormat.nginx:
        placeholders = [
            "Define these upstreams in http {} (placeholders: use your servers):",
            f"  upstream {LEGACY} {{ server legacy.internal:8080; }}  # the legacy system",
            *[
                f"  upstream {name} {{ server {name}.internal:8080; }}" + (note and f"  # {note}")
                for name, note in notes
            ],
        ]
    elif fmt is ExportFormat.envoy:
        placeholders = [
            "Define these clusters in your Envoy configuration:",
            f"  {LEGACY} (the legacy system)",
            *[f"  {name}" + (note and f" ({note})") for name, note in notes],
        ]
    else:
        placeholders = [
            f"The VirtualService takes over calls to the Kubernetes service '{LEGACY}', the",
            "legacy system (add spec.gateways for ingress traffic); the targets are services",
            "too:" + ("" if notes else " (none)"),
            *[f"  {name}" + (note and f" ({note})") for name, note in notes],
        ]
    bucketing = [
        'The bucket of a key in a route: murmur3_x86_32("<group>:<key>", seed 0) % 100 + 1,',
        "with the route's group id listed below (Unleash: normalizedValue(key, groupId=<group>)).",
    ]
    if sticky_header:
        splitting = [
            f"Sticky: the split follows the request header {sticky_header}, the bucket (1..100)",
            "that `migrationpilot routing resolve` computes for the matched route and key. The",
            "edge or the application computes it and sets the header (or copies it from a",
            "cookie). A request without the header stays on legacy unless one rule takes 100%,",
            "exactly as `resolve` decides without a key.",
            *bucketing,
        ]
    else:
        splitting = [
            "Splitting here is the proxy's own: RANDOM PER REQUEST. It is not the sticky",
            "bucketing of `migrationpilot routing resolve`: one user can hit both sides.",
            "To make it sticky, have the edge or the application compute the user's bucket in",
            "the matched route, send it as a header x-mp-bucket (or a cookie copied into it),",
            "and export with `migrationpilot routing export --sticky-header x-mp-bucket`: the",
            "split then matches that header instead.",
            *bucketing,
        ]
    lines = [
        f"Generated by `migrationpilot routing export --format {fmt.value}`",
        f"Project {project!r} (id {project_id}): {len(ordered)} routes of enabled rules.",
        "Routes are in precedence order, the first match wins: exact patterns, then the",
        "longest literal prefix, then fewer wildcards, then the older route, then its group.",
        "The rules of one pattern split its requests: each takes the next buckets, as many",
        "as its traffic, in the order listed; the rest stays on legacy. Shadow rules serve",
        "legacy and mirror their share to their target.",
        "",
        *splitting,
        "",
        *placeholders,
        "",
        *_route_lines(ordered),
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines) + "\n"


def _route_lines(ordered: Sequence[Route]) -> list[str]:
    lines = []
    for rank, route in enumerate(ordered, start=1):
        lines.append(f"{rank}. {route.pattern} (group {route.group})")
        buckets = {rule.slug: f", buckets {first}..{last}" for rule, first, last in route.ranges()}
        for rule in route.rules:
            name = "" if rule.name == rule.slug else f" {rule.name!r}"
            shadow = " (shadow)" if rule.shadow else ""
            lines.append(
                f"   {rule.slug}{name}: {rule.target!r} {rule.traffic}%"
                f"{buckets.get(rule.slug, '')}{shadow}"
            )
    return lines


def _yaml(document: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)


def _nginx(ordered: Sequence[Route], sticky_header: str | None) -> str:
    """``map`` blocks pick the route (regexes in precedence order: the first match wins),
    then the rule that takes the request (where a route splits, by a ``split_clients`` at
    random or a ``map`` on the bucket header), then that rule's upstream or mirror."""
    lines = [
        "# The request path as sent, without the query string. $request_uri rather than $uri:",
        "# the mirror subrequest below keeps it, and it is what resolve and Envoy match.",
        "map $request_uri $mp_path {",
        '    "~^(?<mp_path_only>[^?]*)" $mp_path_only;',
        "}",
        "",
        "map $mp_path $mp_route {",
        '    default "";',
        *[f'    "~{regex(route.pattern)}" {route.group};' for route in ordered],
        "}",
        "",
    ]
    taker = ["map $mp_route $mp_rule {", '    default "";']
    upstream = ["map $mp_rule $mp_upstream {", f"    default {LEGACY};"]
    mirror = ["map $mp_rule $mp_mirror {", '    default "";']
    for rank, route in enumerate(ordered, start=1):
        ranges = route.ranges()
        if route.certain:
            rule_of_route = ranges[0][0].slug if ranges else '""'
        else:
            rule_of_route = f"$mp_split_{rank}"
            lines += _nginx_split(route, rule_of_route, sticky_header)
        taker.append(f"    {_nginx_map_key(route.group)} {rule_of_route};")
        for rule, _, _ in ranges:
            (mirror if rule.shadow else upstream).append(
                f"    {_nginx_map_key(rule.slug)} {proxy_name(rule.target)};"
            )
    lines += [*taker, "}", "", *upstream, "}", "", *mirror, "}", "", *_NGINX_SERVER]
    return "\n".join(lines) + "\n"


def _nginx_map_key(slug: str) -> str:
    # A source value spelled like one of map's parameters must be escaped with '\\'.
    return "\\" + slug if slug in ("default", "hostnames", "include", "volatile") else slug


def _nginx_split(route: Route, variable: str, sticky_header: str | None) -> list[str]:
    """The rule that takes a request of a splitting route, in ``variable`` ("": none)."""
    ranges = route.ranges()
    if sticky_header:
        source = "$http_" + sticky_header.replace("-", "_")
        return [
            f"# {route.group}: the rule by the bucket in the {sticky_header} header",
            f"map {source} {variable} {{",
            '    default "";',
            *[f'    "~{bucket_regex(first, last)}" {rule.slug};' for rule, first, last in ranges],
            "}",
            "",
        ]
    rest = ['    * "";'] if ranges[-1][2] < 100 else []
    return [
        f"# {route.group}: the rule at random, per request",
        f'split_clients "${{request_id}}" {variable} {{',
        *[f"    {last - first + 1}% {rule.slug};" for rule, first, last in ranges],
        *rest,
        "}",
        "",
    ]


_NGINX_SERVER = [
    "# Adjust listen/server_name, or copy the two locations into your own server {}.",
    "server {",
    "    listen 80;",
    "    server_name _;",
    "",
    "    location / {",
    "        mirror /_migrationpilot_mirror;",
    "        mirror_request_body on;",
    "        proxy_set_header Host $host;",
    "        proxy_pass http://$mp_upstream;",
    "    }",
    "",
    "    # Shadow traffic: a copy of the request, its response ignored.",
    "    location = /_migrationpilot_mirror {",
    "        internal;",
    '        if ($mp_mirror = "") {',
    "            return 204;",
    "        }",
    "        proxy_set_header Host $host;",
    "        proxy_pass http://$mp_mirror$request_uri;",
    "    }",
    "}",
]

Shares = list[tuple[Rule, int]]  # (rule, percent of the route's requests it takes)


def _proxy_routes(
    route: Route, sticky_header: str | None
) -> list[tuple[str, tuple[int, int] | None, Shares]]:
    """A route's proxy routes, shared by Envoy and Istio: (name, the bucket range the header
    must hold or None, the rules' shares; the rest goes to legacy). One route when nothing
    needs splitting or the proxy splits at random; with a sticky header, one per rule for
    its bucket range (all of it to the rule), then the route's own for the rest (legacy)."""
    ranges = route.ranges()
    if route.certain or not sticky_header:
        return [(route.group, None, [(rule, last - first + 1) for rule, first, last in ranges])]
    return [
        *[(f"{rule.slug}/in", (first, last), [(rule, 100)]) for rule, first, last in ranges],
        (route.group, None, []),
    ]


def _destinations(shares: Shares) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(served, mirrored): (proxy name, percent) pairs, one per name; served ends with the
    legacy default's rest."""

    def merged(pairs: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        totals: dict[str, int] = {}
        for name, percent in pairs:
            totals[name] = totals.get(name, 0) + percent
        return list(totals.items())

    served = merged((proxy_name(rule.target), share) for rule, share in shares if not rule.shadow)
    rest = 100 - sum(share for _, share in served)
    mirrored = merged((proxy_name(rule.target), share) for rule, share in shares if rule.shadow)
    return served + ([(LEGACY, rest)] if rest else []), mirrored


def _envoy(
    ordered: Sequence[Route], project_id: UUID | str, sticky_header: str | None
) -> dict[str, Any]:
    routes = []
    for route in ordered:
        for name, buckets, shares in _proxy_routes(route, sticky_header):
            match: dict[str, Any] = (
                {"path": route.pattern}
                if route.match_kind == EXACT
                else {"safe_regex": {"regex": regex(route.pattern)}}
            )
            if buckets:
                first, last = buckets
                match["headers"] = [
                    {"name": sticky_header, "range_match": {"start": first, "end": last + 1}}
                ]  # [start, end)
            routes.append({"name": name, "match": match, "route": _envoy_action(shares)})
    routes.append({"name": CATCH_ALL, "match": {"prefix": "/"}, "route": {"cluster": LEGACY}})
    return {
        "name": f"migrationpilot-project-{project_id}",
        "virtual_hosts": [{"name": "migrationpilot", "domains": ["*"], "routes": routes}],
    }


def _envoy_action(shares: Shares) -> dict[str, Any]:
    """Serve (weighted) and mirror (a runtime fraction each) the rules' shares."""
    served, mirrored = _destinations(shares)
    action: dict[str, Any] = (
        {"cluster": served[0][0]}
        if len(served) == 1
        else {"weighted_clusters": {"clusters": [{"name": n, "weight": w} for n, w in served]}}
    )
    if mirrored:
        action["request_mirror_policies"] = [
            {
                "cluster": name,
                "runtime_fraction": {
                    "default_value": {"numerator": percent, "denominator": "HUNDRED"}
                },
            }
            for name, percent in mirrored
        ]
    return action


def _istio(
    ordered: Sequence[Route], project_id: UUID | str, sticky_header: str | None
) -> dict[str, Any]:
    http = []
    for route in ordered:
        for name, buckets, shares in _proxy_routes(route, sticky_header):
            uri = (
                {"exact": route.pattern}
                if route.match_kind == EXACT
                else {"regex": regex(route.pattern)}
            )
            match: dict[str, Any] = {"uri": uri}
            if buckets:
                match["headers"] = {sticky_header: {"regex": bucket_regex(*buckets)}}
            http.append({"name": name, "match": [match], **_istio_action(shares)})
    http.append({"name": CATCH_ALL, "route": [_istio_destination(LEGACY, 100)]})
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": f"migrationpilot-project-{project_id}"},
        "spec": {"hosts": [LEGACY], "http": http},
    }


def _istio_destination(host: str, weight: int) -> dict[str, Any]:
    return {"destination": {"host": host}, "weight": weight}


def _istio_action(shares: Shares) -> dict[str, Any]:
    """Serve (weights) and mirror the rules' shares: `mirror` for one target, `mirrors`
    (Istio 1.22 on) for several shadow targets on one pattern."""
    served, mirrored = _destinations(shares)
    action: dict[str, Any] = {"route": [_istio_destination(h, w) for h, w in served]}
    if len(mirrored) == 1:
        ((host, percent),) = mirrored
        action["mirror"] = {"host": host}
        action["mirrorPercentage"] = {"value": float(percent)}
    elif mirrored:
        action["mirrors"] = [
            {"destination": {"host": host}, "percentage": {"value": float(percent)}}
            for host, percent in mirrored
        ]
    return action
