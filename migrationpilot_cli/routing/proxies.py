"""Proxy exports: the entry point, the registry of proxies and what they share (the leading
comment, the naming of upstreams, the proxy routes of a split). Each proxy is one module of
this package that defines PROXY; a new one (Traefik, HAProxy) is a new module and one member
of ExportFormat, and touches no decision code.
"""

from __future__ import annotations

import importlib
import re
import shlex
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, cast
from uuid import UUID

from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.routing.decision import LEGACY, Route, Rule, in_effect, regex
from migrationpilot_cli.routing.options import (
    HEADER,
    Address,
    NginxScript,
    StickyKey,
    Upstream,
)

# A lower-case DNS name (RFC 1123), as Kubernetes services are named: such a target is its
# own upstream, cluster and host in the exports.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = rf"{_LABEL}(?:\.{_LABEL})*"
_HEADER = r"[a-z0-9][a-z0-9-]*"  # the re module compiles both on first use

# The last route of the Envoy and Istio exports: never a rule's slug (no '/' in a slug).
CATCH_ALL = "legacy/default"
# Where Debian's libnginx-mod-http-js puts nginx's JavaScript module (--njs-module).
DEBIAN_NJS_MODULE = "/usr/lib/nginx/modules/ngx_http_js_module.so"
# Where Debian's libnginx-mod-http-lua puts nginx's Lua module, and the module it needs
# loaded before it (libnginx-mod-http-ndk: its set_by_lua is the kit's).
DEBIAN_LUA_MODULES = (
    "/usr/lib/nginx/modules/ndk_http_module.so",
    "/usr/lib/nginx/modules/ngx_http_lua_module.so",
)
# The scripts the proxies load (package data): the exports copy them into -o DIR.
SCRIPTS = Path(__file__).resolve().parent / "scripts"


@dataclass(frozen=True)
class File:
    name: str  # in the directory of `-o DIR`
    text: str


@dataclass(frozen=True)
class ExportOptions:
    """Everything an export is told besides the rules (see options.py for the parsing)."""

    sticky_header: str | None = None  # the split follows this precomputed bucket header
    sticky_key: StickyKey | None = None  # the proxy computes the bucket from this key
    listen: Address | None = None
    upstreams: tuple[Upstream, ...] = ()
    directory: str | None = None  # -o DIR, absolute: where the files load each other from
    nginx_script: NginxScript = NginxScript.lua  # what computes nginx's sticky bucket
    njs_module: str = DEBIAN_NJS_MODULE


@dataclass(frozen=True)
class Plan:
    """What a proxy module writes its files from: the routes in precedence order, computed
    once, and what surrounds them."""

    routes: Sequence[Route]
    project_id: UUID | str
    options: ExportOptions
    comment: str  # the leading comment, "# " lines and a blank line
    servers: dict[str, tuple[Address, ...]]  # upstream -> its servers; empty: placeholders

    def script(self, name: str) -> str:
        """The absolute path a configuration loads a shipped script from: DIR with -o (the
        export copies it there), else the installed package."""
        if self.options.directory is not None:
            return str(PurePosixPath(self.options.directory, name))
        return str(SCRIPTS / name)


@dataclass(frozen=True)
class Proxy:
    """What a proxy module gives the export, as its PROXY."""

    # The leading comment's lines on what to define: the legacy default, then the targets as
    # (proxy name, "target '<name>'" when the proxy name does not say it, else "").
    placeholders: Callable[[Sequence[tuple[str, str]]], list[str]]
    # The files, in the order they are installed (what another file loads comes first); the
    # first of `printed` is what stdout gets without -o.
    files: Callable[[Plan], list[File]]
    printed: str
    # With --sticky-key: what computes the bucket, for the leading comment.
    computes: Callable[[ExportOptions], str]
    # The proxy's own checker on the files of DIR (--check), or None.
    checker: Callable[[str], list[str]] | None = None
    mirrors: bool = True
    # nginx and HAProxy: --listen and --upstream make the configuration complete.
    serves: bool = False
    directories: tuple[str, ...] = ()  # made in DIR besides the files (nginx: logs)


@dataclass(frozen=True)
class Export:
    """An export's files and what the command says about them."""

    files: tuple[File, ...]  # in the order to install them
    printed: str  # the file stdout gets without -o
    directories: tuple[str, ...]
    warnings: tuple[str, ...]  # lines for stderr
    checker: Callable[[str], list[str]] | None

    @property
    def text(self) -> str:
        return next(file.text for file in self.files if file.name == self.printed)


class ExportFormat(StrEnum):
    """The proxies, and their registry: each member names the module of this package whose
    PROXY writes its configuration."""

    nginx = "nginx"
    haproxy = "haproxy"
    envoy = "envoy"
    istio = "istio"

    @property
    def proxy(self) -> Proxy:
        return cast(Proxy, importlib.import_module(f".{self.value}", __package__).PROXY)


def header_name(value: str) -> str:
    if not re.fullmatch(_HEADER, value):
        raise BadInput(
            f"--sticky-header {value!r}: use a lower-case header name such as x-mp-bucket"
        )
    return value


def proxy_name(target: str) -> str:
    """A target's nginx upstream, Envoy cluster and Istio host: the target itself when it is
    a lower-case DNS name other than `legacy`, else its lower-case letters and digits joined
    by '-' and 8 hex digits of its SHA-256 ('Accounts Java' -> 'accounts-java-<hash>'), so
    that no two targets share one, and no target shares the legacy default's `legacy`."""
    if target != LEGACY and re.fullmatch(_DNS_NAME, target):
        return target
    import hashlib  # here: only the exports name targets; every routing command imports this

    base = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-")[:40].strip("-") or "target"
    return f"{base}-{hashlib.sha256(target.encode()).hexdigest()[:8]}"


def export(
    fmt: ExportFormat,
    rules: Sequence[Rule],
    *,
    project: str,
    project_id: UUID | str,
    sticky_header: str | None = None,
    options: ExportOptions | None = None,
) -> str:
    """The text stdout gets: :func:`build`'s printed file."""
    if options is None:
        options = ExportOptions(sticky_header=sticky_header)
    return build(fmt, rules, project=project, project_id=project_id, options=options).text


def build(
    fmt: ExportFormat,
    rules: Sequence[Rule],
    *,
    project: str,
    project_id: UUID | str,
    options: ExportOptions,
) -> Export:
    """The enabled rules as a proxy's files, deterministic (the same rules and options give
    the same bytes): routes in precedence order, each route's rules oldest first."""
    proxy = fmt.proxy
    refuse_unused(fmt, options)
    ordered = in_effect(rules)
    servers = _servers(ordered, options.upstreams)
    comment = _leading_comment(fmt, proxy, ordered, project, project_id, options, servers)
    plan = Plan(ordered, project_id, options, comment, servers)
    return Export(
        files=tuple(proxy.files(plan)),
        printed=proxy.printed,
        directories=proxy.directories,
        warnings=tuple(_warnings(fmt, proxy, ordered)),
        checker=proxy.checker,
    )


def refuse_unused(fmt: ExportFormat, options: ExportOptions) -> None:
    """Exit 2 for options that would be ignored: an export takes what it uses."""
    if options.sticky_header and options.sticky_key:
        raise BadInput(
            "--sticky-header and --sticky-key exclude each other: the bucket is either"
            " precomputed (header) or computed by the proxy from the key"
        )
    if not fmt.proxy.serves and (options.listen or options.upstreams):
        given = "--listen" if options.listen else "--upstream"
        raise BadInput(
            f"{given}: for --format nginx or haproxy; {fmt.value} takes its listeners and"
            " clusters from your own configuration"
        )


def _upstream_name(service: str) -> str:
    """The upstream of ``--upstream NAME=...``: `legacy` is the legacy default; any other
    NAME is a target, by its name in the rules (or already its name in the exports)."""
    return LEGACY if service == LEGACY else proxy_name(service)


def _servers(ordered: Sequence[Route], given: Sequence[Upstream]) -> dict[str, tuple[Address, ...]]:
    """Each upstream's servers, in the order given; none given: none (placeholders). Once
    some are given, the legacy default and every enabled rule's target must have one."""
    servers: dict[str, list[Address]] = {}
    for upstream in given:
        known = servers.setdefault(_upstream_name(upstream.service), [])
        if upstream.address not in known:
            known.append(upstream.address)
    if not servers:
        return {}
    if LEGACY not in servers:
        raise BadInput(
            "--upstream: none for legacy, the legacy default that serves what no rule takes:"
            " add --upstream legacy=HOST:PORT"
        )
    for route in ordered:
        for rule in route.rules:
            if proxy_name(rule.target) not in servers:
                # NAME=legacy is the legacy default: a target named so goes by its own name
                named = proxy_name(rule.target) if rule.target == LEGACY else rule.target
                raise BadInput(
                    f"--upstream: none for the target {rule.target!r} of the enabled rule"
                    f" {rule.name!r}: add --upstream {shlex.quote(named + '=HOST:PORT')}"
                )
    return {name: tuple(addresses) for name, addresses in servers.items()}


def _warnings(fmt: ExportFormat, proxy: Proxy, ordered: Sequence[Route]) -> list[str]:
    if proxy.mirrors:
        return []
    shadows = [rule for route in ordered for rule, _, _ in route.ranges() if rule.shadow]
    return [
        f"{fmt.value} cannot mirror: the shadow rule {rule.name!r} keeps its buckets on legacy"
        f" and {rule.target!r} gets no copy of them (nginx, Envoy and Istio mirror)"
        for rule in shadows
    ]


def _leading_comment(
    fmt: ExportFormat,
    proxy: Proxy,
    ordered: Sequence[Route],
    project: str,
    project_id: UUID | str,
    options: ExportOptions,
    servers: dict[str, tuple[Address, ...]],
) -> str:
    targets = {rule.target for route in ordered for rule, _, _ in route.ranges()}
    # (proxy name, the target it stands for when the name does not say)
    notes = sorted(
        (proxy_name(target), "" if proxy_name(target) == target else f"target {target!r}")
        for target in targets
    )
    mirroring = (
        []
        if proxy.mirrors
        else [
            f"{fmt.value} CANNOT MIRROR: a shadow rule's buckets stay on legacy and its target",
            "gets no copy of them (`routing export` says so on stderr); nginx, Envoy and Istio",
            "mirror.",
        ]
    )
    lines = [
        f"Generated by `migrationpilot routing export --format {fmt.value}`",
        f"Project {project!r} (id {project_id}): {len(ordered)} routes of enabled rules.",
        "Routes are in precedence order, the first match wins: exact patterns, then the",
        "longest literal prefix, then fewer wildcards, then the older route, then its group.",
        "The rules of one pattern split its requests: each takes the next buckets, as many",
        "as its traffic, in the order listed; the rest stays on legacy. Shadow rules serve",
        "legacy and mirror their share to their target.",
        *mirroring,
        "",
        *_splitting(proxy, options),
        "",
        *(_server_lines(servers, notes) if servers else proxy.placeholders(notes)),
        "",
        *_route_lines(ordered),
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines) + "\n"


_BUCKETING = [
    'The bucket of a key in a route: murmur3_x86_32("<group>:<key>", seed 0) % 100 + 1,',
    "with the route's group id listed below (Unleash: normalizedValue(key, groupId=<group>)).",
]


def _splitting(proxy: Proxy, options: ExportOptions) -> list[str]:
    """The leading comment's paragraph on how a route's requests are split."""
    if options.sticky_key:
        repeated = " (or sent more than once)" if options.sticky_key.kind == HEADER else ""
        return [
            *textwrap.wrap(
                f"Sticky: {proxy.computes(options)} computes each request's bucket from its key, in"
                f" {options.sticky_key.described} (the bytes sent, without the spaces around"
                " them), as `migrationpilot routing resolve --key` does: the same key gets the"
                " same target while the rules stay as they are. A request without the key or"
                f" with an empty one{repeated} stays on legacy unless one rule takes 100%,"
                " exactly as `resolve` decides without a key.",
                width=88,
            ),
            *_BUCKETING,
        ]
    if options.sticky_header:
        return [
            f"Sticky: the split follows the request header {options.sticky_header}, the bucket",
            "(1..100) that `migrationpilot routing resolve` computes for the matched route and",
            "key. The edge or the application computes it and sets the header (or copies it",
            "from a cookie). A request without the header stays on legacy unless one rule",
            "takes 100%, exactly as `resolve` decides without a key.",
            *_BUCKETING,
        ]
    return [
        "Splitting here is the proxy's own: RANDOM PER REQUEST. It is not the sticky",
        "bucketing of `migrationpilot routing resolve`: one user can hit both sides.",
        "To make it sticky, export with `--sticky-key header:NAME` (or `cookie:NAME`): the",
        "proxy then computes each request's bucket from the user's key, as `resolve` does.",
        "Or have the edge compute the bucket, send it as a header x-mp-bucket, and export",
        "with `--sticky-header x-mp-bucket`: the split then matches that header.",
        *_BUCKETING,
    ]


def _server_lines(
    servers: dict[str, tuple[Address, ...]], notes: Sequence[tuple[str, str]]
) -> list[str]:
    named = dict(notes)
    lines = ["Upstreams (--upstream), with their servers:"]
    for name, addresses in servers.items():
        note = "the legacy system" if name == LEGACY else named.get(name, "")
        where = ", ".join(map(str, addresses))
        lines.append(f"  {name}: {where}" + (f"  ({note})" if note else ""))
    return lines


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


@dataclass(frozen=True)
class Take:
    """A rule's share of its route, as nginx and HAProxy write it: the buckets first..last,
    served by its target's upstream (or, for a shadow rule, mirrored to it)."""

    slug: str
    first: int
    last: int
    upstream: str
    shadow: bool


@dataclass(frozen=True)
class Entry:
    """A route as nginx and HAProxy write it: matched by its regex; then, when it splits,
    each request's rule is the one whose buckets hold the request's bucket; when it does
    not, every request goes to ``sole`` (None: legacy)."""

    rank: int
    group: str
    regex: str
    takes: tuple[Take, ...]
    splits: bool

    @property
    def sole(self) -> Take | None:
        return None if self.splits or not self.takes else self.takes[0]


def route_table(ordered: Sequence[Route]) -> list[Entry]:
    """The routes in precedence order, as nginx and HAProxy write them."""
    return [
        Entry(
            rank,
            route.group,
            regex(route.pattern),
            tuple(
                Take(rule.slug, first, last, proxy_name(rule.target), rule.shadow)
                for rule, first, last in route.ranges()
            ),
            not route.certain,
        )
        for rank, route in enumerate(ordered, start=1)
    ]


def script_text(name: str) -> str:
    """A shipped script (package data), as the exports copy it."""
    return (SCRIPTS / name).read_text(encoding="utf-8")


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
