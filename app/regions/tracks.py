"""What a view planner needs to know about the tracker's live tracks."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.types import Detections


def _zeros(*shape, dtype=np.float64) -> np.ndarray:
    return np.zeros(shape, dtype)


@dataclass(slots=True)
class Tracks:
    """Struct of arrays, one row per live track (confirmed or tentative), boxes in source pixels."""

    ids: np.ndarray = field(default_factory=lambda: _zeros(0, dtype=np.int64))  # -1: tentative (no id yet)
    xyxy: np.ndarray = field(default_factory=lambda: _zeros(0, 4))  # predicted at the frame's time
    last_xyxy: np.ndarray = field(default_factory=lambda: _zeros(0, 4))  # filtered box at the latest match
    scores: np.ndarray = field(default_factory=lambda: _zeros(0, dtype=np.float32))  # latest matched score
    class_ids: np.ndarray = field(default_factory=lambda: _zeros(0, dtype=np.int32))
    matched: np.ndarray = field(default_factory=lambda: _zeros(0, dtype=bool))  # seen by the latest update
    stationary: np.ndarray = field(default_factory=lambda: _zeros(0, dtype=bool))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def confirmed(self) -> np.ndarray:
        return self.ids >= 0

    def carried(self, rows: np.ndarray) -> Detections:
        """Detections standing in for tracks `rows` on a frame the model did not look at them: a
        still object at its last box (so its velocity settles), a moving one where it is predicted."""
        rows = np.asarray(rows, np.int64)
        still = self.stationary[rows][:, None]
        boxes = np.where(still, self.last_xyxy[rows], self.xyxy[rows])
        return Detections(boxes.astype(np.float32), self.scores[rows], self.class_ids[rows])


SETTLE = 1.0  # seconds a track is followed before its velocity says whether it is still


def stationary_flags(velocity: np.ndarray, heights: np.ndarray, age: np.ndarray, speed: float) -> np.ndarray:
    """(n,) whether each track, followed for at least SETTLE seconds, moves its centre slower than
    `speed` box heights per second (a new track's velocity is 0 until the filter has seen it move)."""
    slow = np.hypot(velocity[:, 0], velocity[:, 1]) < speed * np.maximum(heights, 1.0)
    return slow & (age >= SETTLE)


def from_tracker(tracker, now: float, speed: float) -> Tracks:
    """The live tracks of one of Vigil's table trackers (SORT, ByteTrack), predicted to `now`.

    Reads the tracker's arrays; a tracker of another kind yields no tracks (the planner then works
    from motion and sweeps alone).
    """
    from app.tracking import base

    f, i = getattr(tracker, "_f", None), getattr(tracker, "_i", None)
    if f is None or i is None or len(f) == 0:
        return Tracks()
    last = tracker._now if tracker._now is not None else now
    dt = max(0.0, now - last)
    cxcywh = f[:, 0:4] + dt * f[:, 4:8]
    cxcywh[:, 2:] = np.maximum(cxcywh[:, 2:], 1.0)
    half = cxcywh[:, 2:] / 2
    xyxy = np.concatenate((cxcywh[:, :2] - half, cxcywh[:, :2] + half), axis=1)
    state = i[:, base.STATE]
    return Tracks(
        ids=np.where(state == base.TENTATIVE, -1, i[:, base.ID]).astype(np.int64),
        xyxy=xyxy,
        last_xyxy=f[:, base.BOX].copy(),
        scores=f[:, base.SCORE].astype(np.float32),
        class_ids=i[:, base.CLASS].astype(np.int32),
        matched=(state == base.TRACKED) & (f[:, base.LAST_SEEN] >= last),
        stationary=stationary_flags(f[:, 4:6], f[:, 3], last - f[:, base.FIRST_SEEN], speed),
    )
