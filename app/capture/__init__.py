"""Capture sources: iterate Frames from a file, stream or camera, decoded in a thread of their own.

A source is a plugin module (app.plugins): `Config` (SourceBase's keys plus its own) and
`build(cfg, ctx) -> Source`, registered by one line in SOURCES.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

from pydantic import Field

from app.plugins import PluginConfig, Registry, RunContext
from app.timing import StageTimer
from app.types import Frame

# one line per source: type name -> module (its Config and build); cv2 and grpc are imported by build
SOURCES = Registry("source", "source", {
    "opencv": "app.capture.opencv",
    "acap-runtime": "app.capture.acap_runtime",
}, default="opencv")


class SourceBase(PluginConfig):
    """The keys every source has: the queue between capture and inference."""

    queue_size: int = Field(4, ge=1, le=256, description="frames buffered between capture and inference")
    live: bool | None = Field(
        None, description="newest-frame-wins mode; default: true for URLs and cameras, false for files"
    )

    def inputs(self) -> dict[str, str]:
        """The files (or URLs) this source reads, by their config key: no output may write over one."""
        return {}


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    """A source's counters at one instant."""

    read: int  # frames delivered by the source
    skipped: int  # left out by the fps cap
    dropped: int  # live frames discarded because inference was busy
    reconnects: int  # times a live source failed or stalled and was reopened
    queued: int  # frames decoded and waiting for inference
    ended_early: int = 0  # times a file ended before the frames its container lists (damaged, cut short)
    early_end: str = ""  # what the last early end said: where, and why


class Source(Protocol):
    """Frames in order until the source ends (files) or close() is called. A source that fails
    (a camera gone for good, a file that cannot be reopened to loop it) raises SourceError from the
    iteration after the last frame it delivered."""

    size: tuple[int, int]  # (width, height)
    fps: float | None  # nominal rate, when the source states one
    effective_fps: float | None  # the rate frames come out at: the nominal one, or the fps cap below it
    total: int | None  # frames in a file, None for live sources
    live: bool
    dropped: int  # frames thrown away because processing fell behind (live only)

    def __iter__(self) -> Iterator[Frame]: ...

    def snapshot(self) -> SourceSnapshot: ...

    def close(self) -> None: ...


def build_source(cfg: PluginConfig | dict, ctx: RunContext | None = None) -> Source:
    """Open the configured source (ctx.health: connecting, then ready); raises SourceError with a
    clear message when it cannot."""
    ctx = ctx or RunContext()
    ctx.health.set("connecting")
    source = SOURCES.build(SOURCES.parse(cfg), ctx)
    ctx.health.set("ready")
    return source
