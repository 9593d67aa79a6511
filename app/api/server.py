"""FastAPI application and an in-process uvicorn server thread.

The routes live in one router per area (status_routes, counts, images, config_routes, access, pages,
docs_offline); this module puts them together behind the request guard. Every route reads the shared
Status; nothing here touches the inference thread. Query parameters are validated by FastAPI
(malformed requests get 4xx); routes that could fail on missing data answer 404, never 5xx.
"""

import logging
import socket
import threading
from typing import Any

import uvicorn
from fastapi import FastAPI

from app import __version__
from app.api import access as access_mod, counts, docs_offline, images, pages, status_routes
from app.api.access import Access
from app.api.config import ApiConfig
from app.api.counts import Reset
from app.api.guard import RequestGuard
from app.errors import ConfigError
from app.snapshots.store import SnapshotStore
from app.status import Status

log = logging.getLogger(__name__)


class RootPath:
    """Serve under a reverse-proxy prefix whether or not the proxy strips it from the path.

    Setting the ASGI root_path without touching the path lets routing accept both
    /local/vigil/api/stats and /api/stats, and puts the prefix in the OpenAPI servers list. The
    camera's admin path (/local/vigil/admin/…) is a prefix too; which socket a request came on, not
    its path, decides what it may do (app/api/access.py).
    """

    def __init__(self, app, prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        self.admin = f"{prefix}/{access_mod.ADMIN_PATH}"

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            path = scope.get("path", "")
            prefix = self.admin if path == self.admin or path.startswith(self.admin + "/") else self.prefix
            scope = {**scope, "root_path": prefix}
        await self.app(scope, receive, send)


def create_app(status: Status, api: ApiConfig, settings: Any = None, config_schema: dict | None = None,
               reset: Reset | None = None, snapshots: SnapshotStore | None = None) -> FastAPI:
    """The Vigil HTTP API over a Status: one router per area, each given the access rules it enforces."""
    app = FastAPI(title="Vigil", version=__version__, docs_url=None, redoc_url=None,  # docs: docs_offline.py
                  description="Status, metrics, counts and events of one Vigil pipeline.")
    if api.root_path:
        app.add_middleware(RootPath, prefix=api.root_path)
    app.add_middleware(RequestGuard, allowed_hosts=api.allowed_hosts, bound=api.host)  # CSRF, DNS rebinding
    access = Access(api)
    access_mod.warn_exposure(api)
    app.include_router(docs_offline.router(app.title))
    app.include_router(status_routes.router(status, access, snapshots))
    if settings is not None:
        from app.api.config_routes import config_router

        app.include_router(config_router(settings, access, config_schema or {}))
    app.include_router(images.router(images.Images(status, snapshots), access))
    app.include_router(counts.router(status, access, reset))
    app.include_router(access_mod.router(access))
    app.include_router(pages.router())
    return app


class ApiServer:
    """uvicorn serving the app on a socket bound up front (so a busy port is a clear error), in a thread."""

    def __init__(self, app: FastAPI, host: str, port: int, admin_port: int | None = None) -> None:
        self.sock = listen(host, port)
        self.admin_sock = None
        if admin_port is not None:
            try:
                self.admin_sock = listen(host, admin_port, " (api.admin_port)")
            except ConfigError:
                self.sock.close()
                raise
        self.host = host
        self.port = self.sock.getsockname()[1]
        # which socket a request came on is how access.py tells the admin path: the port actually bound
        self.admin_port = app.state.admin_port = self.admin_sock.getsockname()[1] if self.admin_sock else None
        socks = [s for s in (self.sock, self.admin_sock) if s is not None]
        cfg = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(cfg)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": socks}, name="api", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        self._thread.start()
        log.info("api: status page and API at %s", self.url)
        if self.admin_port is not None:
            log.info("api: admin port (changes) %d", self.admin_port)

    watch_name = "api"  # for the watchdog (app/watchdog.py)
    _closed = False

    def thread_problem(self) -> str | None:
        if self._closed or self._thread.ident is None or self._thread.is_alive():
            return None
        return f"the API server thread has ended: nothing answers at {self.url}"

    def revive(self) -> str | None:
        """uvicorn again, on the same ports (their sockets made anew: the dead server may have closed them)."""
        if self._closed or self._thread.is_alive():
            return None
        for sock in (self.sock, self.admin_sock):
            if sock is not None:
                sock.close()
        fresh = ApiServer(self.server.config.app, self.host, self.port, self.admin_port)  # ConfigError: port taken
        self.sock, self.admin_sock, self.server, self._thread = fresh.sock, fresh.admin_sock, fresh.server, fresh._thread
        self._thread.start()
        return "the API server thread"

    def close(self) -> None:
        self._closed = True
        self.server.should_exit = True
        self._thread.join(timeout=5)
        self.sock.close()
        if self.admin_sock is not None:
            self.admin_sock.close()


def listen(host: str, port: int, which: str = "") -> socket.socket:
    """A listening socket bound up front, so a busy port is a clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"api: cannot listen on {host}:{port}{which}: {e.strerror or e}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
