"""Small consumers of FrameResults that tests hang on a pipeline run."""
from __future__ import annotations

from typing import Callable

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
