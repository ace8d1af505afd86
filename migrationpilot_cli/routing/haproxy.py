"""The HAProxy export: a complete ``haproxy.cfg`` (HAProxy 2.6 and later) that runs as it is
(``haproxy -db -f DIR/haproxy.cfg``); with ``--sticky-key``, HAProxy's Lua computes the
bucket. HAProxy cannot mirror: shadow rules keep their buckets on legacy, and say so."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from migrationpilot_cli.routing.decision import LEGACY, bucket_regex
from migrationpilot_cli.routing.options import Address
from migrationpilot_cli.routing.proxies import (
    Entry,
    File,
    Plan,
    Proxy,
    route_table,
    script_text,
)

MAIN = "haproxy.cfg"
SCRIPT = "migrationpilot.lua"


def placeholders(notes: Sequence[tuple[str, str]]) -> list[str]:
    return [
        "Give these backends their servers (placeholders: the backends are written without",
        "any; export with --upstream NAME=HOST:PORT to write them):",
        f"  {LEGACY} (the legacy system)",
        *[f"  {name}" + (note and f" ({note})") for name, note in notes],
    ]


def files(plan: Plan) -> list[File]:
    main = File(MAIN, plan.comment + config(plan))
    if plan.options.directory is None or not plan.options.sticky_key:
        return [main]
    return [File(SCRIPT, script_text(SCRIPT)), main]


def config(plan: Plan) -> str:
    table = route_table(plan.routes)
    lines = [
        *_global(plan),
        "defaults",
        "    mode http",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "",
        "frontend migrationpilot",
        f"    bind {plan.options.listen or ':80'}",
        "    # The route: the first pattern, in precedence order, that matches the path as sent",
        "    # (without the query string); its group id in txn.mp_route.",
        *_routes(table),
        *_buckets(plan, [entry.group for entry in table if entry.splits]),
        "    # The rule that takes the request, in txn.mp_rule: the one whose buckets hold the",
        "    # request's bucket, or the route's only one when it takes every request.",
        *_rules(table),
        "    # Its target serves it; what no rule takes stays on legacy, and so do the buckets",
        "    # of shadow rules: HAProxy cannot mirror.",
        *_use_backends(table),
        f"    default_backend {LEGACY}",
        "",
        *_backends(plan, table),
    ]
    return "\n".join(lines) + "\n"


def _global(plan: Plan) -> list[str]:
    if not plan.options.sticky_key:
        return []
    return [
        "global",
        f"    # lua.mp_bucket: the bucket of the request's route and key ({SCRIPT}); a Lua",
        "    # of its own in each thread, none waiting for another's.",
        f"    lua-load-per-thread {plan.script(SCRIPT)}",
        "",
    ]


def _quoted(regex: str) -> str:
    """A regular expression as one HAProxy word: single quotes keep it as it is; a quote in
    it is written as PCRE's \\x27."""
    return "'" + regex.replace("'", "\\x27") + "'"


def _routes(table: Sequence[Entry]) -> list[str]:
    unset = ""
    lines = []
    for entry in table:
        lines.append(
            f"    http-request set-var(txn.mp_route) str({entry.group})"
            f" if{unset} {{ path_reg {_quoted(entry.regex)} }}"
        )
        unset = " !{ var(txn.mp_route) -m found }"
    return lines


def _buckets(plan: Plan, splitting: list[str]) -> list[str]:
    """The bucket (1..100) of a request in a route that splits, in txn.mp_bucket."""
    if not splitting:
        return []
    key, header = plan.options.sticky_key, plan.options.sticky_header
    if key:
        fetch, how = f"lua.mp_bucket({key.kind},{key.name})", f"from the key in {key.described}"
    elif header:
        fetch, how = f"req.fhdr({header},1)", f"precomputed, in the request header {header}"
    else:
        fetch, how = "rand(100),add(1)", "AT RANDOM, per request"
    return [
        f"    # The bucket of a request in a route that splits, {how}:",
        f"    http-request set-var(txn.mp_bucket) {fetch} if {_route_is(splitting)}",
    ]


def _route_is(groups: Iterable[str]) -> str:
    return "{ var(txn.mp_route) -m str " + " ".join(groups) + " }"


def _rules(table: Sequence[Entry]) -> list[str]:
    lines = []
    for entry in table:
        for take in entry.takes:
            bucket = (
                f" {{ var(txn.mp_bucket) -m reg {_quoted(bucket_regex(take.first, take.last))} }}"
                if entry.splits
                else ""
            )
            lines.append(
                f"    http-request set-var(txn.mp_rule) str({take.slug})"
                f" if {_route_is([entry.group])}{bucket}"
            )
    return lines


def _use_backends(table: Sequence[Entry]) -> list[str]:
    """One use_backend per serving upstream, for the slugs of the rules it serves."""
    served: dict[str, list[str]] = {}
    for entry in table:
        for take in entry.takes:
            if not take.shadow:
                served.setdefault(take.upstream, []).append(take.slug)
    return [
        f"    use_backend {upstream} if {{ var(txn.mp_rule) -m str {' '.join(slugs)} }}"
        for upstream, slugs in served.items()
    ]


def _backends(plan: Plan, table: Sequence[Entry]) -> list[str]:
    """legacy, every serving target's, and every one --upstream names (kept though unused:
    a rule may be enabled later)."""
    names = [LEGACY, *(t.upstream for e in table for t in e.takes if not t.shadow)]
    names += plan.servers
    lines = []
    for name in dict.fromkeys(names):
        lines += [f"backend {name}", *_servers(name, plan.servers.get(name)), ""]
    return lines[:-1]


def _servers(name: str, addresses: tuple[Address, ...] | None) -> list[str]:
    if addresses is None:
        return [f"    # server {name} {name}.internal:8080  (placeholder: use your servers)"]
    return [f"    server {name}-{n} {address}" for n, address in enumerate(addresses, start=1)]


def checker(directory: str) -> list[str]:
    return ["haproxy", "-c", "-f", f"{directory}/{MAIN}"]


PROXY = Proxy(
    placeholders,
    files,
    printed=MAIN,
    computes=lambda _: f"HAProxy's Lua ({SCRIPT}, the sample fetch lua.mp_bucket)",
    checker=checker,
    mirrors=False,
    serves=True,
)
