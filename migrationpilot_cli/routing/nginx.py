"""The nginx export: ``routing.conf``, a snippet for http {} (``map`` blocks and a server with
a mirror; with ``--sticky-key``, nginx's Lua module or its JavaScript module computes the
bucket: ``--nginx-script``), and with ``-o DIR`` a complete ``nginx.conf`` around it, runnable
as it is."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from migrationpilot_cli.routing.decision import LEGACY, bucket_regex
from migrationpilot_cli.routing.options import HEADER, Address, NginxScript
from migrationpilot_cli.routing.proxies import (
    DEBIAN_LUA_MODULES,
    Entry,
    ExportOptions,
    File,
    Plan,
    Proxy,
    route_table,
    script_text,
)

SNIPPET = "routing.conf"
MAIN = "nginx.conf"
# The script of each --nginx-script, shipped with migrationpilot (Lua's is HAProxy's and
# Envoy's too).
SCRIPT_FILES = {NginxScript.lua: "migrationpilot.lua", NginxScript.njs: "migrationpilot.js"}
# The variable the script sets: the request's bucket in its route, "" without a key.
BUCKET = "$mp_bucket"


def placeholders(notes: Sequence[tuple[str, str]]) -> list[str]:
    return [
        "Define these upstreams in http {} (placeholders: use your servers; or export with",
        "--upstream NAME=HOST:PORT, which writes them here):",
        f"  upstream {LEGACY} {{ server legacy.internal:8080; }}  # the legacy system",
        *[
            f"  upstream {name} {{ server {name}.internal:8080; }}" + (note and f"  # {note}")
            for name, note in notes
        ],
    ]


def files(plan: Plan) -> list[File]:
    """The script, then routing.conf, then (with -o) the nginx.conf that includes them."""
    snippet = File(SNIPPET, plan.comment + config(plan))
    if plan.options.directory is None:
        return [snippet]
    name = SCRIPT_FILES[plan.options.nginx_script]
    script = [File(name, script_text(name))] if plan.options.sticky_key else []
    return [*script, snippet, File(MAIN, main_config(plan, plan.options.directory))]


def config(plan: Plan) -> str:
    """``map`` blocks pick the route (regexes in precedence order: the first match wins),
    then the rule that takes the request (where a route splits, by a ``split_clients`` at
    random, or a ``map`` on the bucket: a header's, or the one the script computes), then
    that rule's upstream or mirror."""
    table = route_table(plan.routes)
    lines = [
        *_upstreams(plan.servers),
        *_script(plan, table),
        "# The request path as sent, without the query string. $request_uri rather than $uri:",
        "# the mirror subrequest below keeps it, and it is what resolve and Envoy match.",
        "map $request_uri $mp_path {",
        '    "~^(?<mp_path_only>[^?]*)" $mp_path_only;',
        "}",
        "",
        "map $mp_path $mp_route {",
        '    default "";',
        *[f'    "~{entry.regex}" {entry.group};' for entry in table],
        "}",
        "",
    ]
    taker = ["map $mp_route $mp_rule {", '    default "";']
    upstream = ["map $mp_rule $mp_upstream {", f"    default {LEGACY};"]
    mirror = ["map $mp_rule $mp_mirror {", '    default "";']
    for entry in table:
        if entry.splits:
            rule_of_route = f"$mp_split_{entry.rank}"
            lines += _split(entry, rule_of_route, plan)
        else:
            rule_of_route = entry.sole.slug if entry.sole else '""'
        taker.append(f"    {_map_key(entry.group)} {rule_of_route};")
        for take in entry.takes:
            (mirror if take.shadow else upstream).append(
                f"    {_map_key(take.slug)} {take.upstream};"
            )
    lines += [*taker, "}", "", *upstream, "}", "", *mirror, "}", "", *_server(plan)]
    return "\n".join(lines) + "\n"


def _upstreams(servers: dict[str, tuple[Address, ...]]) -> list[str]:
    """The upstream blocks of --upstream (none: the leading comment's placeholders)."""
    lines = []
    for name, addresses in servers.items():
        lines += [
            f"upstream {name} {{",
            *[f"    server {address};" for address in addresses],
            "    keepalive 16;",
            "}",
            "",
        ]
    return lines


def _script(plan: Plan, table: Sequence[Entry]) -> list[str]:
    """$mp_key, the request's key, found by nginx (the cookie by a case-sensitive regular
    expression: nginx's own $cookie_NAME ignores case); "<group>:<key>" for the script, which
    hashes it (see its leading comment), in a route that splits only: elsewhere the bucket
    decides nothing."""
    key = plan.options.sticky_key
    if key is None:
        return []
    if key.kind == HEADER:
        source, found = (
            "$http_" + key.name.replace("-", "_"),
            "^[ \\t]*(?<mp_key_value>.*?)[ \\t]*$",
        )
    else:
        name = re.escape(key.name)
        found = f"(?:^|;)[ \\t]*{name}=[ \\t]*(?<mp_key_value>[^;]*?)[ \\t]*(?:;|$)"
        source = "$http_cookie"
    splitting = [_map_key(entry.group) for entry in table if entry.splits]
    return [
        f'# The request\'s key: {key.described}, without the spaces around it ("": none).',
        f"map {source} $mp_key {{",
        '    default "";',
        f'    "~{found}" $mp_key_value;',
        "}",
        "",
        "# The key, in a route that splits.",
        "map $mp_route $mp_split_key {",
        '    default "";',
        *[f"    {group} $mp_key;" for group in splitting],
        "}",
        "",
        "# What the script hashes: the route's group id and the key.",
        "map $mp_split_key $mp_bucket_input {",
        '    "" "";',
        '    default "$mp_route:$mp_split_key";',
        "}",
        "",
        f"# {BUCKET}: the request's bucket in its route, as `migrationpilot routing resolve`",
        '# computes it; "" without a key'
        + (", or when the key header is sent more than once." if key.kind == HEADER else "."),
        *(_lua_script if plan.options.nginx_script is NginxScript.lua else _njs_script)(plan),
        "",
    ]


def _njs_script(plan: Plan) -> list[str]:
    """njs computes $mp_bucket when a split map reads it."""
    key = plan.options.sticky_key
    assert key is not None
    return [
        f"js_import mp_routing from {plan.script(SCRIPT_FILES[NginxScript.njs])};",
        *([f"js_var $mp_key_header {key.name};"] if key.kind == HEADER else []),
        f"js_set {BUCKET} mp_routing.{'bucket_once' if key.kind == HEADER else 'bucket'};",
    ]


def _lua_script(plan: Plan) -> list[str]:
    """The Lua module loads the script once; `location /` sets $mp_bucket (_lua_bucket)."""
    directory = PurePosixPath(plan.script(SCRIPT_FILES[NginxScript.lua])).parent
    return [
        f'lua_package_path "{directory}/?.lua;;";',
        'init_by_lua_block { require("migrationpilot") }',
    ]


def _lua_bucket(plan: Plan) -> list[str]:
    """set_by_lua runs for every request of the location (a route that does not split, or a
    request without a key, returns at once), before the maps that read $mp_bucket."""
    key = plan.options.sticky_key
    if key is None or plan.options.nginx_script is not NginxScript.lua:
        return []
    header = f', "{key.name}"' if key.kind == HEADER else ""
    return [
        f"        set_by_lua_block {BUCKET} {{",
        f'            return require("migrationpilot").nginx(ngx.var.mp_bucket_input{header})',
        "        }",
    ]


def _map_key(slug: str) -> str:
    # A source value spelled like one of map's parameters must be escaped with '\\'.
    return "\\" + slug if slug in ("default", "hostnames", "include", "volatile") else slug


def _split(entry: Entry, variable: str, plan: Plan) -> list[str]:
    """The rule that takes a request of a splitting route, in ``variable`` ("": none)."""
    header = plan.options.sticky_header
    if header or plan.options.sticky_key:
        source, by = (
            ("$http_" + header.replace("-", "_"), f"in the {header} header")
            if header
            else (BUCKET, "computed from the key")
        )
        return [
            f"# {entry.group}: the rule by the bucket {by}",
            f"map {source} {variable} {{",
            '    default "";',
            *[f'    "~{bucket_regex(take.first, take.last)}" {take.slug};' for take in entry.takes],
            "}",
            "",
        ]
    rest = ['    * "";'] if entry.takes[-1].last < 100 else []
    return [
        f"# {entry.group}: the rule at random, per request",
        f'split_clients "${{request_id}}" {variable} {{',
        *[f"    {take.last - take.first + 1}% {take.slug};" for take in entry.takes],
        *rest,
        "}",
        "",
    ]


def _server(plan: Plan) -> list[str]:
    return [
        "# Adjust listen/server_name, or copy the two locations into your own server {}.",
        "server {",
        f"    listen {plan.options.listen or 80};",
        "    server_name _;",
        "",
        "    location / {",
        *_lua_bucket(plan),
        "        mirror /_migrationpilot_mirror;",
        "        mirror_request_body on;",
        *_PROXYING,
        "        proxy_pass http://$mp_upstream;",
        "    }",
        "",
        "    # Shadow traffic: a copy of the request, its response ignored.",
        "    location = /_migrationpilot_mirror {",
        "        internal;",
        '        if ($mp_mirror = "") {',
        "            return 204;",
        "        }",
        *_PROXYING,
        "        proxy_pass http://$mp_mirror$request_uri;",
        "    }",
        "}",
    ]


# Keep-alive connections to the upstreams (their `keepalive`), the client's Host header.
_PROXYING = [
    "        proxy_http_version 1.1;",
    '        proxy_set_header Connection "";',
    "        proxy_set_header Host $host;",
]


def main_config(plan: Plan, directory: str) -> str:
    """nginx.conf: nginx -p DIR/ -c DIR/nginx.conf -g 'daemon off;' runs it, with its pid,
    logs and temporary files under DIR; it includes routing.conf."""
    module = [*(f"load_module {path};" for path in _modules(plan.options)), ""]
    temporary = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    bucket = f" bucket={BUCKET}" if plan.options.sticky_key else ""
    lines = [
        "# Generated by `migrationpilot routing export --format nginx -o DIR`: a complete",
        "# nginx configuration. Run it with",
        f"#   nginx -p {directory}/ -c {directory}/{MAIN} -g 'daemon off;'",
        "# (the same with -s reload loads a new export). The routing is routing.conf, included",
        "# below: see its leading comment.",
        "",
        *(module if plan.options.sticky_key else []),
        "# The routes are regular expressions (and so is the sticky cookie): compiled to code.",
        "pcre_jit on;",
        f"pid {directory}/nginx.pid;",
        f"error_log {directory}/logs/error.log;",
        "",
        "events {",
        "    worker_connections 1024;",
        "}",
        "",
        "http {",
        *[f"    {kind}_temp_path {directory}/temp/{kind};" for kind in temporary],
        f"    include {directory}/{SNIPPET};",
        "",
        "    log_format migrationpilot '$remote_addr [$time_local] \"$request\" $status'",
        f"        ' route=$mp_route rule=$mp_rule upstream=$mp_upstream{bucket}';",
        f"    access_log {directory}/logs/access.log migrationpilot;",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _modules(options: ExportOptions) -> tuple[str, ...]:
    """The dynamic modules the sticky bucket needs, in the order to load them."""
    if options.nginx_script is NginxScript.lua:
        return DEBIAN_LUA_MODULES
    return (options.njs_module,)


def checker(directory: str) -> list[str]:
    return ["nginx", "-t", "-p", f"{directory}/", "-c", f"{directory}/{MAIN}"]


PROXY = Proxy(
    placeholders,
    files,
    printed=SNIPPET,
    computes=lambda options: {
        NginxScript.lua: f"nginx's Lua module (lua-nginx-module: {SCRIPT_FILES[NginxScript.lua]})",
        NginxScript.njs: f"nginx's JavaScript module (njs: {SCRIPT_FILES[NginxScript.njs]})",
    }[options.nginx_script],
    checker=checker,
    serves=True,
    directories=("logs", "temp"),
)
