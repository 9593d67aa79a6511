"""OpenCV capture: video files, RTSP/HTTP URLs and camera indices."""
from __future__ import annotations

import logging
import os
import stat
import threading
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from app.capture import SourceBase
from app.capture.framequeue import FrameQueue, QueuedSource
from app.errors import SourceError
from app.health import Health
from app.plugins import RunContext
from app.retry import Retry, RetryPolicy
from app.timing import StageTimer
from app.types import Frame

log = logging.getLogger(__name__)
CLOSE_WAIT = 1.0  # s close() waits for the capture thread to finish its read


class Config(SourceBase):
    type: Literal["opencv"] = Field(
        "opencv", description="opencv: files, URLs, webcams; acap-runtime: the camera, via ACAP Runtime"
    )
    uri: str = Field("samples/vtest.mp4", description="video file, rtsp:// or http:// URL, or camera index (0, 1, …)")
    fps: float | None = Field(None, gt=0, description="process at most this many frames per second of video time")

    def inputs(self) -> dict[str, str]:
        return {"source.uri": self.uri}
    loop: bool = Field(False, description="restart a video file at its end (timestamps keep increasing)")
    reconnect_delay: float = Field(2.0, gt=0, le=300, description="seconds before reopening a live source that failed")
    open_timeout: float = Field(
        120.0, ge=0,
        description="seconds to keep retrying a live source that cannot be opened at start (camera or NVR "
        "still booting); 0 = forever",
    )
    stall_timeout: float = Field(
        10.0, gt=0, le=600,
        description="seconds without a frame (or to connect) before a URL source counts as stalled and is reopened",
    )


def _target(uri: str) -> tuple[str | int, bool]:
    """(what cv2.VideoCapture opens, whether it is live)."""
    if uri.strip().isdigit():
        return int(uri), True
    if "://" in uri:
        return uri, True
    return uri, False


class FramePacer:
    """Decides which frames to keep so at most `fps` frames per second of video time pass."""

    def __init__(self, fps: float | None) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self.next_due = float("-inf")

    def keep(self, t: float) -> bool:
        if not self.period:
            return True
        if t + 1e-6 < self.next_due:
            return False
        # stay on the grid unless we fell more than a period behind (then restart from now)
        self.next_due = self.next_due + self.period if t - self.next_due < self.period else t + self.period
        return True


def _not_a_file(path: str) -> str:
    """What a source path that is not a regular file is (a directory, a device, a pipe, or nothing)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"video file not found: {path}"
    except OSError as e:
        return f"source.uri: cannot read {path}: {e.strerror or e}"
    if stat.S_ISDIR(mode):
        return f"source.uri: {path} is a directory, not a video file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return f"source.uri: {path} is a device, not a video file (for a webcam give its index, e.g. 0)"
    if stat.S_ISFIFO(mode):
        return f"source.uri: {path} is a named pipe (FIFO), not a video file"
    return f"source.uri: {path} is not a regular file (a socket?), not a video file"


def _source_failure(e: Exception) -> str | None:
    """Retry a source that cannot be opened (yet); anything else is not the source's state."""
    return str(e) if isinstance(e, SourceError) else None


class OpenCVSource(QueuedSource):
    def __init__(self, cfg, timer: StageTimer | None = None, health: Health | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.cfg = cfg
        if not cfg.uri.strip():  # Path("") is the working directory: it would read as "a directory"
            raise SourceError("source.uri is empty; give a video file, an rtsp:// or http:// URL, or a camera index")
        self.target, live = _target(cfg.uri)
        self.live = live if cfg.live is None else cfg.live
        if isinstance(self.target, str) and not live and not Path(self.target).is_file():
            raise SourceError(_not_a_file(self.target))
        self.timer = timer or StageTimer()
        self.health = health or Health()
        self._stop = threading.Event()
        self._cancel = cancel
        # a live source not up at start is retried for open_timeout s (the run's cancel ends that);
        # one that fails later is reopened until it comes back or the source is closed
        self._opening = Retry(RetryPolicy.every(cfg.reconnect_delay, cfg.open_timeout), self.health,
                              [cancel] if cancel is not None else [], SourceError, logger=log)
        self._reopening = Retry(RetryPolicy.every(cfg.reconnect_delay, 0), self.health, [self._stop], SourceError,
                                logger=log)
        import cv2  # deferred: a large native library, loaded only when a source opens

        self._cap, first = self._open_first()
        self.size = (int(first.shape[1]), int(first.shape[0]))
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 and fps < 1000 else None
        self.effective_fps = min(cfg.fps, self.fps) if cfg.fps and self.fps else cfg.fps or self.fps
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = count if (not self.live and count > 0) else None
        self.skipped = 0  # frames left out by the fps cap
        self.reconnects = 0  # times a live source failed or stalled and was reopened
        self.read = 0
        self._frames = FrameQueue(cfg.queue_size, self.live, cancel)
        self._pacer = FramePacer(cfg.fps)
        self._first = first
        self._thread = threading.Thread(target=self._run_capture, args=(self._capture,), name="capture", daemon=True)
        self._thread.start()

    def _new_capture(self) -> cv2.VideoCapture:
        """A VideoCapture; for URLs with open/read timeouts, so a stalled stream fails instead of hanging."""
        import cv2

        if isinstance(self.target, str) and "://" in self.target:
            ms = int(self.cfg.stall_timeout * 1000)
            return cv2.VideoCapture(
                self.target, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            )
        return cv2.VideoCapture(self.target)

    def _open_first(self) -> tuple[cv2.VideoCapture, object]:
        """The capture and its first frame. A live source that is not up yet (a camera or NVR still
        booting) is retried every reconnect_delay for up to open_timeout s, shown in health."""

        def attempt() -> tuple[cv2.VideoCapture, object]:
            cap = self._new_capture()
            if cap.isOpened():
                ok, first = cap.read()
                if ok and first is not None:
                    return cap, first
                why = f"cannot read frames from {self.cfg.uri}"
            else:
                why = f"cannot open video source {self.cfg.uri}"
            cap.release()
            raise SourceError(why if self.live else f"{why} (unsupported, corrupt or empty video?)")

        if not self.live:
            return attempt()
        return self._opening.call("starting the source", attempt, _source_failure, setting="source.open_timeout")

    def _open(self, why: str) -> cv2.VideoCapture:
        cap = self._new_capture()
        if not cap.isOpened():
            raise SourceError(f"cannot open video source {self.cfg.uri} {why}")
        return cap

    # -- capture thread ------------------------------------------------------------------
    def _capture(self) -> None:
        """The capture thread's work: the loop, then the stream released (by this thread, which may be the
        last to use it)."""
        try:
            self._loop()
        finally:
            self._cap.release()

    def _loop(self) -> None:
        seq = 0
        offset = 0.0  # added to file timestamps after each loop, so time never goes backwards
        fps = self.fps or 25.0
        image = self._first
        self._first = None
        index = 0  # frame index within the current pass of a file
        while not self._stop.is_set():
            if image is None:
                with self.timer.measure("capture"):
                    ok, image = self._cap.read()
                if not ok or image is None:
                    image = None
                    if self.live:
                        self._reconnect()
                        continue
                    self._check_end(index, fps)
                    if not self.cfg.loop:
                        return
                    if index == 0:  # reopened, and not one frame: the file changed under us
                        raise SourceError(f"cannot read frames from {self.cfg.uri} after restarting it (source.loop)")
                    offset += index / fps
                    index = 0
                    self._cap.release()
                    self._cap = self._open("again to loop it (source.loop)")
                    continue
            t = time.time() if self.live else offset + index / fps
            self.read += 1
            if self._pacer.keep(t):
                self._frames.put(Frame(image, t, seq))
            else:
                self.skipped += 1
            seq += 1
            index += 1
            image = None

    def _check_end(self, index: int, fps: float) -> None:
        """A file that stops well before the frames its container lists is damaged or cut short: say
        where (the last frame decoded, its time) in the log, the source's health and the run's summary.
        A frame or two (1 %) short is not said: some containers round their count."""
        total = self.total
        if not total or index >= total * 0.99 - 1:
            return
        self.ended_early += 1
        self.early_end = (f"{self.cfg.uri} ended early: no frame could be decoded after frame {index} "
                          f"({index / fps:.1f} s) of the {total} ({total / fps:.1f} s) its container lists; "
                          "the file is damaged or cut short")
        log.warning("%s", self.early_end + (" (looping: it starts again)" if self.cfg.loop else ""))
        self.health.set("damaged", self.early_end)  # degraded, not failing: the frames before it were used

    def _reconnect(self) -> None:
        log.warning("source %s stopped delivering frames; reopening in %.1f s", self.cfg.uri, self.cfg.reconnect_delay)
        self.reconnects += 1
        self._cap.release()
        if self._stop.wait(self.cfg.reconnect_delay):
            return
        self._cap = self._reopening.call("reopening the source", lambda: self._open("again"), _source_failure)
        self.health.set("ready")
        log.info("source %s reopened", self.cfg.uri)

    # -- consumer side -------------------------------------------------------------------
    def close(self) -> None:
        """Stop the capture thread, which releases the device or file. A read of a stalled stream can
        block for up to source.stall_timeout: that is not waited for (a SIGTERM must end the run within
        the container's grace period); the thread releases the stream when the read returns."""
        self._stop.set()
        self._frames.close()
        self._thread.join(timeout=CLOSE_WAIT)
        if self._thread.is_alive():
            log.info("source %s: still in a read; it is closed when that returns", self.cfg.uri)


def build(cfg: Config, ctx: RunContext) -> OpenCVSource:
    """Open a file, URL or camera index; ctx.health shows start-up retries, ctx.cancel ends them."""
    return OpenCVSource(cfg, ctx.timer, ctx.health, ctx.cancel)
