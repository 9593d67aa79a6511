"""Requests from a web page that is not Vigil's own are refused: CSRF and DNS rebinding (ASGI middleware).

A page on another site can make a browser send a "simple" POST to the API (a `no-cors` fetch or a
form), and with DNS rebinding (a name of the attacker's that first points to their server, then to
127.0.0.1 or the camera) it can even read the answers. Both need a browser, and a browser says where a
request comes from. So:

- Every request's `Host` must be a name the API is served under: an IP address (a browser at
  http://192.168.0.90:8080/ is on the camera's own origin; rebinding needs a DNS name), a name
  without a dot (localhost, a LAN host name: public DNS cannot serve those), a `.local` (mDNS)
  name, this machine's host name, or one listed in `api.allowed_hosts` (`*`: any).
- A change (POST, PUT, PATCH, DELETE) is refused when the browser says it comes from elsewhere:
  an `Origin` that is not the served host (browsers send Origin with every POST), `Origin: null`,
  `Sec-Fetch-Site: cross-site`, or a form's content type (text/plain, urlencoded, multipart)
  without a bearer token, which is what an old browser's cross-site form sends. curl, Home
  Assistant and scripts send none of these and are not affected.
- Behind a reverse proxy (the camera's Apache), the name the browser used is in
  `X-Forwarded-Host`. A proxy on this machine rewrites Host to a loopback name, and its own access
  control (the camera's login) applies, so the forwarded name is taken as served; otherwise the
  forwarded name must pass the same check as Host.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import socket
from typing import Iterable
from urllib.parse import urlsplit

from app.api.config import is_loopback
from app.callbacks import Guarded

log = logging.getLogger("app.api.server")

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def split_host(value: str) -> tuple[str, int | None]:
    """'Name:port' or '[v6]:port' as (lower-case name without a trailing dot, port or None)."""
    v = value.strip().lower()
    port: int | None = None
    if v.startswith("["):
        end = v.find("]")
        name, rest = (v[1:end], v[end + 1:]) if end > 0 else (v, "")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif v.count(":") == 1:
        name, _, p = v.partition(":")
        port = int(p) if p.isdigit() else None
    else:
        name = v  # a bare IPv6 address, or a name
    return name.rstrip("."), port


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def is_loopback_name(name: str) -> bool:
    """Whether a browser reaches `name` on its own machine: a loopback bind's names, and *.localhost (RFC 6761)."""
    return is_loopback(name) or name in LOOPBACK_NAMES or name.endswith(".localhost")


class HostPolicy:
    """Which Host names are served (api.allowed_hosts plus the defaults above)."""

    def __init__(self, allowed: Iterable[str], bound: str) -> None:
        entries = [a.strip().lower().rstrip(".") for a in allowed]
        self.any = "*" in entries
        self.exact = {e for e in entries if not e.startswith(".")}
        self.suffixes = tuple(e for e in entries if e.startswith("."))
        me = socket.gethostname().lower()
        self.exact |= {me, f"{me}.local", split_host(bound)[0]}

    def allows(self, name: str) -> bool:
        if self.any or name in self.exact or is_ip(name) or "." not in name or name.endswith(".local"):
            return True
        return any(name.endswith(s) or name == s[1:] for s in self.suffixes)


async def answer(send, code: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def origin_matches(origin: str, served: str) -> bool:
    """Whether a browser's Origin is the served host: same name, and the same port when Host names one."""
    try:
        o = urlsplit(origin)
        o_port = o.port or {"http": 80, "https": 443}.get(o.scheme)
    except ValueError:
        return False
    name, port = split_host(served)
    if (o.hostname or "").rstrip(".") != name:
        return False
    return port is None or port == o_port


class RequestGuard:
    """ASGI middleware: a 403 with one line for a foreign Host or a cross-site change (415 for a form's type);
    and an error no route handled is logged in one bounded line (at most one a minute per route), not as
    uvicorn's traceback per request."""

    def __init__(self, app, allowed_hosts: Iterable[str] = (), bound: str = "127.0.0.1") -> None:
        self.app = app
        self.policy = HostPolicy(allowed_hosts, bound)
        self.errors = Guarded("api", log)  # an error a route did not handle

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refused = self.refusal(scope)
        if refused is not None:
            return await answer(send, *refused)
        started = False

        async def sending(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as e:  # noqa: BLE001 - a route's bug: one bounded line a minute, not a traceback per request
            self.errors.failed(f"{scope.get('method', '')} {scope.get('path', '')[:100]}", e)
            if not started:
                await answer(send, 500, "internal error (logged)")

    def refusal(self, scope) -> tuple[int, str] | None:
        """The status code (403; 415 for a form's content type) and why this request is refused, or None."""
        headers: dict[str, str] = {}
        for k, v in scope.get("headers") or ():
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        host = headers.get("host", "")
        name, _ = split_host(host)
        if host and not self.policy.allows(name):
            return 403, (f"Host {name!r} is not a name this API is served under (DNS rebinding?); "
                         f"add it to api.allowed_hosts if it is yours")
        served = host
        forwarded = headers.get("x-forwarded-host", "").split(",")[0].strip()
        if forwarded:
            f_name, _ = split_host(forwarded)
            if not (is_loopback_name(name) or self.policy.allows(f_name)):
                return 403, (f"X-Forwarded-Host {f_name!r} is not a name this API is served under; "
                             f"add it to api.allowed_hosts if it is yours")
            served = forwarded
        if scope.get("method", "GET").upper() not in UNSAFE:
            return None
        origin = headers.get("origin")
        if origin is not None and (origin.strip() == "null" or not origin_matches(origin, served)):
            return 403, f"cross-site request refused: Origin {origin[:100]!r} is not this server ({served[:100]})"
        if headers.get("sec-fetch-site") == "cross-site":
            return 403, "cross-site request refused (Sec-Fetch-Site: cross-site)"
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in FORM_TYPES and "authorization" not in headers:
            return 415, (f"a change sent as {ctype} (what a cross-site form sends) is refused; send no body, or "
                         f"Content-Type: application/json")
        return None
