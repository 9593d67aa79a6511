"""The status routes: liveness, health, stats, Prometheus metrics, objects present, recent events.

Every one reads the shared Status; nothing here touches the inference thread.
"""
from __future__ import annotations

import threading
from typing import Annotated, Any, Callable

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from app.api.access import Access
from app.snapshots.store import SnapshotStore
from app.stats import HealthDoc, Stats
from app.status import Status

PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Liveness(BaseModel):
    alive: bool


class Metrics:
    """The Prometheus registry over a Status, made at the first scrape: prometheus_client costs ~9 MiB a camera
    nobody scrapes need not pay."""

    def __init__(self, status: Status) -> None:
        self.status = status
        self._lock = threading.Lock()
        self._registry = None

    def scrape(self) -> bytes:
        from app.api.prometheus import make_registry, render  # prometheus_client: at the first scrape

        with self._lock:
            if self._registry is None:
                self._registry = make_registry(self.status)
            registry = self._registry
        return render(registry)


def with_snapshot_flag(event: dict, has: Callable[[str], bool]) -> dict:
    """A copy of an object event whose `after.has_snapshot` says whether the store holds it now."""
    after = event.get("after")
    if not isinstance(after, dict) or "has_snapshot" not in after:
        return event
    return {**event, "after": {**after, "has_snapshot": has(after["id"])}}


def router(status: Status, access: Access, snapshots: SnapshotStore | None = None) -> APIRouter:
    r = APIRouter()
    read, unauthorised = access.read_dependencies(), access.read_responses()
    metrics_registry = Metrics(status)

    @r.get("/api/live", response_model=Liveness, responses={503: {"model": Liveness, "description": "failing"}},
           summary="liveness for container health checks: never needs the token, tells nothing but failing or not")
    def live() -> Any:
        failing = status.health().status == "failing"
        return JSONResponse({"alive": not failing}, status_code=503 if failing else 200)

    @r.get("/api/health", response_model=HealthDoc, dependencies=read,
           responses={**unauthorised, 503: {"model": HealthDoc, "description": "a component is failing"}},
           summary="ok / degraded / failing per component")
    def health() -> Any:
        h = status.health()
        # 503 when failing, so a Docker HEALTHCHECK or load balancer can act on the code alone
        return JSONResponse(h.model_dump(mode="json"), status_code=503 if h.status == "failing" else 200)

    @r.get("/api/stats", response_model=Stats, dependencies=read, responses=unauthorised,
           summary="rates, timings, queues, MQTT state")
    def stats() -> Any:
        return status.stats()

    @r.get("/api/metrics", dependencies=read, summary="Prometheus metrics",
           responses={200: {"content": {PROM_TYPE: {"schema": {"type": "string"}}}}, **unauthorised},
           response_class=Response)
    def metrics() -> Response:
        return Response(metrics_registry.scrape(), media_type=PROM_TYPE)

    @r.get("/api/tracks", dependencies=read, responses=unauthorised, summary="objects present now")
    def tracks() -> list[dict[str, Any]]:
        objects = status.tracks()
        if snapshots is not None:
            for o in objects:
                o["has_snapshot"] = snapshots.has(o["id"])
        return objects

    @r.get("/api/events", dependencies=read, responses=unauthorised,
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

    return r
