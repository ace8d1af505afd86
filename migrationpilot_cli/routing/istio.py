"""The Istio export: a VirtualService (YAML) that takes over calls to the legacy service; with
``--sticky-key``, also an EnvoyFilter that inserts Envoy's Lua filter setting the bucket
header from the key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from migrationpilot_cli.routing import envoy, proxies
from migrationpilot_cli.routing.decision import EXACT, LEGACY, Route, bucket_regex, regex
from migrationpilot_cli.routing.proxies import File, Plan

MAIN = "istio.yaml"


def placeholders(notes: Sequence[tuple[str, str]]) -> list[str]:
    return [
        f"The VirtualService takes over calls to the Kubernetes service '{LEGACY}', the",
        "legacy system (add spec.gateways for ingress traffic); the targets are services",
        "too:" + ("" if notes else " (none)"),
        *[f"  {name}" + (note and f" ({note})") for name, note in notes],
    ]


def files(plan: Plan) -> list[File]:
    documents = [virtual_service(plan.routes, plan.project_id, envoy.bucket_header(plan))]
    if plan.options.sticky_key:
        documents.append(envoy_filter(plan))
    return [File(MAIN, plan.comment + "---\n".join(map(proxies.to_yaml, documents)))]


def virtual_service(
    ordered: Sequence[Route], project_id: UUID | str, sticky_header: str | None
) -> dict[str, Any]:
    http = []
    for route in ordered:
        for name, buckets, shares in proxies.proxy_routes(route, sticky_header):
            uri = (
                {"exact": route.pattern}
                if route.match_kind == EXACT
                else {"regex": regex(route.pattern)}
            )
            match: dict[str, Any] = {"uri": uri}
            if buckets:
                match["headers"] = {sticky_header: {"regex": bucket_regex(*buckets)}}
            http.append({"name": name, "match": [match], **_action(shares)})
    http.append({"name": proxies.CATCH_ALL, "route": [_destination(LEGACY, 100)]})
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": f"migrationpilot-project-{project_id}"},
        "spec": {"hosts": [LEGACY], "http": http},
    }


def envoy_filter(plan: Plan) -> dict[str, Any]:
    """Envoy's Lua filter before the router, in the sidecars that call legacy (where the
    VirtualService applies) and in gateways."""
    patches = [
        {
            "applyTo": "HTTP_FILTER",
            "match": {
                "context": context,
                "listener": {
                    "filterChain": {
                        "filter": {
                            "name": "envoy.filters.network.http_connection_manager",
                            "subFilter": {"name": "envoy.filters.http.router"},
                        }
                    }
                },
            },
            "patch": {"operation": "INSERT_BEFORE", "value": envoy.http_filter(plan)},
        }
        for context in ("SIDECAR_OUTBOUND", "GATEWAY")
    ]
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": f"migrationpilot-project-{plan.project_id}-bucket"},
        "spec": {"configPatches": patches},
    }


def _destination(host: str, weight: int) -> dict[str, Any]:
    return {"destination": {"host": host}, "weight": weight}


def _action(shares: proxies.Shares) -> dict[str, Any]:
    """Serve (weights) and mirror the rules' shares: `mirror` for one target, `mirrors`
    (Istio 1.22 on) for several shadow targets on one pattern."""
    served, mirrored = proxies.destinations(shares)
    action: dict[str, Any] = {"route": [_destination(h, w) for h, w in served]}
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


PROXY = proxies.Proxy(
    placeholders,
    files,
    printed=MAIN,
    computes=lambda options: envoy.PROXY.computes(options) + " (the EnvoyFilter below inserts it)",
)
