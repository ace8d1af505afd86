"""`migrationpilot routing ...`: strangler-fig routing rules, their decisions and exports.

Every change moves production traffic: it is validated before anything is written and
audited with the old and the new values. See docs/routing.md."""

import dataclasses
import itertools
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from migrationpilot_cli import routing
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.options import OrgOption, ProjectOption, examples
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    notice,
    render,
    render_record,
    warning,
)
from migrationpilot_cli.queries import organizations, projects
from migrationpilot_cli.queries import routing as rules

# What a change needs, in the organization and in the project (V0009, V0015).
_CHANGE = ("architect", "change routing rules")

app = typer.Typer(
    help="Routing: move live traffic from legacy to the new services, a percentage at a time.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(help="The rule's name (in any case) or slug.")]
PatternOption = Annotated[
    str | None,
    typer.Option(
        "--pattern", help="Path pattern: '*' is one segment, '**' any number.", show_default=False
    ),
]
TargetOption = Annotated[
    str | None,
    typer.Option("--target", help="The service that gets the traffic.", show_default=False),
]
TrafficOption = Annotated[
    int | None,
    typer.Option("--traffic", help="Percentage of matching requests, 0..100.", show_default=False),
]
RESOLVE_COLUMNS = (
    "path",
    "key",
    "rule",
    "served_by",
    "mirror_to",
    "bucket",
    "traffic",
    "sticky",
    "reason",
)


@app.command(
    epilog=examples(
        'migrationpilot routing add -p "Loans core" --name "Accounts read" \\',
        "  --pattern '/api/accounts/**' --target accounts-java --traffic 10",
    )
)
def add(
    ctx: typer.Context,
    project: ProjectOption,
    name: Annotated[
        str, typer.Option("--name", help="Free text, unique in the project; gives the slug.")
    ],
    pattern: Annotated[str, typer.Option("--pattern", help="e.g. '/api/accounts/**'.")],
    target: Annotated[str, typer.Option("--target", help="The service, e.g. accounts-java.")],
    traffic: Annotated[int, typer.Option("--traffic", help="Percentage, 0..100.")] = 0,
    shadow: Annotated[
        bool, typer.Option("--shadow", help="Serve legacy; mirror the percentage to the target.")
    ] = False,
    enable: Annotated[bool, typer.Option("--enable", help="Put it in effect at once.")] = False,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Add a routing rule (disabled unless --enable); the database derives its slug.

    Rules on a pattern that already has some split its requests among their targets."""
    values = {
        "name": routing.rule_name(name),
        "pattern": routing.pattern(pattern),
        "target": routing.target_service(target),
        "traffic": routing.traffic(traffic),
        "shadow": shadow,
        "enabled": enable,
    }
    with transaction(ctx.obj, requires=_CHANGE) as conn:
        found = projects.resolve(conn, project, org, requires=_CHANGE)
        rules.refuse_duplicate_name(conn, found, name)
        rule = rules.create(conn, found, values)
    if not enable:
        command = f"migrationpilot routing enable {rule['slug']} -p {found['id']}"
        notice(f"added disabled: `{command}` to apply")
    render_record(rule, fmt=fmt, quiet=quiet)


@app.command(
    "list",
    epilog=examples(
        'migrationpilot routing list -p "Loans core" --enabled',
        "migrationpilot routing list --fields name,slug,pattern,traffic --format csv",
    ),
)
@listing(rules.COLUMNS)
def list_(
    ctx: typer.Context,
    project: Annotated[
        str | None,
        typer.Option(
            "--project", "-p", help="Project id or name. Default: all.", rich_help_panel="Filters"
        ),
    ] = None,
    enabled: Annotated[
        bool, typer.Option("--enabled", help="Only rules in effect.", rich_help_panel="Filters")
    ] = False,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Routing rules, each project's in precedence order: the first match wins.

    The rules of one pattern (a split) come together, oldest first. With --org alone, that
    organization's."""
    with transaction(ctx.obj) as conn:
        found = rules.list_all(
            conn,
            project_id=projects.resolve(conn, project, org)["id"] if project else None,
            organization_id=organizations.id_of(conn, org),
            enabled_only=enabled,
        )
    ordered = [
        row
        for _, project_rows in itertools.groupby(found, key=lambda row: row["project_id"])
        for row in _in_precedence(list(project_rows))
    ]
    render(
        ordered,
        rules.COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        title="Routing rules",
        table_columns=rules.TABLE_COLUMNS,
    )


def _in_precedence(project_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One project's rules in precedence order, disabled ones where they would rank once
    enabled."""
    by_slug = {row["slug"]: row for row in project_rows}
    ranked = routing.in_precedence(rules.as_rule(row) for row in project_rows)
    return [by_slug[rule.slug] for rule in ranked]


@app.command(
    epilog=examples('migrationpilot routing show loan-interest -p "Loans core" --format json')
)
def show(
    ctx: typer.Context,
    name: NameArgument,
    project: ProjectOption,
    org: OrgOption = None,
    fmt: FormatOption = None,
) -> None:
    """One rule, with its slug and the regular expression it is matched by.

    Every export and `resolve` match a request against that regular expression."""
    with transaction(ctx.obj) as conn:
        rule = rules.get(conn, projects.resolve(conn, project, org), name)
    render_record({**rule, "regex": routing.regex(rule["pattern"])}, fmt=fmt)


@app.command(
    "set",
    epilog=examples(
        'migrationpilot routing set loan-interest -p "Loans core" --traffic 50',
        'migrationpilot routing set loan-interest -p "Loans core" --name "Loan interest"',
    ),
)
def set_(
    ctx: typer.Context,
    name: NameArgument,
    project: ProjectOption,
    new_name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Rename; the slug stays (and the buckets).", show_default=False
        ),
    ] = None,
    traffic: TrafficOption = None,
    shadow: Annotated[
        bool | None,
        typer.Option("--shadow/--no-shadow", help="Mirror instead of serve.", show_default=False),
    ] = None,
    target: TargetOption = None,
    pattern: PatternOption = None,
    org: OrgOption = None,
    fmt: FormatOption = None,
) -> None:
    """Change a rule's name, traffic, shadow mode, target or pattern.

    Renaming keeps the slug, so the users in each bucket stay where they are."""
    requested: dict[str, Any] = {
        "name": None if new_name is None else routing.rule_name(new_name),
        "traffic": None if traffic is None else routing.traffic(traffic),
        "shadow": shadow,
        "target": None if target is None else routing.target_service(target),
        "pattern": None if pattern is None else routing.pattern(pattern),
    }
    requested = {field: value for field, value in requested.items() if value is not None}
    if not requested:
        raise BadInput(
            "nothing to change: give --name, --traffic, --shadow/--no-shadow, --target or --pattern"
        )
    with transaction(ctx.obj, requires=_CHANGE) as conn:
        found = projects.resolve(conn, project, org, requires=_CHANGE)
        before = rules.get(conn, found, name, for_update=True)
        changes = {field: value for field, value in requested.items() if value != before[field]}
        if "name" in changes:
            rules.refuse_duplicate_name(conn, found, changes["name"], other_than=before["id"])
        after = _change(conn, before, changes)
    render_record(after, fmt=fmt)


def _change(conn: Any, before: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply ``changes`` (the database audits them); a request that changes nothing writes
    nothing."""
    if not changes:
        notice(f"{before['name']}: nothing changed")
        return before
    return rules.update(conn, before["id"], changes)


@app.command(epilog=examples('migrationpilot routing enable payoff-quote -p "Loans core"'))
def enable(
    ctx: typer.Context,
    name: NameArgument,
    project: ProjectOption,
    org: OrgOption = None,
    fmt: FormatOption = None,
) -> None:
    """Put a rule in effect: its percentage of matching requests goes to its target."""
    _switch(ctx, name, project, org, fmt, enabled=True)


@app.command(epilog=examples('migrationpilot routing disable loan-interest -p "Loans core"'))
def disable(
    ctx: typer.Context,
    name: NameArgument,
    project: ProjectOption,
    org: OrgOption = None,
    fmt: FormatOption = None,
) -> None:
    """Take a rule out of effect: its requests fall to the next matching route, or legacy.

    In a split, the rules after it move up into its buckets."""
    _switch(ctx, name, project, org, fmt, enabled=False)


def _switch(
    ctx: typer.Context,
    name: str,
    project: str,
    org: str | None,
    fmt: Any,
    *,
    enabled: bool,
) -> None:
    with transaction(ctx.obj, requires=_CHANGE) as conn:
        found = projects.resolve(conn, project, org, requires=_CHANGE)
        before = rules.get(conn, found, name, for_update=True)
        changes = {} if before["enabled"] == enabled else {"enabled": enabled}
        after = _change(conn, before, changes)
    render_record(after, fmt=fmt)


@app.command(epilog=examples('migrationpilot routing remove payoff-quote -p "Loans core"'))
def remove(
    ctx: typer.Context,
    name: NameArgument,
    project: ProjectOption,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Delete a rule; prints what it was (the audit log keeps it too)."""
    with transaction(ctx.obj, requires=_CHANGE) as conn:
        found = projects.resolve(conn, project, org, requires=_CHANGE)
        before = rules.get(conn, found, name, for_update=True)
        rules.delete(conn, before["id"])
    render_record(before, fmt=fmt, quiet=quiet)


@app.command(
    epilog=examples(
        'migrationpilot routing resolve /api/loans/42/interest -p "Loans core" --key user-174',
        'migrationpilot routing resolve /api/loans/42/interest -p "Loans core" \\',
        "  --keys-from - --summary < keys.txt",
    )
)
def resolve(
    ctx: typer.Context,
    project: ProjectOption,
    path: Annotated[
        str | None,
        typer.Argument(
            help="The request path. Without it, --keys-from lines are tab-separated PATH and KEY.",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="The sticky key: user or session id.", show_default=False),
    ] = None,
    keys_from: Annotated[
        str | None,
        typer.Option(
            "--keys-from",
            metavar="FILE",
            help="Many keys, one a line ('-' = stdin): one decision a line, or --summary.",
            show_default=False,
        ),
    ] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="With --keys-from: counts per rule instead.")
    ] = False,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print only served_by, one a line.", rich_help_panel="Output"
        ),
    ] = False,
) -> None:
    """Where a request goes, and why: the deciding rule, bucket, served_by, mirror_to.

    With --keys-from, one decision per key (a line each), or --summary counts per rule."""
    if keys_from is not None and key is not None:
        raise BadInput("--key and --keys-from exclude each other")
    if summary and keys_from is None:
        raise BadInput("--summary counts the decisions of --keys-from")
    single_path = None if path is None else routing.request_path(path)
    if keys_from is not None:
        requests = list(_requests(keys_from, single_path))
    elif single_path is not None:
        requests = [(single_path, _key(key))]
    else:
        raise BadInput("give the request PATH (or --keys-from with PATH<TAB>KEY lines)")
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        rows = rules.list_all(conn, project_id=found["id"], enabled_only=True)
    decisions = _decide([rules.as_rule(row) for row in rows], requests)
    if keys_from is None:
        render_record(decisions[0], fmt=fmt, quiet=quiet, id_column="served_by")
    elif summary:
        render(routing.summarize(decisions), routing.SUMMARY_COLUMNS, fmt=fmt, title="Routing")
    else:
        render(decisions, RESOLVE_COLUMNS, fmt=fmt, quiet=quiet, id_column="served_by")


def _decide(
    project_rules: list[routing.Rule], requests: Iterable[tuple[str, str | None]]
) -> list[dict[str, Any]]:
    matched: dict[str, list[routing.Route]] = {}  # many keys share a path: match it once
    decisions = []
    for path, key in requests:
        if path not in matched:
            matched[path] = routing.matching(project_rules, path)
        decision = routing.decide(matched[path], path, key)
        decision.update(path=_shown(path), key=None if key is None else _shown(key))
        decisions.append(decision)
    return decisions


def _key(text: str | None) -> str | None:
    """A key as the proxies take a header or cookie value: without the spaces and tabs
    around it; empty, no key."""
    return (text or "").strip(" \t") or None


def _shown(text: str) -> str:
    """A path or key of --keys-from as the output shows it: a byte that is not UTF-8 (which
    the bucket hashes as it is) written \\xff, as the error messages do."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _requests(source: str, path: str | None) -> Iterator[tuple[str, str | None]]:
    """(path, key) per non-blank line: a key for ``path``, or PATH<TAB>KEY without it (the
    key may be missing: a request without one)."""
    found = False
    for number, line in enumerate(_lines(source), start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        found = True
        if path is not None:
            yield path, _key(text)
            continue
        request, _, key = text.partition("\t")
        try:
            yield routing.request_path(request), _key(key)
        except BadInput as error:
            raise BadInput(f"{_where(source)} line {number}: {error.message}") from error
    if not found:
        raise BadInput(f"{_where(source)}: no keys")


def _where(source: str) -> str:
    return "stdin" if source == "-" else source


def _lines(source: str) -> Iterable[str]:
    """The lines of --keys-from. Not decoded strictly, unlike every other input: a key is
    hashed as its bytes, as the proxies hash a header or cookie value (docs/routing.md), so a
    byte that is not UTF-8 stays itself (surrogateescape) for the bucket."""
    from migrationpilot_cli.inputs import read_bytes

    return read_bytes(source, "--keys-from").decode("utf-8", "surrogateescape").split("\n")


@app.command(
    epilog=examples(
        'migrationpilot routing export -p "Loans core" --format istio > routing.yaml',
        'migrationpilot routing export -p "Loans core" --format nginx --sticky-key cookie:sid \\',
        "  --listen 0.0.0.0:8080 --upstream legacy=10.0.0.5:8080 \\",
        "  --upstream accounts-java=10.0.0.7:8080 -o /etc/migrationpilot/nginx --check",
    )
)
def export(
    ctx: typer.Context,
    project: ProjectOption,
    fmt: Annotated[
        routing.ExportFormat,
        typer.Option("--format", help="The proxy: nginx, haproxy, envoy or istio."),
    ],
    sticky_key: Annotated[
        str | None,
        typer.Option(
            "--sticky-key",
            metavar="header:NAME|cookie:NAME",
            help="The proxy computes each request's bucket from this key, as resolve does.",
            show_default=False,
        ),
    ] = None,
    sticky_header: Annotated[
        str | None,
        typer.Option(
            "--sticky-header",
            help="Split on this precomputed bucket header (e.g. x-mp-bucket), not at random.",
            show_default=False,
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="nginx, haproxy: the address to listen on (default: port 80).",
            show_default=False,
        ),
    ] = None,
    upstreams: Annotated[
        list[str] | None,
        typer.Option(
            "--upstream",
            metavar="NAME=HOST:PORT",
            help="nginx, haproxy: a server of legacy or of a target (repeat for each).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            help="Write every file the proxy needs into DIR, atomically, instead of stdout.",
            show_default=False,
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="With -o: run nginx -t or haproxy -c first; install only if it passes."
        ),
    ] = False,
    nginx_script: Annotated[
        routing.NginxScript | None,
        typer.Option(
            "--nginx-script",
            help="nginx --sticky-key: the module that computes the bucket: lua (the default,"
            " the faster; Debian: libnginx-mod-http-lua) or njs (libnginx-mod-http-js).",
            show_default=False,
        ),
    ] = None,
    njs_module: Annotated[
        str | None,
        typer.Option(
            "--njs-module",
            metavar="PATH",
            help="nginx --sticky-key --nginx-script njs: the njs module"
            f" (default {routing.DEBIAN_NJS_MODULE}).",
            show_default=False,
        ),
    ] = None,
    org: OrgOption = None,
) -> None:
    """The project's enabled rules as nginx, HAProxy, Envoy or Istio configuration.

    An nginx snippet for http {} (with -o, also a complete nginx.conf), a complete
    haproxy.cfg, an Envoy route configuration or an Istio VirtualService, routes in
    precedence order, named by the rules' slugs; with --sticky-key the proxy itself sends
    each user where `resolve` does, every time. See docs/routing.md."""
    from migrationpilot_cli.commands import routing_files  # only this command writes files

    options = _export_options(
        fmt, sticky_key, sticky_header, listen, upstreams, nginx_script, njs_module
    )
    directory = None if output is None else routing_files.directory_of(output)
    if check and (directory is None or fmt.proxy.checker is None):
        raise BadInput("--check runs nginx -t or haproxy -c on the files of -o DIR: give both")
    with transaction(ctx.obj) as conn:
        found = projects.resolve(conn, project, org)
        rows = rules.list_all(conn, project_id=found["id"], enabled_only=True)
    enabled = [rules.as_rule(row) for row in rows]

    def render(into: Path | None) -> routing.Export:
        return routing.build(
            fmt,
            enabled,
            project=found["name"],
            project_id=found["id"],
            options=dataclasses.replace(options, directory=None if into is None else str(into)),
        )

    exported = (
        render(None) if directory is None else routing_files.install(render, directory, check=check)
    )
    for line in exported.warnings:
        warning(line)
    if directory is None:
        sys.stdout.write(exported.text)
        sys.stdout.flush()
    else:
        notice(f"wrote {', '.join(file.name for file in exported.files)} into {directory}")


def _export_options(
    fmt: routing.ExportFormat,
    sticky_key: str | None,
    sticky_header: str | None,
    listen: str | None,
    upstreams: list[str] | None,
    script: routing.NginxScript | None,
    njs_module: str | None,
) -> routing.ExportOptions:
    """The options, each checked (exit 2) before any work."""
    if script is not None and (fmt is not routing.ExportFormat.nginx or not sticky_key):
        raise BadInput("--nginx-script: for --format nginx with --sticky-key, which runs it")
    script = script or routing.NginxScript.lua
    if njs_module is not None and script is not routing.NginxScript.njs:
        raise BadInput("--njs-module: for --nginx-script njs (nginx, --sticky-key), which loads it")
    options = routing.ExportOptions(
        sticky_header=None if sticky_header is None else routing.header_name(sticky_header),
        sticky_key=None if sticky_key is None else routing.sticky_key(sticky_key),
        listen=None if listen is None else routing.address("--listen", listen),
        upstreams=tuple(routing.upstream(value) for value in upstreams or ()),
        nginx_script=script,
        njs_module=njs_module or routing.DEBIAN_NJS_MODULE,
    )
    routing.refuse_unused(fmt, options)
    return options
