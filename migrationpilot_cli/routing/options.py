"""What `routing export` is told about the proxy's surroundings, checked as it is parsed (no
I/O): where a request's sticky key is (``--sticky-key``), the address to listen on
(``--listen``) and the servers of the upstreams (``--upstream``).

docs/routing.md describes each option; a bad value is one line, exit 2.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum

from migrationpilot_cli.errors import BadInput

HEADER = "header"
COOKIE = "cookie"

# The patterns are strings the re module compiles on first use: the routing commands that
# import this module without taking a sticky key or an address do not pay for them.
# A header name nginx turns into a variable ($http_x_user_id) without surprise: letters,
# digits and dashes (nginx drops headers with underscores unless told otherwise).
_HEADER_NAME = r"[A-Za-z0-9][A-Za-z0-9-]*"
# A cookie name (an RFC 6265 token) that goes into an nginx string, an HAProxy argument and
# a Lua string as it is: no quotes, '$', '#', '%', ',', '(', ')' or backslash.
_COOKIE_NAME = r"[A-Za-z0-9!&*+.^_|~-]+"
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*"
_PORT = r"[0-9]{1,5}"
_MAX_NAME = 100


@dataclass(frozen=True)
class StickyKey:
    """Where the proxy finds a request's key: a header (its name in lower case) or a
    cookie (its name as sent: cookie names are case-sensitive)."""

    kind: str  # HEADER or COOKIE
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def described(self) -> str:
        return f"the {'request header' if self.kind == HEADER else 'cookie'} {self.name}"


def sticky_key(value: str) -> StickyKey:
    """``header:NAME`` or ``cookie:NAME``."""
    kind, colon, name = value.partition(":")
    if not colon or kind not in (HEADER, COOKIE):
        raise BadInput(
            f"--sticky-key {value!r}: expected header:NAME or cookie:NAME"
            " (e.g. header:x-user-id, cookie:session)"
        )
    allowed, spelled = (
        (_HEADER_NAME, "letters, digits and '-'")
        if kind == HEADER
        else (_COOKIE_NAME, "letters, digits and !&*+.^_|~-")
    )
    if not name:
        raise BadInput(f"--sticky-key {value!r}: the {kind} name is empty")
    if len(name) > _MAX_NAME or not re.fullmatch(allowed, name):
        raise BadInput(f"--sticky-key {value!r}: a {kind} name of {spelled}, at most {_MAX_NAME}")
    return StickyKey(kind, name.lower() if kind == HEADER else name)


class NginxScript(StrEnum):
    """What computes the sticky bucket in nginx (``--nginx-script``): nginx's Lua module
    (lua-nginx-module, LuaJIT) or its JavaScript module (njs). Lua is the default: it keeps
    over 0.9 of the random export's throughput, where njs 0.7, which clones a VM for each
    request and interprets the hash, does not (docs/benchmarks.md, sticky routing)."""

    lua = "lua"
    njs = "njs"


@dataclass(frozen=True)
class Address:
    host: str  # a host name, an IPv4 address, or an IPv6 address (without brackets)
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def address(option: str, value: str) -> Address:
    """``HOST:PORT``: a host name, an IPv4 address or ``[IPv6]``, and a port 1..65535."""
    host, colon, port = value.rpartition(":")
    if not colon or not host:
        raise BadInput(f"{option} {value!r}: expected HOST:PORT (e.g. 127.0.0.1:8080)")
    if not re.fullmatch(_PORT, port) or not 1 <= int(port) <= 65535:
        raise BadInput(f"{option} {value!r}: the port must be a number from 1 to 65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            return Address(str(ipaddress.IPv6Address(host[1:-1])), int(port))
        except ValueError:
            pass
    elif re.fullmatch(_HOST_NAME, host) and len(host) <= 253:
        return Address(host, int(port))
    raise BadInput(
        f"{option} {value!r}: the host must be a host name, an IPv4 address or [an IPv6 one]"
    )


@dataclass(frozen=True)
class Upstream:
    service: str  # `legacy` (the legacy default) or a target, as the rules name it
    address: Address


def upstream(value: str) -> Upstream:
    """``NAME=HOST:PORT``: a server of the legacy default (``legacy``) or of a target."""
    service, equals, where = value.rpartition("=")  # a target's name may hold a '='
    if not equals or not service.strip():
        raise BadInput(
            f"--upstream {value!r}: expected NAME=HOST:PORT, NAME being legacy or a target"
            " (e.g. legacy=10.0.0.5:8080)"
        )
    return Upstream(service, address(f"--upstream {service}", where))
