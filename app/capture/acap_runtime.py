"""Capture plugin for camera frames through ACAP Runtime's VideoCapture (`app.acap.video`).

A thread of its own reads the stream into the shared FrameQueue, like every other source. The
connection settings are the shared `acap_runtime` section (RunContext.acap); gRPC is imported
when a stream opens.
"""
from __future__ import annotations

import threading
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.acap.config import AcapRuntimeConfig
from app.capture import SourceBase
from app.capture.framequeue import FrameQueue, QueuedSource
from app.errors import SourceError
from app.health import Health
from app.plugins import RunContext
from app.retry import RetryPolicy
from app.timing import StageTimer
from app.types import Frame



class StreamConfig(BaseModel):
    """What the camera is asked for (ACAP Runtime VideoCapture NewStream)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    width: int = Field(640, ge=16, le=7680, description="stream width asked of the camera (ACAP Runtime VideoCapture)")
    height: int = Field(360, ge=16, le=4320, description="stream height asked of the camera")
    framerate: int = Field(10, ge=1, le=120, description="stream frames per second asked of the camera")
    format: Literal["yuv", "rgb"] = Field(
        "yuv", description="'yuv' (NV12, every chip) or 'rgb' (where the chip delivers it, e.g. ARTPEC-9)"
    )


class Config(SourceBase):
    type: Literal["acap-runtime"] = "acap-runtime"
    stream: StreamConfig = Field(default_factory=StreamConfig, description="camera stream settings")


class AcapRuntimeSource(QueuedSource):
    """Frames from a VideoCapture stream, fetched in a thread of their own."""

    def __init__(self, cfg, timer: StageTimer | None = None, acap: AcapRuntimeConfig | None = None,
                 health: Health | None = None, cancel: threading.Event | None = None) -> None:
        # grpc comes with app.acap: imported when a camera stream is opened, not with the config
        from app.acap.client import Endpoint
        from app.acap.video import VideoStream

        acap = acap or AcapRuntimeConfig()
        s = cfg.stream
        if s.format == "yuv" and (s.width % 2 or s.height % 2):
            raise SourceError(f"source.stream: NV12 needs an even width and height (got {s.width}x{s.height})")
        self.cfg = cfg
        self.timer = timer or StageTimer()
        self.size = (s.width, s.height)
        self.fps = self.effective_fps = float(s.framerate)
        self.total = None
        self.live = True if cfg.live is None else cfg.live
        self.skipped = 0
        self.read = 0
        self._stop = threading.Event()
        self._cancel = cancel
        self.stream = VideoStream(Endpoint.from_config(acap), s, RetryPolicy(timeout=acap.retry_timeout),
                                  connect_timeout=acap.connect_timeout, timeout=acap.timeout, health=health,
                                  stops=(self._stop, cancel))
        self.health = self.stream.health
        self.timeout = acap.timeout
        self._frames = FrameQueue(cfg.queue_size, self.live, cancel)
        self._thread = threading.Thread(target=self._run_capture, args=(self._loop,), name="capture", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            got = self.stream.read()
            if got is None:
                return
            seq, ts, image = got
            self.read += 1
            self.timer.add("capture", time.perf_counter() - t0)
            self._frames.put(Frame(image, ts, seq))

    @property
    def reconnects(self) -> int:
        """Times the stream was lost (the server restarted) and a new one opened."""
        return self.stream.reopened

    @property
    def dropped(self) -> int:
        """Camera frames never processed: never fetched (gaps in the sequence numbers) or fetched and
        then replaced by a newer one while inference was busy."""
        return self.stream.numbers.missed + self._frames.dropped

    def close(self) -> None:
        """Stop fetching and delete the stream on the server."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._frames.close()
        self._thread.join(timeout=self.timeout + 5)
        self.stream.close()
        self.health.set("closed")


def build(cfg: Config, ctx: RunContext) -> AcapRuntimeSource:
    """Open a VideoCapture stream on ACAP Runtime, reporting progress into ctx.health; ctx.cancel ends waiting."""
    return AcapRuntimeSource(cfg, ctx.timer, ctx.acap, ctx.health, ctx.cancel)
