"""Publishers of analytics results (MQTT, the HTTP status) and the thread that feeds them.

The inference thread hands each frame's result to a PublishWorker and moves on; the worker
calls every consumer in its own thread. Consumers only serialise and queue (CPU work, never
network I/O), so the worker's bounded queue back-pressures only when the CPU is saturated.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

from app.analytics import FrameResult
from app.timing import StageTimer
from app.types import Detections, Frame

log = logging.getLogger(__name__)


class Consumer(Protocol):
    def on_result(self, frame: Frame, tracked: Detections, result: FrameResult) -> None: ...


class PublishWorker:
    """Calls each consumer with every frame's result, in order, on one thread."""

    def __init__(self, consumers: list[Consumer], timer: StageTimer, size: int = 64) -> None:
        self.consumers = consumers
        self.timer = timer
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self._failed: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="publish", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._q.qsize()

    def put(self, frame: Frame, tracked: Detections, result: FrameResult) -> None:
        self._q.put((frame, tracked, result))

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            with self.timer.measure("publish"):
                for i, c in enumerate(self.consumers):
                    try:
                        c.on_result(*item)
                    except Exception:  # a publishing bug must not stop the pipeline; say so once
                        if i not in self._failed:
                            self._failed.add(i)
                            log.exception("publishing to %s failed (further failures not logged)", type(c).__name__)

    def close(self, timeout: float = 10.0) -> None:
        """Process what is queued, then stop."""
        self._q.put(None)
        self._thread.join(timeout)
