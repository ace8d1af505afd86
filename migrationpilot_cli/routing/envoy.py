"""The Envoy export: a route configuration (RouteConfiguration, YAML)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from migrationpilot_cli.routing import proxies
from migrationpilot_cli.routing.decision import EXACT, LEGACY, Route, regex


def placeholders(notes: Sequence[tuple[str, str]]) -> list[str]:
    return [
        "Define these clusters in your Envoy configuration:",
        f"  {LEGACY} (the legacy system)",
        *[f"  {name}" + (note and f" ({note})") for name, note in notes],
    ]


def config(ordered: Sequence[Route], project_id: UUID | str, sticky_header: str | None) -> str:
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
    return proxies.to_yaml(
        {
            "name": f"migrationpilot-project-{project_id}",
            "virtual_hosts": [{"name": "migrationpilot", "domains": ["*"], "routes": routes}],
        }
    )


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


PROXY = proxies.Proxy(placeholders, config)
