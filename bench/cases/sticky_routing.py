"""sticky routing: requests per second through nginx with the sticky export (`routing export
--sticky-key cookie:mp_user`: nginx's Lua module, the default `--nginx-script lua`, computes
each request's bucket from the user's cookie) against the random one (`split_clients`), from
the same rules, on the same machine, in the same run (issue 24). ApacheBench sends REQUESTS
requests over keep-alive connections from CONCURRENCY clients to a path whose route splits
30/70, so that every request needs its bucket; both nginx proxy to one small nginx upstream
that answers 200.

Each run starts the proxy from the exported `-o DIR` (nginx.conf as exported), times `ab`
alone, and stops the proxy; the upstream runs for the whole case. Every nginx started here is
stopped at exit, however the bench ends. Needs nginx, its Lua module and ab (Debian:
nginx-light, libnginx-mod-http-lua, apache2-utils): without them the case is left out, and
says so.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import time
from pathlib import Path

from bench.data import Context
from bench.measure import MP, Case, Command, case
from migrationpilot_cli.routing import DEBIAN_LUA_MODULES

NAME = "sticky routing"
REQUESTS = 20_000
CONCURRENCY = 16
PATH = "/api/accounts/42"
# The routing of the bench project: a split route the requests hit, and others around it.
RULES = [
    ("Accounts read", "/api/accounts/**", "accounts-java", "30"),
    ("Accounts summary", "/api/accounts/summary", "accounts-java", "100"),
    ("Late fees (legacy)", "/api/late-fees/**", "legacy", "10"),
    ("Late fees (modern)", "/api/late-fees/**", "modern", "90"),
    ("Orders shadow", "/api/orders/*", "orders-java", "25", "--shadow"),
    ("Everything else", "/api/**", "api-modern", "5"),
]
SERVICES = ["legacy", "accounts-java", "legacy-c49fea74", "modern", "orders-java", "api-modern"]

_running: list[subprocess.Popen[bytes]] = []


def missing() -> str | None:
    """Why the case cannot run here, or None."""
    tools = [tool for tool in ("nginx", "ab") if shutil.which(tool) is None]
    tools += [f"nginx's module {path}" for path in DEBIAN_LUA_MODULES if not Path(path).exists()]
    return f"{' and '.join(tools)} not installed" if tools else None


def build(ctx: Context) -> Case:
    project = str(ctx.target.project_id)
    for name, pattern, target, traffic, *shadow in RULES:
        _mp(
            ctx, "routing", "add", "-p", project, "--name", name, "--pattern", pattern,
            "--target", target, "--traffic", traffic, *shadow, "--enable",
        )  # fmt: skip
    upstream = _upstream(ctx.work / "upstream")
    served = [f"--upstream={service}=127.0.0.1:{upstream}" for service in SERVICES]
    sticky = _Proxy(ctx, project, "sticky", ["--sticky-key", "cookie:mp_user", *served])
    random = _Proxy(ctx, project, "random", served)
    return case(
        NAME,
        sticky.command(),
        random.command(),
        f"nginx, routing export --sticky-key cookie:mp_user (Lua): ab -k -c {CONCURRENCY}",
        "nginx, routing export (random split_clients): the same ab",
        ">= 0.9 (throughput)",
        rows=REQUESTS,
    )


def _mp(ctx: Context, *argv: str) -> None:
    subprocess.run(
        [MP, "--database-url", ctx.url, *argv], check=True, capture_output=True, text=True
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(argv: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _running.append(process)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: {argv[0]} did not start ({' '.join(argv)})") from None
            time.sleep(0.02)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process in _running:
        _running.remove(process)


@atexit.register
def _stop_all() -> None:
    for process in list(_running):
        _stop(process)


def _upstream(directory: Path) -> int:
    """A small nginx that answers 200 to everything, running for the whole case."""
    port = _free_port()
    (directory / "logs").mkdir(parents=True)
    (directory / "nginx.conf").write_text(
        f"pid {directory}/nginx.pid;\nerror_log {directory}/logs/error.log;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log off;\n    client_body_temp_path {directory}/body;\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n        keepalive_requests 100000;\n"
        '        location / { return 200 "ok"; }\n    }\n}\n'
    )
    _start(
        ["nginx", "-p", f"{directory}/", "-c", f"{directory}/nginx.conf", "-g", "daemon off;"], port
    )
    return port


class _Proxy:
    """One export of the bench project, started before each run and stopped after it."""

    def __init__(self, ctx: Context, project: str, name: str, options: list[str]) -> None:
        self.port = _free_port()
        self.directory = ctx.work / name
        _mp(
            ctx, "routing", "export", "-p", project, "--format", "nginx", "-o", str(self.directory),
            f"--listen=127.0.0.1:{self.port}", *options, "--check",
        )  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = ["-p", f"{self.directory}/", "-c", f"{self.directory}/nginx.conf"]
        self.process = _start(["nginx", *config, "-g", "daemon off;"], self.port)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    def command(self) -> Command:
        ab = ["ab", "-q", "-k", "-c", str(CONCURRENCY), "-n", str(REQUESTS)]
        ab += ["-C", "mp_user=user-174", f"http://127.0.0.1:{self.port}{PATH}"]
        return Command(ab, setup=self.start, cleanup=self.stop)
