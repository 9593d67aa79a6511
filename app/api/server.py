"""FastAPI application and an in-process uvicorn server thread.

Every route reads the shared Status; nothing here touches the inference thread. Query
parameters are validated by FastAPI (malformed requests get 4xx); routes that could fail on
missing data answer 404, never 5xx.
"""

import logging
import socket
import threading
from typing import Annotated, Any, Callable

import cv2
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from app import __version__
from app.annotate import annotate, draw_lines, draw_motion, draw_regions, draw_zones
from app.api import access as access_mod, pages
from app.api.access import Access, Problem
from app.api.config import ApiConfig, is_loopback
from app.api import docs_offline
from app.api.guard import RequestGuard
from app.errors import ConfigError
from app.stats import HealthDoc, Stats
from app.status import Status

log = logging.getLogger(__name__)
PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BODY_PEEK = 64  # bytes of a request body read to tell an empty one (or `{}`) from one that says something


class LineState(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    in_: int = Field(alias="in", ge=0)
    out: int = Field(ge=0)
    since: float
    labels: dict[str, dict[str, int]]


class Counts(BaseModel):
    counts: dict[str, int]
    zones: dict[str, dict[str, int]]
    lines: dict[str, LineState]


class ResetResult(BaseModel):
    reset: list[str]
    lines: dict[str, LineState]


class Liveness(BaseModel):
    alive: bool


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


def with_snapshot_flag(event: dict, has: Callable[[str], bool]) -> dict:
    """A copy of an object event whose `after.has_snapshot` says whether the store holds it now."""
    after = event.get("after")
    if not isinstance(after, dict) or "has_snapshot" not in after:
        return event
    return {**event, "after": {**after, "has_snapshot": has(after["id"])}}


def warn_exposure(api: ApiConfig) -> None:
    """Say loudly at start when the API is reachable from the network without a token."""
    if api.token is not None or is_loopback(api.host):
        return
    if api.admin_port is not None:
        log.info("api: %s without api.token: reads open to whoever reaches port %d, changes only on the admin "
                 "port %d (publish both on loopback only, as docker-compose.acap.yml does)", api.host, api.port,
                 api.admin_port)
        return
    if api.allow_unauthenticated_changes:
        log.warning("api: %s without api.token and with api.allow_unauthenticated_changes: anyone who reaches "
                    "this address can read everything and reset counts", api.host)
    else:
        log.warning("api: %s without api.token: anyone who reaches this address can read status, counts and "
                    "frames; changes (POST) are refused until api.token is set", api.host)


def create_app(status: Status, api: ApiConfig, settings: Any = None, config_schema: dict | None = None,
               reset: Callable[[list[str] | None], dict] | None = None, snapshots: Any = None) -> FastAPI:
    """The Vigil HTTP API over a Status."""
    app = FastAPI(title="Vigil", version=__version__, docs_url=None, redoc_url=None,  # docs: docs_offline.py
                  description="Status, metrics, counts and events of one Vigil pipeline.")
    app.include_router(docs_offline.router(app.title))
    if api.root_path:
        app.add_middleware(RootPath, prefix=api.root_path)
    access = Access(api)
    app.add_middleware(RequestGuard, allowed_hosts=api.allowed_hosts, bound=api.host)  # CSRF, DNS rebinding
    registry: list = []  # made at the first scrape: prometheus_client costs ~9 MiB a camera nobody scrapes need not pay
    registry_lock = threading.Lock()
    jpeg_cache: dict = {}
    jpeg_lock = threading.Lock()

    async def no_body(request: Request) -> None:
        """Refuse a body on a route that takes none: one naming lines would otherwise reset them all."""
        length = request.headers.get("content-length")
        if length is None and "transfer-encoding" not in request.headers:
            return
        if length is not None and (not length.isdigit() or int(length) > BODY_PEEK):
            data = None  # not read: it may be large, or never come
        else:
            data = b""
            try:
                async for chunk in request.stream():
                    data += chunk
                    if len(data) > BODY_PEEK:
                        break
            except ClientDisconnect:  # the client went away mid-body (or sent a broken chunk): nothing to do
                raise HTTPException(400, "incomplete request body") from None
        if data is None or data.strip() not in (b"", b"{}"):
            raise HTTPException(400, f"{request.method} {request.url.path} takes no body; name lines with "
                                     "?line=<name> (repeatable), or send none to reset every line")

    # Only routes that really check the token carry it, so the OpenAPI document says which ones do.
    protect_reads = access.protect_reads
    auth = [Depends(access.read)] if protect_reads else []
    write_auth, write_problem = access.write_dependencies(), access.write_responses()
    unauthorised = {401: {"model": Problem, "description": "missing or wrong bearer token"}} if protect_reads else {}
    not_found = {404: {"model": Problem, "description": "nothing to show yet"}}
    warn_exposure(api)

    @app.get("/api/live", response_model=Liveness, responses={503: {"model": Liveness, "description": "failing"}},
             summary="liveness for container health checks: never needs the token, tells nothing but failing or not")
    def live() -> Any:
        failing = status.health().status == "failing"
        return JSONResponse({"alive": not failing}, status_code=503 if failing else 200)

    @app.get("/api/health", response_model=HealthDoc, dependencies=auth,
             responses={**unauthorised, 503: {"model": HealthDoc, "description": "a component is failing"}},
             summary="ok / degraded / failing per component")
    def health() -> Any:
        h = status.health()
        # 503 when failing, so a Docker HEALTHCHECK or load balancer can act on the code alone
        return JSONResponse(h.model_dump(mode="json"), status_code=503 if h.status == "failing" else 200)

    @app.get("/api/stats", response_model=Stats, dependencies=auth, responses=unauthorised,
             summary="rates, timings, queues, MQTT state")
    def stats() -> Any:
        return status.stats()

    @app.get("/api/metrics", dependencies=auth, summary="Prometheus metrics",
             responses={200: {"content": {PROM_TYPE: {"schema": {"type": "string"}}}}, **unauthorised},
             response_class=Response)
    def metrics() -> Response:
        from app.api.prometheus import make_registry, render  # prometheus_client: at the first scrape

        with registry_lock:
            if not registry:
                registry.append(make_registry(status))
        return Response(render(registry[0]), media_type=PROM_TYPE)

    if settings is not None:
        from app.api.config_routes import config_router

        app.include_router(config_router(settings, auth, write_auth, {**unauthorised, **write_problem}, access.who,
                                         config_schema or {}))

    @app.get("/api/tracks", dependencies=auth, responses=unauthorised, summary="objects present now")
    def tracks() -> list[dict[str, Any]]:
        objects = status.tracks()
        if snapshots is not None:
            for o in objects:
                o["has_snapshot"] = snapshots.has(o["id"])
        return objects

    @app.get("/api/events/{event_id}/snapshot.jpg", dependencies=auth, response_class=Response,
             responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                        **unauthorised, 404: {"model": Problem, "description": "no snapshot of that object"}},
             summary="an object's best view: the full frame with its box, or the crop (snapshots.enabled)")
    def snapshot_jpg(
        event_id: str,
        crop: Annotated[bool, Query(description="the crop around the object instead of the full frame")] = False,
        h: Annotated[int | None, Query(ge=16, le=4320, description="height in pixels; never more than stored")] = None,
        quality: Annotated[int | None, Query(ge=1, le=100, description="JPEG quality; default: as stored")] = None,
    ) -> Response:
        from app.snapshots.serve import sized

        data = snapshots.get(event_id, crop) if snapshots is not None else None
        if data is None:
            raise HTTPException(404, f"no snapshot of {event_id!r}")
        return Response(sized(data, snapshots.quality, h, quality), media_type="image/jpeg",
                        headers={"Cache-Control": "no-cache"})  # a live object's view may still improve

    @app.get("/api/events", dependencies=auth, responses=unauthorised,
             summary="recent events, newest last; with after=<seq>, the events that followed it (backfill)")
    def events(
        response: Response,
        limit: Annotated[int, Query(ge=1, le=100000, description="at most this many")] = 50,
        after: Annotated[int | None, Query(ge=0, description="only events with a greater seq, oldest first")] = None,
    ) -> list[dict[str, Any]]:
        first, last = status.event_window()
        # which part of the run's sequence the ring buffer still holds, so a client knows what it cannot backfill
        response.headers["X-Vigil-Run-Id"] = status.run_id or ""
        response.headers["X-Vigil-Events-First"] = str(first)
        response.headers["X-Vigil-Events-Last"] = str(last)
        out = status.events(limit, after)
        if snapshots is not None:  # as the store holds it now: an evicted snapshot answers 404
            out = [with_snapshot_flag(e, snapshots.has) for e in out]
        return out

    @app.get("/api/counts", response_model=Counts, dependencies=auth, responses=unauthorised,
             summary="objects per label and zone now; line counts since their reset")
    def counts() -> Any:
        return status.counts()

    @app.post("/api/counts/reset", response_model=ResetResult, dependencies=[*write_auth, Depends(no_body)],
              responses={**write_problem, 400: {"model": Problem, "description": "a body (this route takes none)"},
                         404: {"model": Problem, "description": "no such line"},
                         503: {"model": Problem, "description": "still starting"}},
              summary="zero line counts (all, or the lines named)")
    def reset_counts(line: Annotated[list[str] | None, Query(description="line to reset (repeatable); default: all")] = None) -> Any:
        if reset is None or not status.lines_cfg:
            raise HTTPException(404, "no lines are configured")
        try:
            lines = reset(line or None)
        except KeyError as e:
            raise HTTPException(404, f"no line named {e.args[0]!r}") from None
        if lines is None:
            raise HTTPException(503, "not counting yet: Vigil is starting (see /api/health)")
        names = line or list(lines)
        return {"reset": names, "lines": lines}

    @app.get("/api/latest.jpg", dependencies=auth, response_class=Response,
             responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                        **unauthorised, **not_found},
             summary="the latest frame, annotated")
    def latest_jpg(
        h: Annotated[int | None, Query(ge=16, le=4320, description="height in pixels (aspect kept); never more than the frame's")] = None,
        quality: Annotated[int, Query(ge=1, le=100, description="JPEG quality")] = 70,
        bbox: Annotated[bool, Query(description="draw tracked objects")] = True,
        zones: Annotated[bool, Query(description="draw zones")] = True,
        lines: Annotated[bool, Query(description="draw counting lines")] = True,
        regions: Annotated[bool, Query(description="draw the views the model ran on (whole frame, tiles, regions)")] = False,
        motion: Annotated[bool, Query(description="tint the pixels the motion detector saw change (planner regions)")] = False,
    ) -> Response:
        result = status.latest()
        if result is None or result.frame is None:
            raise HTTPException(404, "no frame processed yet")
        frame = result.frame
        h = min(h, frame.image.shape[0]) if h else None  # never upscale: the frame has no more to show
        key = (frame.seq, h, quality, bbox, zones, lines, regions, motion)
        # One image is made at a time: concurrent requests wait rather than multiply CPU and memory.
        with jpeg_lock:
            if jpeg_cache.get("key") != key:
                jpeg_cache.update(key=key, data=render_jpeg(frame, result, h, quality, bbox, zones, lines, regions,
                                                            motion))
            data = jpeg_cache["data"]
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def render_jpeg(frame, result, h: int | None, quality: int, bbox: bool, zones: bool, lines: bool,
                    regions: bool = False, motion: bool = False) -> bytes:
        """The annotated frame as JPEG, `h` pixels high (at most the frame's own height)."""
        img = annotate(frame.image, result.objects, status.labels) if bbox else frame.image.copy()
        overlay = result.overlay
        if motion and overlay is not None and overlay.motion is not None:
            draw_motion(img, overlay.motion)
        if regions and overlay is not None:
            draw_regions(img, overlay.views, overlay.reason)
        if zones and status.zones_cfg:
            draw_zones(img, [(n, z.polygon, result.zones.get(n, {}).get("all", 0)) for n, z in status.zones_cfg.items()])
        if lines and status.lines_cfg:
            draw_lines(img, [(n, c.start, c.end, result.lines.get(n, {}).get("in", 0), result.lines.get(n, {}).get("out", 0))
                             for n, c in status.lines_cfg.items()])
        if h and h != img.shape[0]:
            w = max(1, round(img.shape[1] * h / img.shape[0]))
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise HTTPException(404, "could not encode the frame")
        return buf.tobytes()

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
