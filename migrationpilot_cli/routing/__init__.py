"""Strangler-fig routing, pure logic, no I/O: the decision (decision.py: validation,
precedence, Unleash-compatible bucketing, shadow, `resolve`) and the proxy exports
(proxies.py: the export entry point, the registry and what the proxies share; then one module
per proxy: nginx.py, envoy.py, istio.py). The names below are the package's face.

docs/routing.md is the user-facing description of every rule implemented here.
"""

from migrationpilot_cli.routing.decision import (
    EXACT,
    LEGACY,
    MAX_NAME,
    MAX_TARGET,
    SUMMARY_COLUMNS,
    WILDCARD,
    Route,
    Rule,
    bucket,
    bucket_regex,
    decide,
    in_effect,
    in_precedence,
    matching,
    pattern,
    regex,
    request_path,
    resolve,
    routes,
    rule_name,
    summarize,
    target_service,
    traffic,
)
from migrationpilot_cli.routing.proxies import (
    CATCH_ALL,
    ExportFormat,
    export,
    header_name,
    proxy_name,
)

__all__ = [
    "CATCH_ALL",
    "EXACT",
    "LEGACY",
    "MAX_NAME",
    "MAX_TARGET",
    "SUMMARY_COLUMNS",
    "WILDCARD",
    "ExportFormat",
    "Route",
    "Rule",
    "bucket",
    "bucket_regex",
    "decide",
    "export",
    "header_name",
    "in_effect",
    "in_precedence",
    "matching",
    "pattern",
    "proxy_name",
    "regex",
    "request_path",
    "resolve",
    "routes",
    "rule_name",
    "summarize",
    "target_service",
    "traffic",
]
