"""HTTP to many cameras at once: one client per TLS setting, each camera's own authentication,
at most `concurrency` cameras in flight, a deadline per camera, a progress bar on a terminal."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import sys
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

from tqdm import tqdm

from app.errors import ConfigError
from app.fleet.fleetfile import Credentials

T = TypeVar("T")


def httpx_module():
    try:
        import httpx
    except ImportError:  # not on the camera: the fleet commands run on an integrator's machine
        raise ConfigError("vigil fleet needs httpx: pip install 'vigil[fleet]' (or pip install httpx)") from None
    return httpx


@dataclass(frozen=True)
class Target:
    """One camera as the fleet commands reach it."""

    name: str
    url: str  # reads: <url>api/...
    admin: str  # changes: <admin>api/...
    creds: Credentials


class Unreachable(Exception):
    """The camera did not answer (refused, reset, timed out, TLS failed): one line saying which."""


class Untrusted(Unreachable):
    """The camera's TLS certificate failed the check: nothing was sent to it."""


def untrusted(e: BaseException) -> Untrusted | None:
    """The certificate problem behind a failed connection, as one line with what to do, or None."""
    seen = e
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            why = ": ".join(x for x in (seen.reason, seen.verify_message) if x) or "verify failed"
            return Untrusted(f"TLS certificate not trusted ({why}): give the site's CA as `ca:` in the fleet file, "
                             "or skip the check with --insecure")
        seen = seen.__cause__ or seen.__context__
    return None


class Pool:
    """TLS settings made once (one per CA file), each camera its own small client and authentication;
    `async with Pool(...)`, and `async with pool.session(target)` around one camera's requests."""

    def __init__(self, timeout: float, insecure: bool) -> None:
        self.httpx = httpx_module()
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is noise for 1,000 cameras
        self.timeout = timeout
        self.insecure = insecure
        self.contexts: dict[str | None, ssl.SSLContext] = {}
        self.clients: dict[str, Any] = {}
        self.auths: dict[str, Any] = {}

    async def __aenter__(self) -> "Pool":
        return self

    async def __aexit__(self, *exc) -> None:
        for c in list(self.clients.values()):
            await c.aclose()
        self.clients.clear()

    def context(self, creds: Credentials) -> ssl.SSLContext:
        """The TLS context for this CA, made once: loading a trust store costs milliseconds per client."""
        key = None if self.insecure else creds.ca
        if key not in self.contexts:
            ctx = ssl.create_default_context(cafile=creds.ca if not self.insecure else None)
            if self.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.contexts[key] = ctx
        return self.contexts[key]

    @contextlib.asynccontextmanager
    async def session(self, target: Target):
        """One camera's own client while its requests run: a shared pool over 1,000 hosts costs more
        to search than the requests themselves (httpcore scans its connections on every request)."""
        # trust_env off: credentials are what the fleet file names (netrc read there), never a proxy's
        client = self.httpx.AsyncClient(verify=self.context(target.creds), trust_env=False, follow_redirects=False,
                                        limits=self.httpx.Limits(max_connections=2))
        self.clients[target.name] = client
        try:
            yield client
        finally:
            self.clients.pop(target.name, None)
            await client.aclose()

    def auth(self, target: Target):
        c = target.creds
        if target.name not in self.auths:
            if c.auth == "digest":
                self.auths[target.name] = self.httpx.DigestAuth(c.user, c.password)
            elif c.auth == "basic":
                self.auths[target.name] = self.httpx.BasicAuth(c.user, c.password)
            else:
                self.auths[target.name] = None
        return self.auths[target.name]

    async def request(self, target: Target, method: str, path: str, admin: bool = False, **kw) -> Any:
        """One request to the camera; Unreachable when it gives no HTTP answer."""
        httpx = self.httpx
        url = (target.admin if admin else target.url) + path
        headers = kw.pop("headers", {})
        if target.creds.auth == "token":
            headers["Authorization"] = f"Bearer {target.creds.token}"
        timeout = target.creds.timeout or self.timeout
        try:
            r = await self.clients[target.name].request(method, url, headers=headers, auth=self.auth(target),
                                                        timeout=timeout, **kw)
        except httpx.TimeoutException:
            raise Unreachable(f"no answer within {timeout:g} s") from None
        except httpx.ConnectError as e:
            raise untrusted(e) or Unreachable(f"cannot connect: {short(e)}") from None
        except httpx.TransportError as e:  # reset, closed mid-answer, protocol errors
            raise Unreachable(f"connection lost: {short(e)}") from None
        if r.status_code in (502, 503, 504) and "json" not in r.headers.get("content-type", ""):
            # the camera's web server answering for a Vigil that is not running (Vigil's own 503s are JSON)
            raise Unreachable(f"the camera answers but Vigil behind its web server does not (HTTP {r.status_code} "
                              "from the proxy)")
        return r


def short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:160]


async def each(pool: Pool, items: list[Target], work: Callable[[Target], Awaitable[T]], concurrency: int,
               deadline: float, desc: str, on_error: Callable[[Target, BaseException], T]) -> list[T]:
    """work(camera) for every camera in its own session, at most `concurrency` at once, each within
    `deadline` seconds (else on_error(camera, Unreachable)), results in order; a progress bar on a terminal."""
    gate = asyncio.Semaphore(max(concurrency, 1))
    bar = tqdm(total=len(items), desc=desc, unit="camera", file=sys.stderr, disable=not sys.stderr.isatty(),
               leave=False, dynamic_ncols=True)

    async def one(item: Target) -> T:
        async with gate:
            try:
                async with pool.session(item):
                    return await asyncio.wait_for(work(item), deadline)
            except asyncio.TimeoutError:
                return on_error(item, Unreachable(f"no complete answer within {deadline:g} s"))
            except Unreachable as e:
                return on_error(item, e)
            finally:
                bar.update(1)

    try:
        return await asyncio.gather(*(one(i) for i in items))
    finally:
        bar.close()


def detail(response: Any) -> str:
    """The one-line reason in an error answer (FastAPI's {"detail": ...}, a proxy's page, or the status)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    d = body.get("detail") if isinstance(body, dict) else None
    if isinstance(d, list):
        return "; ".join(f"{i.get('loc')}: {i.get('msg')}" if isinstance(i, dict) else str(i) for i in d)[:400]
    return str(d)[:200] if d else f"HTTP {response.status_code}"


def refused(response: Any) -> str | None:
    """Why an answer is an authentication refusal, or None."""
    if response.status_code == 401:
        return "unauthorised (401): wrong or missing credentials"
    if response.status_code == 403:
        return f"forbidden (403): {detail(response)}"
    return None
