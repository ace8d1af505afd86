"""Strangler-fig routing as pure logic, no I/O: pattern validation, rule precedence, sticky
bucketing compatible with Unleash, the explained `resolve` decision, and proxy exports.

docs/routing.md is the user-facing description of every rule implemented here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from migrationpilot_cli.errors import BadInput

LEGACY = "legacy"  # the reserved name of the implicit default destination
EXACT = "exact"
WILDCARD = "wildcard"

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
# A lower-case DNS subdomain (RFC 1123), as Kubernetes service names: Istio needs it.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TARGET = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
# Literal segments: RFC 3986 path characters minus `$` and `*`, so that a pattern goes into
# an nginx string, a YAML scalar and a regular expression without quoting surprises.
_LITERAL = re.compile(r"(?:[A-Za-z0-9._~!&'()+,;=:@-]|%[0-9A-Fa-f]{2})+")
_HEADER = re.compile(r"[a-z0-9][a-z0-9-]*")
_MAX_PATTERN = 1000


def rule_name(value: str) -> str:
    """A rule name: also the Unleash group id and the route name in every export."""
    if not _NAME.fullmatch(value):
        raise BadInput(
            f"--name {value!r}: use 1-63 lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter or digit (e.g. accounts-read)"
        )
    return value


def target_service(value: str) -> str:
    """A target: an upstream, cluster and Kubernetes service name, never 'legacy'."""
    if value.strip().lower() == LEGACY:
        raise BadInput(f"--target {value!r}: 'legacy' is reserved for the legacy system")
    if not _TARGET.fullmatch(value):
        raise BadInput(
            f"--target {value!r}: use a lower-case DNS name such as accounts-java"
            " (letters, digits, '-' and '.')"
        )
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


def bucket(name: str, key: str) -> int:
    """The key's bucket, 1..100, for the rule: Unleash's normalizedValue(key, groupId=name),
    murmur3_x86_32 of ``"<name>:<key>"`` (UTF-8, seed 0, unsigned) modulo 100, plus 1."""
    import mmh3

    return int(mmh3.hash(f"{name}:{key}", 0, signed=False)) % 100 + 1


def bucket_regex(traffic: int) -> str:
    """A regular expression matching exactly the decimal numbers 1..traffic (traffic >= 1):
    the buckets a precomputed bucket header sends to the target."""
    tens, ones = divmod(traffic, 10)
    parts = [f"[1-{min(traffic, 9)}]"]
    if tens >= 2:
        parts.append(f"[1-{min(tens - 1, 9)}][0-9]")
    if 1 <= tens <= 9:
        parts.append(f"{tens}[0-{ones}]")
    if traffic == 100:
        parts.append("100")
    return "^(?:" + "|".join(parts) + ")$"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: str
    target: str
    traffic: int
    shadow: bool
    enabled: bool
    created_at: dt.datetime

    @property
    def match_kind(self) -> str:
        return WILDCARD if "*" in self.pattern else EXACT

    def precedence(self) -> tuple[int, int, int, dt.datetime, str]:
        """Sort key, most specific first: exact beats wildcard; then the longest literal
        text before the first wildcard; then fewer wildcards; then the older rule; then the
        name."""
        segments = _segments(self.pattern)
        wildcards = sum(segment in ("*", "**") for segment in segments)
        star = self.pattern.find("*")
        literal_prefix = len(self.pattern) if star < 0 else star
        return (
            0 if self.match_kind == EXACT else 1,
            -literal_prefix,
            wildcards,
            self.created_at,
            self.name,
        )

    def matches(self, path: str) -> bool:
        return re.fullmatch(regex(self.pattern), path) is not None


def by_precedence(rules: Iterable[Rule]) -> list[Rule]:
    """The enabled rules in the order a request tries them: the first match wins."""
    return sorted((rule for rule in rules if rule.enabled), key=Rule.precedence)


def request_path(value: str) -> str:
    """The path a request is matched on: as sent, without query string or fragment."""
    path = re.split(r"[?#]", value.strip(), maxsplit=1)[0]
    if not path.startswith("/"):
        raise BadInput(f"path {value!r}: a request path starts with '/' (e.g. /api/accounts/42)")
    return path


def resolve(rules: Sequence[Rule], path: str, key: str | None) -> dict[str, Any]:
    """Where one request goes, and why. ``path`` comes from :func:`request_path`."""
    return decide(matching(rules, path), path, key)


def matching(rules: Sequence[Rule], path: str) -> list[Rule]:
    """The enabled rules that match ``path``, the winner first."""
    return [rule for rule in by_precedence(rules) if rule.matches(path)]


def decide(candidates: Sequence[Rule], path: str, key: str | None) -> dict[str, Any]:
    """The decision for one key among the rules :func:`matching` found for ``path``."""
    decision: dict[str, Any] = {
        "path": path,
        "key": key,
        "rule": None,
        "pattern": None,
        "match": None,
        "target": None,
        "traffic": None,
        "shadow": None,
        "bucket": None,
        "served_by": LEGACY,
        "mirror_to": None,
        "sticky": True,
        "reason": "no rule",
        "candidates": [rule.name for rule in candidates[1:]],
    }
    if not candidates:
        return decision
    rule = candidates[0]
    chosen = _choice(rule, None if key is None else bucket(rule.name, key))
    if rule.shadow:
        served_by, mirror_to = LEGACY, chosen.target_if_in
    else:
        served_by, mirror_to = chosen.target_if_in or LEGACY, None
    decision.update(
        rule=rule.name,
        pattern=rule.pattern,
        match=rule.match_kind,
        target=rule.target,
        traffic=rule.traffic,
        shadow=rule.shadow,
        bucket=chosen.bucket,
        served_by=served_by,
        mirror_to=mirror_to,
        sticky=chosen.sticky,
        reason=("shadow: " if rule.shadow else "") + chosen.reason,
    )
    return decision


@dataclass(frozen=True)
class _Choice:
    bucket: int | None
    target_if_in: str | None  # the target when the request falls inside the percentage
    sticky: bool
    reason: str


def _choice(rule: Rule, key_bucket: int | None) -> _Choice:
    """Whether a request falls inside the rule's percentage: ``traffic > 0 and bucket <=
    traffic``. Without a key only 0% and 100% are certain; anything between is decided per
    request by the proxy, so the answer is legacy and not sticky."""
    if rule.traffic == 0:
        return _Choice(key_bucket, None, True, "traffic 0%")
    if rule.traffic == 100:
        return _Choice(key_bucket, rule.target, True, "traffic 100%")
    if key_bucket is None:
        return _Choice(None, None, False, f"no key: traffic {rule.traffic}% needs a key to stick")
    if key_bucket <= rule.traffic:
        return _Choice(key_bucket, rule.target, True, f"bucket {key_bucket} <= {rule.traffic}%")
    return _Choice(key_bucket, None, True, f"bucket {key_bucket} > {rule.traffic}%")


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
        row["requests"] += 1
        row["served_by_legacy" if decision["served_by"] == LEGACY else "served_by_target"] += 1
        row["mirrored"] += decision["mirror_to"] is not None
        row["not_sticky"] += not decision["sticky"]
    return list(rows.values())


# ---------------------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------------------


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


def export(
    fmt: ExportFormat,
    rules: Sequence[Rule],
    *,
    project: str,
    project_id: int,
    sticky_header: str | None = None,
) -> str:
    """The enabled rules as a proxy configuration, deterministic: precedence, then name."""
    ordered = by_precedence(rules)
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
    ordered: Sequence[Rule],
    project: str,
    project_id: int,
    sticky_header: str | None,
) -> str:
    destinations = sorted({rule.target for rule in ordered})
    if fmt is ExportFormat.nginx:
        placeholders = ["Define these upstreams in http {} (placeholders: use your servers):"] + [
            f"  upstream {name} {{ server {name}.internal:8080; }}"
            for name in [LEGACY, *destinations]
        ]
    elif fmt is ExportFormat.envoy:
        clusters = ", ".join([LEGACY, *destinations])
        placeholders = [f"Define these clusters in your Envoy configuration: {clusters}."]
    else:
        placeholders = [
            "The VirtualService takes over calls to the Kubernetes service 'legacy' (add",
            "spec.gateways for ingress traffic); the targets are services too:",
            f"{', '.join(destinations) or '(none)'}.",
        ]
    if sticky_header:
        splitting = [
            f"Sticky: the split follows the request header {sticky_header}, the bucket (1..100)",
            "that `migrationpilot routing resolve` computes for the matched rule and key, i.e.",
            'murmur3_x86_32("<rule>:<key>", seed 0) % 100 + 1 (Unleash: normalizedValue(key,',
            "groupId=<rule>)). The edge or the application computes it and sets the header (or",
            "copies it from a cookie). A request without the header stays on legacy unless the",
            "rule is at 100%, exactly as `resolve` decides without a key.",
        ]
    else:
        splitting = [
            "Splitting here is the proxy's own: RANDOM PER REQUEST. It is not the sticky",
            "bucketing of `migrationpilot routing resolve`: one user can hit both sides.",
            "To make it sticky, have the edge or the application compute the bucket of the",
            'matched rule for the user, murmur3_x86_32("<rule>:<key>", seed 0) % 100 + 1',
            "(an Unleash SDK: normalizedValue(key, groupId=<rule>)), send it as a header",
            "x-mp-bucket (or a cookie copied into it), and export with",
            "`migrationpilot routing export --sticky-header x-mp-bucket`: the split then",
            "matches that header instead.",
        ]
    lines = [
        f"Generated by `migrationpilot routing export --format {fmt.value}`",
        f"Project {project!r} (id {project_id}): {len(ordered)} enabled routing rules.",
        "Routes are in precedence order, the first match wins: exact patterns, then the",
        "longest literal prefix, then fewer wildcards, then the older rule, then the name.",
        "Shadow rules serve legacy and mirror their percentage to the target.",
        "",
        *splitting,
        "",
        *placeholders,
        "",
        *[
            f"{rank}. {rule.name}: {rule.pattern} -> {rule.target} {rule.traffic}%"
            + (" (shadow)" if rule.shadow else "")
            for rank, rule in enumerate(ordered, start=1)
        ],
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines) + "\n"


def _yaml(document: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)


def _nginx(ordered: Sequence[Rule], sticky_header: str | None) -> str:
    """``map`` blocks pick the rule (regexes in precedence order: the first match wins),
    then per rule a ``split_clients`` (random) or a ``map`` on the bucket header (sticky)."""
    lines = [
        "# The request path as sent, without the query string. $request_uri rather than $uri:",
        "# the mirror subrequest below keeps it, and it is what resolve and Envoy match.",
        "map $request_uri $mp_path {",
        '    "~^(?<mp_path_only>[^?]*)" $mp_path_only;',
        "}",
        "",
        "map $mp_path $mp_rule {",
        '    default "";',
        *[f'    "~{regex(rule.pattern)}" {rule.name};' for rule in ordered],
        "}",
        "",
    ]
    upstream = ["map $mp_rule $mp_upstream {", f"    default {LEGACY};"]
    mirror = ["map $mp_rule $mp_mirror {", '    default "";']
    for rank, rule in enumerate(ordered, start=1):
        outside = '""' if rule.shadow else LEGACY
        share = {0: outside, 100: rule.target}.get(rule.traffic, f"$mp_split_{rank}")
        (mirror if rule.shadow else upstream).append(f"    {_nginx_map_key(rule.name)} {share};")
        if share.startswith("$"):
            lines += _nginx_split(rule, share, outside, sticky_header)
    lines += [*upstream, "}", "", *mirror, "}", "", *_NGINX_SERVER]
    return "\n".join(lines) + "\n"


def _nginx_map_key(name: str) -> str:
    # A source value spelled like one of map's parameters must be escaped with '\\'.
    return "\\" + name if name in ("default", "hostnames", "include", "volatile") else name


def _nginx_split(rule: Rule, variable: str, outside: str, sticky_header: str | None) -> list[str]:
    if sticky_header:
        source = "$http_" + sticky_header.replace("-", "_")
        return [
            f"# {rule.name}: buckets 1..{rule.traffic} from the {sticky_header} header",
            f"map {source} {variable} {{",
            f"    default {outside};",
            f'    "~{bucket_regex(rule.traffic)}" {rule.target};',
            "}",
            "",
        ]
    return [
        f"# {rule.name}: {rule.traffic}% of requests, at random",
        f'split_clients "${{request_id}}" {variable} {{',
        f"    {rule.traffic}% {rule.target};",
        f"    * {outside};",
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


def _split_routes(rule: Rule, sticky_header: str | None) -> list[tuple[str, bool, int]]:
    """(route name, matches the bucket header?, percent sent to the target) for one rule,
    shared by Envoy and Istio: one route at 0% and 100% or for a random split; with a
    sticky header, the bucket range's route (all to the target) before the rest (none)."""
    if rule.traffic in (0, 100) or not sticky_header:
        return [(rule.name, False, rule.traffic)]
    return [(f"{rule.name}/in", True, 100), (rule.name, False, 0)]


def _envoy(ordered: Sequence[Rule], project_id: int, sticky_header: str | None) -> dict[str, Any]:
    routes = []
    for rule in ordered:
        for name, in_range, percent in _split_routes(rule, sticky_header):
            match: dict[str, Any] = (
                {"path": rule.pattern}
                if rule.match_kind == EXACT
                else {"safe_regex": {"regex": regex(rule.pattern)}}
            )
            if in_range:
                buckets = {"start": 1, "end": rule.traffic + 1}  # [start, end)
                match["headers"] = [{"name": sticky_header, "range_match": buckets}]
            routes.append({"name": name, "match": match, "route": _envoy_action(rule, percent)})
    routes.append({"name": LEGACY, "match": {"prefix": "/"}, "route": {"cluster": LEGACY}})
    return {
        "name": f"migrationpilot-project-{project_id}",
        "virtual_hosts": [{"name": "migrationpilot", "domains": ["*"], "routes": routes}],
    }


def _envoy_action(rule: Rule, percent: int) -> dict[str, Any]:
    """Route (and mirror) ``percent`` of the rule's requests to its target."""
    if rule.shadow:
        action: dict[str, Any] = {"cluster": LEGACY}
        if percent > 0:
            fraction = {"numerator": percent, "denominator": "HUNDRED"}
            action["request_mirror_policies"] = [
                {"cluster": rule.target, "runtime_fraction": {"default_value": fraction}}
            ]
        return action
    if percent in (0, 100):
        return {"cluster": rule.target if percent else LEGACY}
    clusters = [
        {"name": rule.target, "weight": percent},
        {"name": LEGACY, "weight": 100 - percent},
    ]
    return {"weighted_clusters": {"clusters": clusters}}


def _istio(ordered: Sequence[Rule], project_id: int, sticky_header: str | None) -> dict[str, Any]:
    http = []
    for rule in ordered:
        for name, in_range, percent in _split_routes(rule, sticky_header):
            uri = {EXACT: "exact", WILDCARD: "regex"}[rule.match_kind]
            match: dict[str, Any] = {
                "uri": {uri: rule.pattern if uri == "exact" else regex(rule.pattern)}
            }
            if in_range:
                match["headers"] = {sticky_header: {"regex": bucket_regex(rule.traffic)}}
            http.append({"name": name, "match": [match], **_istio_action(rule, percent)})
    http.append({"name": LEGACY, "route": [_istio_destination(LEGACY, 100)]})
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": f"migrationpilot-project-{project_id}"},
        "spec": {"hosts": [LEGACY], "http": http},
    }


def _istio_destination(host: str, weight: int) -> dict[str, Any]:
    return {"destination": {"host": host}, "weight": weight}


def _istio_action(rule: Rule, percent: int) -> dict[str, Any]:
    """Route (and mirror) ``percent`` of the rule's requests to its target."""
    if rule.shadow:
        action: dict[str, Any] = {"route": [_istio_destination(LEGACY, 100)]}
        if percent > 0:
            action["mirror"] = {"host": rule.target}
            action["mirrorPercentage"] = {"value": float(percent)}
        return action
    if percent in (0, 100):
        return {"route": [_istio_destination(rule.target if percent else LEGACY, 100)]}
    return {
        "route": [
            _istio_destination(rule.target, percent),
            _istio_destination(LEGACY, 100 - percent),
        ]
    }
