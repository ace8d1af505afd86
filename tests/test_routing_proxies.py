"""Issue 24: the sticky exports run. A real nginx (with its Lua module, and with its
JavaScript module: each --nginx-script) and a real HAProxy, started on loopback from `routing
export -o DIR --sticky-key ...` in front of small upstream servers that answer their own name,
route every request exactly as `routing resolve --keys-from` decides the same lines: ASCII,
UTF-8 and non-UTF-8 keys, in a header or a cookie, with and without a key, over exact,
wildcard, shadow, 0%, 100%, disabled and split rules. nginx mirrors to the shadow target
exactly the requests `resolve` mirrors; a raised percentage, re-exported and reloaded, keeps
every user the target had. Envoy's Lua filter runs under Debian's luajit with a stub of
Envoy's request handle, bucket for bucket against `resolve`.

Needs nginx with its Lua and JavaScript modules (Debian: nginx-light, libnginx-mod-http-lua,
libnginx-mod-http-js), haproxy and luajit; without one, its tests are skipped and say so,
unless MIGRATIONPILOT_REQUIRE_PROXIES=1 or CI=true (.ci/run installs them), where that is a
failure. Every server a test starts is stopped when it ends.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrationpilot_cli import routing
from tests.conftest import CONSOLE_SCRIPT
from tests.test_routing import ANA, P, add, loans  # noqa: F401 (loans: a fixture)

# Read at import: the autouse fixture of conftest.py clears MIGRATIONPILOT_* inside each test.
REQUIRED = os.environ.get("MIGRATIONPILOT_REQUIRE_PROXIES") == "1" or os.environ.get("CI") == "true"
TARGET_LEGACY = routing.proxy_name("legacy")  # the upstream of the target named `legacy`
# Every service of the project below, by its upstream name (admin-new: a disabled rule's).
SERVICES = [
    "legacy",
    "accounts-java",
    "summary-svc",
    TARGET_LEGACY,
    routing.proxy_name("Interest Go"),
    "payments-new",
    "reports-new",
    "export-svc",
    "api-modern",
    "admin-new",
]
KEY_HEADER = "x-user-id"
KEY_COOKIE = "mp_user"


def need(what: str, present: object) -> None:
    if present:
        return
    reason = f"{what} is not installed: the tests of the running proxies cannot run"
    if REQUIRED:
        pytest.fail(f"{reason} (CI or MIGRATIONPILOT_REQUIRE_PROXIES=1)")
    pytest.skip(reason)


# The modules each --nginx-script loads, and the Debian package of each.
NGINX_MODULES = {
    "lua": [(path, "libnginx-mod-http-lua") for path in routing.DEBIAN_LUA_MODULES],
    "njs": [(routing.DEBIAN_NJS_MODULE, "libnginx-mod-http-js")],
}
# The running proxies: nginx with each --nginx-script, and HAProxy.
NGINXES = ["nginx/lua", "nginx/njs"]
PROXIES = [*NGINXES, "haproxy"]


def installed(proxy: str) -> tuple[str, list[str]]:
    """One of PROXIES as its --format and the export options that choose it, once it is
    installed (else the test is skipped, or fails in CI)."""
    fmt, _, script = proxy.partition("/")
    if fmt == "haproxy":
        need("haproxy (2.6 or later, with Lua)", shutil.which("haproxy"))
        return fmt, []
    need("nginx (Debian: nginx-light)", shutil.which("nginx"))
    for path, package in NGINX_MODULES[script]:
        need(f"nginx's module {path} (Debian: {package})", Path(path).exists())
    return fmt, ["--nginx-script", script]


@pytest.fixture(scope="session")
def luajit() -> str:
    need("luajit", shutil.which("luajit"))
    return "luajit"


# --- the project, its upstreams, the requests ---------------------------------------------


@pytest.fixture
def project(loans: Any) -> Any:  # noqa: F811 (the fixture imported above)
    """Every kind of rule: wildcard at 30%, exact at 100%, a split of one pattern between a
    target named `legacy` (20%) and one whose name is not a host name (50%), shadow at 40%,
    0%, disabled, a '**' inside a pattern, and a broad pattern the others beat."""
    for name, pattern, target, *extra in [
        ("Accounts read", "/api/accounts/**", "accounts-java", "--traffic", "30"),
        ("Accounts summary", "/api/accounts/summary", "summary-svc", "--traffic", "100"),
        ("Interest (legacy)", "/api/loans/*/interest", "legacy", "--traffic", "20"),
        ("Interest (Go)", "/api/loans/*/interest", "Interest Go", "--traffic", "50"),
        ("Payments shadow", "/api/payments/**", "payments-new", "--traffic", "40", "--shadow"),
        ("Reports", "/api/reports/**", "reports-new"),
        ("Exports", "/api/**/export", "export-svc", "--traffic", "60"),
        ("API", "/api/**", "api-modern", "--traffic", "10"),
    ]:
        add(loans, name, pattern, target, *extra, "--enable")
    add(loans, "Admin", "/api/admin/**", "admin-new", "--traffic", "50")  # stays disabled
    return loans


PATHS = [
    "/api/accounts/42",
    "/api/accounts/42/statements?page=2",
    "/api/accounts/summary",
    "/api/accounts/summary?fresh=1",
    "/api/accounts",
    "/api/loans/7/interest",
    "/api/loans/7/interest/",
    "/api/payments/9",
    "/api/reports/q1",
    "/api/admin/users",
    "/api/v2/loans/export",
    "/api/other",
    "/static/app.js",
    "/",
]


@dataclass(frozen=True)
class Request:
    path: str
    key: bytes | None  # None: none sent
    repeated: bool = False  # a key header sent twice (no key); a cookie in a 2nd Cookie line

    def line(self, kind: str) -> bytes:
        """The request as a `resolve --keys-from` line: PATH<TAB>KEY."""
        keyless = self.key is None or (self.repeated and kind == "header")
        return self.path.encode() + b"\t" + (b"" if keyless else self.key or b"") + b"\n"


def keys(count: int) -> list[bytes]:
    """ASCII, UTF-8 and non-UTF-8 keys, some with spaces around them."""
    made = []
    for n in range(count):
        made.append(
            [
                f"user-{n}".encode(),
                f"usér-{n}".encode(),
                f"ключ-{n}".encode(),
                f"用户{n}".encode(),
                b"\xff\xfe-" + str(n).encode(),  # not UTF-8: hashed as these bytes
                f"  user-{n} ".encode(),
            ][n % 6]
        )
    return made


def requests(count: int, seed: int = 24) -> list[Request]:
    """``count`` requests over PATHS: each key sent several times (stickiness), some without
    a key, with an empty one, or (a header) repeated."""
    chooser = random.Random(seed)
    pool = keys(count // 6)
    made = []
    for n in range(count):
        path = chooser.choice(PATHS)
        if n % 20 == 0:
            made.append(Request(path, None))
        elif n % 20 == 1:
            made.append(Request(path, b""))
        elif n % 40 == 2:
            made.append(Request(path, chooser.choice(pool), repeated=True))
        else:
            made.append(Request(path, chooser.choice(pool)))
    return made


def key_headers(kind: str, request: Request) -> list[tuple[str, bytes]]:
    """The request's key as the export reads it: the header (twice when repeated), or the
    cookie among others, sometimes in a second Cookie header."""
    if request.key is None:
        return [] if kind == "header" else [("Cookie", b"theme=dark")]
    if kind == "header":
        value = [("X-User-Id", request.key)]
        return value * 2 if request.repeated else value
    if request.repeated:  # the cookie in a second Cookie header line; a later one ignored
        return [("Cookie", b"theme=dark"), ("Cookie", KEY_COOKIE.encode() + b"=" + request.key)]
    return [("Cookie", b"theme=dark; " + KEY_COOKIE.encode() + b"=" + request.key + b"; x=1")]


def decided(mp: Any, tmp_path: Path, sent: list[Request], kind: str) -> list[dict[str, Any]]:
    """`routing resolve --keys-from` on the requests' lines, one decision each."""
    lines = tmp_path / "requests.tsv"
    lines.write_bytes(b"".join(request.line(kind) for request in sent))
    result = mp("routing", "resolve", *P, "--keys-from", str(lines), "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(decisions) == len(sent)
    return decisions


def upstream_of(decision: dict[str, Any]) -> str:
    """The upstream that serves a decision: the rule's target when it takes the request and
    is not shadow (a target named `legacy` included), else the legacy default."""
    serves = re.match(r"bucket \d+ in |traffic 100%", decision["reason"])
    return routing.proxy_name(decision["served_by"]) if serves else "legacy"


# --- the servers: upstreams that answer their name, and the proxies -------------------------


class Upstream(http.server.ThreadingHTTPServer):
    """A small upstream server on loopback: answers its name, remembers each request's
    X-Test-Seq."""

    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.name = name
        self.seen: list[str] = []
        self.lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the proxies' upstream connections are
    disable_nagle_algorithm = True  # else every answer waits for a delayed ACK (40 ms)
    server: Upstream

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.seen.append(self.headers.get("X-Test-Seq", ""))
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def upstreams() -> Iterator[dict[str, Upstream]]:
    servers = {name: Upstream(name) for name in SERVICES}
    threads = [
        threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True)
        for s in servers.values()
    ]
    for thread in threads:
        thread.start()
    try:
        yield servers
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()


def upstream_options(servers: dict[str, Upstream]) -> list[str]:
    return [f"--upstream={name}={server.address}" for name, server in servers.items()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running(argv: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A proxy in the foreground, once it accepts connections on ``port``; stopped (killed
    if need be) whatever happens."""
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                pytest.fail(f"{argv[0]} exited {process.returncode}: {log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert time.monotonic() < deadline, f"{argv[0]} never listened: {log.read_text()}"
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Client:
    """Keep-alive HTTP/1.1 on loopback; a fresh connection where the proxy closed one (a
    reload closes idle connections)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def get(self, path: str, headers: list[tuple[str, bytes]]) -> str:
        for _ in range(3):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self.connection.putrequest("GET", path, skip_accept_encoding=True)
                for name, value in headers:
                    self.connection.putheader(name, value)
                self.connection.endheaders()
                response = self.connection.getresponse()
                body = response.read().decode()
                assert response.status == 200, (path, response.status, body)
                return body
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = None
        raise AssertionError(f"no answer for {path}")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def served(client: Client, kind: str, sent: list[Request]) -> list[str]:
    """Who answered each request."""
    return [
        client.get(request.path, [*key_headers(kind, request), ("X-Test-Seq", str(n).encode())])
        for n, request in enumerate(sent)
    ]


def export(mp: Any, fmt: str, directory: Path, *options: str) -> Any:
    result = mp("routing", "export", *P, "--format", fmt, "-o", str(directory), *options)
    assert result.exit_code == 0, result.stderr
    return result


def start(fmt: str, directory: Path, port: int) -> contextlib.AbstractContextManager[Any]:
    argv = (
        ["nginx", "-p", f"{directory}/", "-c", f"{directory}/nginx.conf", "-g", "daemon off;"]
        if fmt == "nginx"
        else ["haproxy", "-db", "-f", f"{directory}/haproxy.cfg"]
    )
    return running(argv, port, directory.parent / f"{fmt}.log")


def disagreements(answers: list[str], decisions: list[dict[str, Any]]) -> list[Any]:
    return [
        (decision["path"], decision["key"], answer, upstream_of(decision))
        for answer, decision in zip(answers, decisions, strict=True)
        if answer != upstream_of(decision)
    ]


def mirrored(shadow: Upstream, expected: set[str]) -> set[str]:
    """The X-Test-Seq of the copies the shadow target received, once they stop coming."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with shadow.lock:
            seen = set(shadow.seen)
        if seen >= expected:
            time.sleep(0.2)  # any copy too many would be on its way by now
            break
        time.sleep(0.05)
    with shadow.lock:
        return set(shadow.seen)


# --- the proxies route as resolve decides ---------------------------------------------------


@pytest.mark.parametrize("kind", ["header", "cookie"])
@pytest.mark.parametrize("proxy", PROXIES)
def test_the_proxy_routes_every_request_as_resolve_decides(
    project: Any, upstreams: dict[str, Upstream], tmp_path: Path, proxy: str, kind: str
) -> None:
    fmt, chosen = installed(proxy)
    port = free_port()
    source = f"header:{KEY_HEADER}" if kind == "header" else f"cookie:{KEY_COOKIE}"
    directory = tmp_path / fmt
    exported = export(
        project, fmt, directory, "--sticky-key", source, f"--listen=127.0.0.1:{port}",
        *chosen, *upstream_options(upstreams),
    )  # fmt: skip
    sent = requests(600)
    decisions = decided(project, tmp_path, sent, kind)
    with start(fmt, directory, port):
        client = Client(port)
        answers = served(client, kind, sent)
        client.close()
        assert disagreements(answers, decisions) == []
        # Sticky: a key gets one upstream per path, however often it comes.
        by_key: dict[tuple[str, bytes], set[str]] = {}
        for one, answer in zip(sent, answers, strict=True):
            if one.key and not one.repeated:
                by_key.setdefault((one.path, one.key), set()).add(answer)
        assert max(len(answer) for answer in by_key.values()) == 1
        assert max(list(map(sent.count, sent))) > 1  # and keys did come back
        # Every kind of decision was made.
        reasons = {re.sub(r"\d+", "N", d["reason"]) for d in decisions}
        assert {"bucket N in N..N", "bucket N > N%", "traffic N%", "no rule"} <= reasons
        assert {"shadow: bucket N in N..N", "no key: traffic N%+N% needs a key to stick"} <= reasons
        to_mirror = {str(n) for n, d in enumerate(decisions) if d["mirror_to"] == "payments-new"}
        assert to_mirror
        mirrors = fmt == "nginx"
        copies = mirrored(upstreams["payments-new"], to_mirror if mirrors else set())
    if mirrors:  # nginx's mirror: exactly the requests resolve mirrors
        assert copies == to_mirror
    else:  # HAProxy cannot mirror, and says so
        assert copies == set()
        assert "warning: haproxy cannot mirror: the shadow rule 'Payments shadow'" in (
            exported.stderr
        )
    config = directory / ("routing.conf" if fmt == "nginx" else "haproxy.cfg")
    assert "admin-new" in config.read_text()  # the disabled rule's upstream is kept


@pytest.mark.parametrize("proxy", NGINXES)
def test_a_raised_percentage_reloaded_keeps_every_user_the_target_had(
    project: Any, upstreams: dict[str, Upstream], tmp_path: Path, proxy: str
) -> None:
    _, chosen = installed(proxy)
    port = free_port()
    directory = tmp_path / "nginx"
    options = ["--sticky-key", f"cookie:{KEY_COOKIE}", f"--listen=127.0.0.1:{port}", *chosen]
    export(project, "nginx", directory, *options, *upstream_options(upstreams))
    sent = [Request("/api/accounts/42", key) for key in keys(300)]
    with start("nginx", directory, port):
        client = Client(port)
        before = served(client, "cookie", sent)
        assert disagreements(before, decided(project, tmp_path, sent, "cookie")) == []
        result = project(*ANA, "routing", "set", "Accounts read", *P, "--traffic", "60")
        assert result.exit_code == 0, result.stderr
        export(project, "nginx", directory, *options, *upstream_options(upstreams))
        reload = ["nginx", "-p", f"{directory}/", "-c", f"{directory}/nginx.conf", "-s", "reload"]
        subprocess.run(reload, check=True, capture_output=True)
        decisions = decided(project, tmp_path, sent, "cookie")
        moving = next(
            n
            for n, d in enumerate(decisions)
            if upstream_of(d) == "accounts-java" and before[n] == "legacy"
        )
        deadline = time.monotonic() + 10  # the new workers take over
        while served(client, "cookie", [sent[moving]]) != ["accounts-java"]:
            assert time.monotonic() < deadline, "the reload never took effect"
            time.sleep(0.05)
        after = served(client, "cookie", sent)
        client.close()
    assert disagreements(after, decisions) == []
    kept = [n for n, answer in enumerate(before) if answer == "accounts-java"]
    assert kept and all(after[n] == "accounts-java" for n in kept)
    assert after.count("accounts-java") > before.count("accounts-java")


# --- Envoy's Lua filter, under luajit with a stub of Envoy's request handle -----------------

# Runs the filter (arg[1]) on requests (arg[2]: a line each, "x"-prefixed hex fields: the
# path, then header name and value pairs); prints the x-mp-bucket header it leaves ("-":
# none), and whether it cleared Envoy's route cache.
STUB = r"""
local function unhex(field)
  return (field:sub(2):gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end
dofile(arg[1])
for line in io.lines(arg[2]) do
  local fields = {}
  for field in line:gmatch("%S+") do fields[#fields + 1] = unhex(field) end
  local sent = { [":path"] = { fields[1] } }
  for i = 2, #fields, 2 do
    local name = fields[i]:lower()
    sent[name] = sent[name] or {}
    table.insert(sent[name], fields[i + 1])
  end
  local headers, handle, cleared = {}, {}, false
  function headers:get(name) return sent[name] and table.concat(sent[name], ",") end
  function headers:getNumValues(name) return #(sent[name] or {}) end
  function headers:getAtIndex(name, i) return (sent[name] or {})[i + 1] end
  function headers:remove(name) sent[name] = nil end
  function headers:add(name, value)
    sent[name] = sent[name] or {}
    table.insert(sent[name], value)
  end
  function handle:headers() return headers end
  function handle:clearRouteCache() cleared = true end
  envoy_on_request(handle)
  local bucket = sent["x-mp-bucket"]
  io.write(bucket and table.concat(bucket, ",") or "-", cleared and "" or " not-cleared", "\n")
end
"""


def _hex(value: bytes) -> str:
    return "x" + value.hex()


@pytest.mark.parametrize("kind", ["header", "cookie"])
def test_envoy_lua_filter_sets_the_bucket_resolve_computes(
    luajit: str, project: Any, tmp_path: Path, kind: str
) -> None:
    source = f"header:{KEY_HEADER}" if kind == "header" else f"cookie:{KEY_COOKIE}"
    result = project("routing", "export", *P, "--format", "envoy", "--sticky-key", source)
    assert result.exit_code == 0, result.stderr
    _, lua_filter = yaml.safe_load_all(result.stdout)
    (tmp_path / "filter.lua").write_text(
        lua_filter["typed_config"]["default_source_code"]["inline_string"]
    )
    sent = requests(600, seed=7) + [Request(path, b"k") for path in PATHS]
    lines = []
    for n, one in enumerate(sent):
        fields = [one.path.encode()]
        for name, value in key_headers(kind, one):
            fields += [name.encode(), value]
        if n % 3 == 0:  # a client's own bucket header: the filter replaces or removes it
            fields += [b"x-mp-bucket", b"99"]
        lines.append(" ".join(map(_hex, fields)))
    (tmp_path / "requests.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "stub.lua").write_text(STUB)
    ran = subprocess.run(
        ["luajit", *(str(tmp_path / name) for name in ("stub.lua", "filter.lua", "requests.txt"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    expected = [
        "-" if d["bucket"] is None else str(d["bucket"])
        for d in decided(project, tmp_path, sent, kind)
    ]
    assert ran.stdout.splitlines() == expected
    assert expected.count("-") < len(expected) / 2  # most requests got one


def test_without_o_the_exports_load_the_installed_scripts(project: Any) -> None:
    """On stdout, the configuration loads the scripts from the installed package; Istio gets
    the EnvoyFilter with Envoy's Lua filter after its VirtualService."""

    def exported(fmt: str, source: str, *options: str) -> str:
        result = project("routing", "export", *P, "--format", fmt, "--sticky-key", source, *options)
        assert result.exit_code == 0, result.stderr
        return str(result.stdout)

    scripts = routing.proxies.SCRIPTS
    nginx = exported("nginx", "cookie:mp.user")
    assert f'lua_package_path "{scripts}/?.lua;;";' in nginx  # --nginx-script lua, the default
    assert '"~(?:^|;)[ \\t]*mp\\.user=[ \\t]*(?<mp_key_value>[^;]*?)[ \\t]*(?:;|$)"' in nginx
    assert "set_by_lua_block $mp_bucket {" in nginx and "js_" not in nginx
    njs = exported("nginx", "cookie:mp.user", "--nginx-script", "njs")
    assert f"js_import mp_routing from {scripts}/migrationpilot.js;" in njs
    assert "js_set $mp_bucket mp_routing.bucket;" in njs and "_lua" not in njs
    assert f"lua-load-per-thread {scripts}/migrationpilot.lua" in exported(
        "haproxy", "header:X-User-Id"
    )
    assert (scripts / "migrationpilot.js").is_file() and (scripts / "migrationpilot.lua").is_file()
    service, envoy_filter = yaml.safe_load_all(exported("istio", "header:x-user-id"))
    assert service["kind"] == "VirtualService"
    inside = next(route for route in service["spec"]["http"] if route["name"] == "accounts-read/in")
    assert inside["match"][0]["headers"] == {"x-mp-bucket": {"regex": routing.bucket_regex(1, 30)}}
    assert envoy_filter["kind"] == "EnvoyFilter"
    patches = envoy_filter["spec"]["configPatches"]
    assert [patch["match"]["context"] for patch in patches] == ["SIDECAR_OUTBOUND", "GATEWAY"]
    _, lua_filter = yaml.safe_load_all(exported("envoy", "header:x-user-id"))
    assert all(patch["patch"]["value"] == lua_filter for patch in patches)


# --- -o DIR: complete, deterministic, atomic, checked -------------------------------------


@pytest.mark.parametrize(
    ("script", "loads"),
    [
        ("lua", 'lua_package_path "{directory}/?.lua;;";'),
        ("njs", "js_import mp_routing from {directory}/migrationpilot.js;"),
    ],
)
def test_exports_to_a_directory_are_deterministic_and_atomic(
    project: Any, tmp_path: Path, script: str, loads: str
) -> None:
    directory = tmp_path / "out"
    # header names are case-insensitive
    sticky = ["--sticky-key", "header:X-User-Id", "--nginx-script", script]
    export(project, "nginx", directory, *sticky, "--listen=127.0.0.1:8081")
    first = {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}
    name = f"migrationpilot.{'lua' if script == 'lua' else 'js'}"
    assert sorted(first) == [name, "nginx.conf", "routing.conf"]
    assert sorted(p.name for p in directory.iterdir() if p.is_dir()) == ["logs", "temp"]
    assert f"include {directory}/routing.conf;" in first["nginx.conf"].decode()
    assert loads.format(directory=directory) in first["routing.conf"].decode()
    assert first[name] == (routing.proxies.SCRIPTS / name).read_bytes()
    export(project, "nginx", directory, *sticky, "--listen=127.0.0.1:8081")
    again = {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}
    assert again == first  # same rules, same bytes (and no temporary file left behind)
    # A reader never sees half a file: every read is one export or the other, whole.
    versions = set()
    for port in (8081, 8082):
        export(project, "nginx", directory, *sticky, f"--listen=127.0.0.1:{port}")
        versions.add((directory / "routing.conf").read_bytes())
    reads: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            reads.add((directory / "routing.conf").read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(12):
            export(project, "nginx", directory, *sticky, f"--listen=127.0.0.1:{8081 + n % 2}")
    finally:
        stop.set()
        reader.join()
    assert reads <= versions and len(reads) > 0


@pytest.mark.parametrize("proxy", PROXIES)
def test_check_runs_the_proxys_checker_and_installs_only_what_passes(
    project: Any, tmp_path: Path, proxy: str
) -> None:
    fmt, chosen = installed(proxy)
    directory = tmp_path / "out"
    targets = ["accounts-java", "summary-svc", TARGET_LEGACY, "Interest Go", "payments-new"]
    good = [f"--upstream={name}=127.0.0.1:9000" for name in ["legacy", *targets]]
    good += ["--upstream=reports-new=127.0.0.1:9000", "--upstream=export-svc=127.0.0.1:9000"]
    good += ["--upstream=api-modern=127.0.0.1:9000"]
    sticky = ["--sticky-key", "cookie:sid", *chosen]
    passed = project("routing", "export", *P, "--format", fmt, *sticky, *good)
    assert passed.exit_code == 0, passed.stderr
    checked = project(
        "routing", "export", *P, "--format", fmt, *sticky, *good, "-o", str(directory), "--check"
    )
    assert checked.exit_code == 0, checked.stderr
    files = sorted(path.name for path in directory.iterdir())
    njs = proxy == "nginx/njs"
    failing = (
        ["--njs-module", str(tmp_path / "missing.so")]
        if njs
        else ["--upstream=api-modern=no-such-host.invalid:80"]
    )
    before = {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}
    failed = project(
        "routing", "export", *P, "--format", fmt, *sticky, *good, *failing, "-o", str(directory),
        "--check", "--listen=127.0.0.1:9999",
    )  # fmt: skip
    assert failed.exit_code == 1
    (line,) = failed.stderr.splitlines()
    checker = "nginx -t" if fmt == "nginx" else "haproxy -c"
    assert line.startswith(f"error: {checker} failed: ") and line.endswith("; nothing written")
    assert ("missing.so" if njs else "no-such-host.invalid") in line
    assert not re.search(r"\d+#\d+:|\(\d+\) :", line)  # without the checker's process id
    assert sorted(path.name for path in directory.iterdir()) == files  # nothing new
    assert {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()} == before


# --- bad input: one line, exit 2, nothing written -----------------------------------------

BAD_OPTIONS = [
    (["--upstream", "legacy"], "--upstream 'legacy': expected NAME=HOST:PORT"),
    (["--upstream", "legacy=10.0.0.5"], "--upstream legacy '10.0.0.5': expected HOST:PORT"),
    (["--upstream", "legacy=10.0.0.5:65536"], "the port must be a number from 1 to 65535"),
    (["--upstream", "legacy=10.0.0.5:http"], "the port must be a number from 1 to 65535"),
    (["--upstream", "legacy=bad_host:80"], "the host must be a host name"),
    (["--listen", "[::zz]:80"], "the host must be a host name"),
    (["--listen", ":80"], "--listen ':80': expected HOST:PORT"),
    (["--sticky-key", "query:user"], "expected header:NAME or cookie:NAME"),
    (["--sticky-key", "header:"], "--sticky-key 'header:': the header name is empty"),
    (["--sticky-key", "cookie:"], "--sticky-key 'cookie:': the cookie name is empty"),
    (["--sticky-key", "cookie:a;b"], "a cookie name of letters, digits and !&*+.^_|~-"),
    (["--sticky-key", "header:x_user"], "a header name of letters, digits and '-'"),
    (["--sticky-key", "header:x", "--sticky-header", "x-mp-bucket"], "exclude each other"),
    (["--nginx-script", "njs"], "--nginx-script: for --format nginx with --sticky-key"),
    (["--sticky-key", "cookie:s", "--nginx-script", "perl"], "Invalid value for '--nginx-script'"),
    (["--njs-module", "/x.so"], "--njs-module: for --nginx-script njs"),
    (["--sticky-key", "cookie:s", "--njs-module", "/x.so"], "--njs-module: for --nginx-script njs"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_export_options_are_one_line_exit_2_and_write_nothing(
    mp: Any, tmp_path: Path, options: list[str], message: str
) -> None:
    """Checked before any work: the project is not even looked up."""
    directory = tmp_path / "out"
    result = mp("routing", "export", *P, "--format", "nginx", *options, "-o", str(directory))
    assert result.exit_code == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line
    assert result.stdout == "" and not directory.exists()


def test_options_a_format_does_not_take_are_exit_2(project: Any, tmp_path: Path) -> None:
    for fmt, options, message in [
        ("envoy", ["--listen", "127.0.0.1:80"], "--listen: for --format nginx or haproxy"),
        ("istio", ["--upstream", "legacy=127.0.0.1:80"], "--upstream: for --format nginx or"),
        ("envoy", ["-o", str(tmp_path / "out"), "--check"], "--check runs nginx -t"),
        ("nginx", ["--check"], "--check runs nginx -t or haproxy -c on the files of -o DIR"),
        ("haproxy", ["--sticky-key", "cookie:s", "--njs-module", "/x.so"], "--njs-module: for"),
        ("haproxy", ["--sticky-key", "cookie:s", "--nginx-script", "lua"], "--nginx-script: for"),
    ]:
        result = project("routing", "export", *P, "--format", fmt, *options)
        assert (result.exit_code, result.stdout) == (2, ""), result.stderr
        assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_upstreams_once_given_are_needed_for_legacy_and_every_enabled_target(
    project: Any, tmp_path: Path
) -> None:
    def exported(*upstreams: str) -> Any:
        options = [f"--upstream={value}" for value in upstreams]
        return project("routing", "export", *P, "--format", "haproxy", *options)

    everyone = [f"{name}=127.0.0.1:{9000 + n}" for n, name in enumerate(SERVICES)]
    complete = exported(*everyone)
    assert complete.exit_code == 0, complete.stderr
    assert "backend admin-new\n    server admin-new-1 127.0.0.1:9009\n" in complete.stdout
    without_legacy = exported(*everyone[1:])
    assert without_legacy.exit_code == 2
    assert "--upstream: none for legacy, the legacy default" in without_legacy.stderr
    named = exported(*[u for u in everyone if not u.startswith("interest-go")])
    assert named.exit_code == 2
    assert (
        "none for the target 'Interest Go' of the enabled rule 'Interest (Go)':"
        " add --upstream 'Interest Go=HOST:PORT'"
    ) in named.stderr
    target_legacy = exported(*[u for u in everyone if not u.startswith(TARGET_LEGACY)])
    assert target_legacy.exit_code == 2  # `legacy=` is the legacy default: it has its own name
    assert (
        "target 'legacy' of the enabled rule 'Interest (legacy)':"
        f" add --upstream {TARGET_LEGACY}=HOST:PORT"
    ) in target_legacy.stderr
    # A target by its name in the rules, or by its name in the exports; servers add up.
    by_name = exported(*everyone, "Interest Go=127.0.0.1:9100", "legacy=[::1]:9001")
    assert by_name.exit_code == 0, by_name.stderr
    backend = f"backend {routing.proxy_name('Interest Go')}\n"
    assert backend + "    server interest-go" in by_name.stdout
    assert "127.0.0.1:9100" in by_name.stdout.split(backend, 1)[1].split("\n\n", 1)[0]
    assert "    server legacy-2 [::1]:9001\n" in by_name.stdout


def _unwritable(tmp_path: Path) -> Path:
    """A directory this process cannot write in (root writes anywhere but in sysfs)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        return locked
    if not os.access("/sys/kernel", os.W_OK) or not Path("/sys/kernel").is_dir():
        pytest.skip("no directory that root cannot write")
    return Path("/sys/kernel")


def test_o_onto_a_file_or_an_unwritable_directory_is_exit_2(project: Any, tmp_path: Path) -> None:
    onto = tmp_path / "a-file"
    onto.write_text("mine\n")
    result = project("routing", "export", *P, "--format", "nginx", "-o", str(onto))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: -o {onto}: not a directory; nothing written\n"
    assert onto.read_text() == "mine\n"
    locked = _unwritable(tmp_path)
    before = sorted(path.name for path in locked.iterdir())
    for directory in (locked, locked / "new" / "deeper"):
        result = project("routing", "export", *P, "--format", "nginx", "-o", str(directory))
        assert (result.exit_code, result.stdout) == (2, ""), result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: -o {directory}: cannot write there (")
        assert line.endswith("); nothing written")
    assert sorted(path.name for path in locked.iterdir()) == before


# --- keys as they arrive ----------------------------------------------------------------------


def test_resolve_keys_from_hashes_each_key_as_its_bytes(
    project: Any, database_url: str, tmp_path: Path
) -> None:
    """A key that is not UTF-8 is hashed as its bytes, as the proxies hash a header; the
    output shows such a byte as \\xff. Spaces and tabs around a key go, as HTTP drops them;
    an empty key is no key."""
    from migrationpilot_cli.routing.decision import bucket

    lines = tmp_path / "keys.tsv"
    lines.write_bytes(
        b"/api/accounts/1\t\xff\xfe-1\n/api/accounts/1\t \tuser-1 \t\n/api/accounts/1\t  \n"
    )
    result = project("routing", "resolve", *P, "--keys-from", str(lines), "--format", "json")
    assert result.exit_code == 0, result.stderr
    raw, spaced, empty = json.loads(result.stdout)
    group = "accounts-read"
    assert raw["key"] == "\\xff\\xfe-1"
    assert raw["bucket"] == bucket(group, b"\xff\xfe-1".decode("utf-8", "surrogateescape"))
    import mmh3

    assert raw["bucket"] == mmh3.hash(b"accounts-read:\xff\xfe-1", 0, signed=False) % 100 + 1
    assert (spaced["key"], spaced["bucket"]) == ("user-1", bucket(group, "user-1"))
    assert (empty["key"], empty["bucket"], empty["sticky"]) == (None, None, False)
    resolve = ["routing", "resolve", *P, "--keys-from", "-", "--format", "jsonl"]
    piped = subprocess.run(  # stdin too, through the console script
        [CONSOLE_SCRIPT, "--database-url", database_url, *resolve],
        input=lines.read_bytes(),
        capture_output=True,
        check=True,
    )
    assert [json.loads(line) for line in piped.stdout.splitlines()] == [raw, spaced, empty]
    single = project("routing", "resolve", "/api/accounts/1", *P, "--key", "", "--format", "json")
    assert json.loads(single.stdout)["reason"] == "no key: traffic 30% needs a key to stick"
