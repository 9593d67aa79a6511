"""Frames on their way through the model: each frame's plan, model inputs and detections, in capture order.

How many frames are in the model at once depends on the planner and the model:

- a planner that follows the tracks (`regions`) plans each frame after the one before is tracked, so
  one frame at a time, all on the pipeline thread;
- otherwise the `prepare` thread plans and prepares frames ahead while the model runs, and
  - a model that runs one frame at a time (one interpreter, or a camera's inference server) runs on
    the pipeline thread;
  - a model with N interpreters (app.backends.tflite) gets N frames at once, each on an `infer`
    thread of its own, and their detections come back in frame order.

The tracker always sees frames in the order they were captured: only the model's work overlaps.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Iterator

from app.regions.planner import Plan
from app.timing import StageTimer
from app.types import Detections, Frame
from app.worker import Prefetch


class InFlight:
    """(frame, plan, detections) of each frame of `source`, in order (see the module's docstring)."""

    def __init__(self, source, detector, tracker, timer: StageTimer) -> None:
        self.source, self.detector, self.tracker, self.timer = source, detector, tracker, timer
        self.follows_tracks = detector.planner.needs_tracks  # each frame planned after the one before is tracked
        self.depth = 1 if self.follows_tracks else max(1, getattr(detector.model, "interpreters", 1))
        self._prefetch: Prefetch | None = None
        self._pool: ThreadPoolExecutor | None = None

    def _prepare(self, frame: Frame) -> tuple[Plan, list]:
        plan = self.detector.plan(frame, self.tracker)  # where to look: the planner may follow the tracks
        return plan, self.detector.prepare(frame, plan)

    def _detect(self, frame: Frame, tensors: list, plan: Plan) -> Detections:
        with self.timer.measure("detect"):  # all model runs of the frame, with decoding and merging
            return self.detector.infer(frame, tensors, plan)

    def _submit(self, frame: Frame) -> tuple[Plan, Future]:
        plan, tensors = self._prepare(frame)
        return plan, self._pool.submit(self._detect, frame, tensors, plan)

    def frames(self, limit: int | None = None) -> Iterator[tuple[Frame, Plan, Detections]]:
        """Every frame of the source, or its first `limit`: none is read (or run) past that."""
        source = self.source if not limit else islice(self.source, limit)
        if self.follows_tracks:
            for frame in source:
                plan, tensors = self._prepare(frame)
                yield frame, plan, self._detect(frame, tensors, plan)
        elif self.depth == 1:
            self._prefetch = Prefetch(source, self._prepare, name="prepare")
            for frame, (plan, tensors) in self._prefetch:
                yield frame, plan, self._detect(frame, tensors, plan)
        else:
            # each frame is handed on as soon as its own detections are ready (never held for the next)
            self._pool = ThreadPoolExecutor(self.depth, thread_name_prefix="infer")
            self._prefetch = Prefetch(source, self._submit, name="prepare", ahead=self.depth)
            for frame, (plan, detections) in self._prefetch:
                yield frame, plan, detections.result()

    def close(self) -> None:
        """Stop preparing (close the source first: its frames may block) and drop frames not yet handed on."""
        if self._prefetch is not None:
            self._prefetch.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
