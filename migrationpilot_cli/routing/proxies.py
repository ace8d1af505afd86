"""Proxy exports: the entry point, the registry of proxies and what they share (the leading
comment, the naming of upstreams, the proxy routes of a split). Each proxy is one module of
this package that defines PROXY; a new one (Traefik, HAProxy) is a new module and one member
of ExportFormat, and touches no decision code.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast
from uuid import UUID

from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.routing.decision import LEGACY, Route, Rule, in_effect

# A lower-case DNS name (RFC 1123), as Kubernetes services are named: such a target is its
# own upstream, cluster and host in the exports.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_HEADER = re.compile(r"[a-z0-9][a-z0-9-]*")

# The last route of the Envoy and Istio exports: never a rule's slug (no '/' in a slug).
CATCH_ALL = "legacy/default"


@dataclass(frozen=True)
class Proxy:
    """What a proxy module gives the export, as its PROXY."""

    # The leading comment's lines on what to define: the legacy default, then the targets as
    # (proxy name, "target '<name>'" when the proxy name does not say it, else "").
    placeholders: Callable[[Sequence[tuple[str, str]]], list[str]]
    # The configuration: (routes in precedence order, project id, sticky header) -> text.
    config: Callable[[Sequence[Route], UUID | str, str | None], str]


class ExportFormat(StrEnum):
    """The proxies, and their registry: each member names the module of this package whose
    PROXY writes its configuration."""

    nginx = "nginx"
    envoy = "envoy"
    istio = "istio"

    @property
    def proxy(self) -> Proxy:
        return cast(Proxy, importlib.import_module(f".{self.value}", __package__).PROXY)


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
    proxy = fmt.proxy
    comment = _leading_comment(fmt, proxy, ordered, project, project_id, sticky_header)
    return comment + proxy.config(ordered, project_id, sticky_header)


def _leading_comment(
    fmt: ExportFormat,
    proxy: Proxy,
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
        *proxy.placeholders(notes),
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


Shares = list[tuple[Rule, int]]  # (rule, percent of the route's requests it takes)


def proxy_routes(
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


def destinations(shares: Shares) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
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


def to_yaml(document: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)
