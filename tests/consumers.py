"""Small consumers of FrameResults that tests hang on a pipeline run."""
from __future__ import annotations

import threading
from typing import Callable

from app import pipeline
from app.types import Detections, Frame, FrameResult


class OnFrame:
    """Calls fn(frame, objects) for every result that came with a frame (on the outputs thread)."""

    def __init__(self, fn: Callable[[Frame, Detections], None]) -> None:
        self.fn = fn

    def on_result(self, result: FrameResult) -> None:
        if result.frame is not None:
            self.fn(result.frame, result.objects)

    def close(self) -> None:
        pass


class BackgroundRun:
    """pipeline.run(cfg) on a daemon thread until stop(); its exception, if any, in `errors`."""

    def __init__(self, cfg, consumers: list | None = None, settings=None) -> None:
        self.errors: list[BaseException] = []
        self.summary: pipeline.Summary | None = None  # what run() returned, once it has
        self._stop = threading.Event()

        def target() -> None:
            try:
                self.summary = pipeline.run(cfg, stop=self._stop, consumers=consumers, settings=settings)
            except BaseException as e:  # surfaced by the test through `errors`
                self.errors.append(e)

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self.thread.join(timeout)
