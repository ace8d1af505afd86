"""The nginx export: a snippet for http {}, ``map`` blocks and a server with a mirror."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from migrationpilot_cli.routing.decision import LEGACY, Route, bucket_regex, regex
from migrationpilot_cli.routing.proxies import Proxy, proxy_name


def placeholders(notes: Sequence[tuple[str, str]]) -> list[str]:
    return [
        "Define these upstreams in http {} (placeholders: use your servers):",
        f"  upstream {LEGACY} {{ server legacy.internal:8080; }}  # the legacy system",
        *[
            f"  upstream {name} {{ server {name}.internal:8080; }}" + (note and f"  # {note}")
            for name, note in notes
        ],
    ]


def config(ordered: Sequence[Route], project_id: UUID | str, sticky_header: str | None) -> str:
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
            lines += _split(route, rule_of_route, sticky_header)
        taker.append(f"    {_map_key(route.group)} {rule_of_route};")
        for rule, _, _ in ranges:
            (mirror if rule.shadow else upstream).append(
                f"    {_map_key(rule.slug)} {proxy_name(rule.target)};"
            )
    lines += [*taker, "}", "", *upstream, "}", "", *mirror, "}", "", *_SERVER]
    return "\n".join(lines) + "\n"


def _map_key(slug: str) -> str:
    # A source value spelled like one of map's parameters must be escaped with '\\'.
    return "\\" + slug if slug in ("default", "hostnames", "include", "volatile") else slug


def _split(route: Route, variable: str, sticky_header: str | None) -> list[str]:
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


_SERVER = [
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

PROXY = Proxy(placeholders, config)
