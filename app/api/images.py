"""The picture routes: the latest frame with its overlays, and an object's snapshot.

`Images` owns what request threads share: the one JPEG made last (a page polling latest.jpg from
several browsers gets it again without re-encoding) and the lock that makes one picture at a time,
so concurrent requests wait rather than multiply CPU and memory on a camera.
"""
from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from app.api.access import Access, Problem
from app.render import Layers, result_jpeg
from app.snapshots.store import SnapshotStore
from app.status import Status

JPEG = {200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}}
Height = Annotated[int | None, Query(ge=16, le=4320, description="height in pixels (aspect kept); never more than the picture's own")]


class Images:
    """The JPEGs the API hands out, made one at a time; the latest frame's kept until the next frame or other options."""

    def __init__(self, status: Status, snapshots: SnapshotStore | None = None) -> None:
        self.status = status
        self.snapshots = snapshots  # None when snapshots are off
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._data = b""

    def latest(self, h: int | None, quality: int, layers: Layers) -> bytes | None:
        """The latest frame with `layers` drawn, as JPEG at most `h` pixels high; None before the first frame."""
        status = self.status
        result = status.latest()
        if result is None or result.frame is None:
            return None
        h = min(h, result.frame.image.shape[0]) if h else None  # never upscale: the frame has no more to show
        key = (result.frame.seq, h, quality, layers)
        with self._lock:
            if self._key != key:
                self._data = result_jpeg(result, status.labels, status.zones_cfg, status.lines_cfg, layers, quality, h)
                self._key = key
            return self._data

    def snapshot(self, event_id: str, crop: bool, h: int | None, quality: int | None) -> bytes | None:
        """An object's stored view (the crop, or the full frame with its box), sized; None when not stored."""
        from app.snapshots.serve import sized

        data = self.snapshots.get(event_id, crop) if self.snapshots is not None else None
        if data is None:
            return None
        with self._lock:
            return sized(data, self.snapshots.quality, h, quality)


def router(images: Images, access: Access) -> APIRouter:
    r = APIRouter()
    read, unauthorised = access.read_dependencies(), access.read_responses()

    @r.get("/api/events/{event_id}/snapshot.jpg", dependencies=read, response_class=Response,
           responses={**JPEG, **unauthorised, 404: {"model": Problem, "description": "no snapshot of that object"}},
           summary="an object's best view: the full frame with its box, or the crop (snapshots.enabled)")
    def snapshot_jpg(
        event_id: str,
        crop: Annotated[bool, Query(description="the crop around the object instead of the full frame")] = False,
        h: Height = None,
        quality: Annotated[int | None, Query(ge=1, le=100, description="JPEG quality; default: as stored")] = None,
    ) -> Response:
        data = images.snapshot(event_id, crop, h, quality)
        if data is None:
            raise HTTPException(404, f"no snapshot of {event_id!r}")
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "no-cache"})  # a live object's view may still improve

    @r.get("/api/latest.jpg", dependencies=read, response_class=Response,
           responses={**JPEG, **unauthorised, 404: {"model": Problem, "description": "nothing to show yet"}},
           summary="the latest frame, annotated")
    def latest_jpg(
        h: Height = None,
        quality: Annotated[int, Query(ge=1, le=100, description="JPEG quality")] = 70,
        bbox: Annotated[bool, Query(description="draw tracked objects")] = True,
        zones: Annotated[bool, Query(description="draw zones")] = True,
        lines: Annotated[bool, Query(description="draw counting lines")] = True,
        regions: Annotated[bool, Query(description="draw the views the model ran on (whole frame, tiles, regions)")] = False,
        motion: Annotated[bool, Query(description="tint the pixels the motion detector saw change (planner regions)")] = False,
    ) -> Response:
        try:
            data = images.latest(h, quality, Layers(bbox, zones, lines, regions, motion))
        except ValueError:
            raise HTTPException(404, "could not encode the frame") from None
        if data is None:
            raise HTTPException(404, "no frame processed yet")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return r
