"""The Envoy export: a route configuration (RouteConfiguration, YAML); with ``--sticky-key``,
also the Lua HTTP filter that sets each request's bucket header from its key (Istio's
EnvoyFilter inserts the same filter)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migrationpilot_cli.routing import proxies
from migrationpilot_cli.routing.decision import EXACT, LEGACY, Route, regex
from migrationpilot_cli.routing.proxies import File, Plan

MAIN = "envoy.yaml"
SCRIPT = "migrationpilot.lua"
# The header the Lua filter sets: the bucket the header-matching routes follow.
BUCKET_HEADER = "x-mp-bucket"


def placeholders(notes: Sequence[tuple[str, str]]) -> list[str]:
    return [
        "Define these clusters in your Envoy configuration:",
        f"  {LEGACY} (the legacy system)",
        *[f"  {name}" + (note and f" ({note})") for name, note in notes],
    ]


def files(plan: Plan) -> list[File]:
    documents = [route_configuration(plan.routes, plan.project_id, bucket_header(plan))]
    if plan.options.sticky_key:
        documents.append(http_filter(plan))
    return [File(MAIN, plan.comment + "---\n".join(map(proxies.to_yaml, documents)))]


def bucket_header(plan: Plan) -> str | None:
    """The header the routes split on: --sticky-header's, or the Lua filter's."""
    return plan.options.sticky_header or (BUCKET_HEADER if plan.options.sticky_key else None)


def route_configuration(
    ordered: Sequence[Route], project_id: object, sticky_header: str | None
) -> dict[str, Any]:
    routes = []
    for route in ordered:
        for name, buckets, shares in proxies.proxy_routes(route, sticky_header):
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
            routes.append({"name": name, "match": match, "route": _action(shares)})
    routes.append(
        {"name": proxies.CATCH_ALL, "match": {"prefix": "/"}, "route": {"cluster": LEGACY}}
    )
    return {
        "name": f"migrationpilot-project-{project_id}",
        "virtual_hosts": [{"name": "migrationpilot", "domains": ["*"], "routes": routes}],
    }


def _action(shares: proxies.Shares) -> dict[str, Any]:
    """Serve (weighted) and mirror (a runtime fraction each) the rules' shares."""
    served, mirrored = proxies.destinations(shares)
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


def http_filter(plan: Plan) -> dict[str, Any]:
    """The Lua HTTP filter (an entry of the connection manager's http_filters, before the
    router): it sets the bucket header from the key, so that the routes above follow it."""
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": lua_source(plan)},
        },
    }


def lua_source(plan: Plan) -> str:
    """The filter's Lua (LuaJIT): migrationpilot.lua as a module, the routes in precedence
    order (each pattern's segments and group id: the filter matches the path itself, before
    Envoy routes it), and envoy_on_request."""
    key = plan.options.sticky_key
    assert key is not None
    routes = "".join(
        f"  {{{{{', '.join(map(_lua_string, _segments(route.pattern)))}}}, "
        f"{_lua_string(route.group)}}},\n"
        for route in plan.routes
    )
    return (
        f"-- Sets the header {BUCKET_HEADER} to the bucket of the request's route and key, as\n"
        "-- `migrationpilot routing resolve` computes it; removes it from requests without one.\n"
        f"local mp = (function()\n{proxies.script_text(SCRIPT)}end)()\n\n"
        "-- The routes in precedence order: each pattern's segments ('*' one, '**' any number)\n"
        f"-- and its group id.\nlocal ROUTES = {{\n{routes}}}\n\n"
        "function envoy_on_request(handle)\n"
        f"  mp.envoy(handle, ROUTES, {_lua_string(key.kind)}, {_lua_string(key.name)},"
        f" {_lua_string(BUCKET_HEADER)})\n"
        "end\n"
    )


def _segments(pattern: str) -> list[str]:
    return [""] if pattern == "/" else pattern[1:].split("/")


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


PROXY = proxies.Proxy(
    placeholders,
    files,
    printed=MAIN,
    computes=lambda _: (
        f"a Lua HTTP filter ({SCRIPT}, inlined below) that sets the header {BUCKET_HEADER}"
    ),
)
