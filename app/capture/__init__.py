"""Capture sources: iterate Frames from a file, stream or camera, decoded in a thread of their own.

A source module exposes `open(cfg) -> Source`; SOURCES maps the config name to it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Iterator, Protocol

from app.health import Health
from app.timing import StageTimer
from app.types import Frame

SOURCES = {"opencv": "app.capture.opencv", "acap-runtime": "app.capture.acap_runtime"}


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    """A source's counters at one instant."""

    read: int  # frames delivered by the source
    skipped: int  # left out by the fps cap
    dropped: int  # live frames discarded because inference was busy
    reconnects: int  # times a live source failed or stalled and was reopened
    queued: int  # frames decoded and waiting for inference


class Source(Protocol):
    """Frames in order until the source ends (files) or close() is called. A source that fails
    (a camera gone for good, a file that cannot be reopened to loop it) raises SourceError from the
    iteration after the last frame it delivered."""

    size: tuple[int, int]  # (width, height)
    fps: float | None  # nominal rate, when the source states one
    total: int | None  # frames in a file, None for live sources
    live: bool
    dropped: int  # frames thrown away because processing fell behind (live only)

    def __iter__(self) -> Iterator[Frame]: ...

    def snapshot(self) -> SourceSnapshot: ...

    def close(self) -> None: ...


def open_source(cfg, timer: StageTimer | None = None, **options) -> Source:
    """Open the configured source; raises SourceError with a clear message when it cannot.

    options go to the source module (e.g. acap=… the ACAP Runtime connection); others ignore them.
    """
    health = options.pop("health", None) or Health()
    health.set("connecting")
    source = importlib.import_module(SOURCES[cfg.type]).open(cfg, timer, health=health, **options)
    health.set("ready")
    return source
