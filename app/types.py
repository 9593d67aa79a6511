"""The values that cross stage boundaries: Frame and Detections between the stages, FrameResult from
analytics to every output. This module imports no stage of the app (tests/test_layout.py checks it, type
hints included): every stage may import it. Its one import, for a type hint, is app.events, a leaf."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Protocol

import numpy as np

if TYPE_CHECKING:
    from app.events import Event  # a leaf: it imports nothing of the app's either

NO_TRACK = -1


@dataclass(slots=True)
class Frame:
    """One decoded image (BGR, HxWx3 uint8) with where and when it came from."""

    image: np.ndarray
    timestamp: float  # seconds: file position for files, wall clock for live sources
    seq: int  # sequence number assigned by the source, 0-based, counts dropped frames too

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.width, self.height


def _as(a, dtype, shape_tail: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(a, dtype=dtype)
    if arr.size == 0:
        return np.zeros((0, *shape_tail), dtype=dtype)
    return arr.reshape((-1, *shape_tail))


@dataclass(slots=True)
class Detections:
    """Struct of arrays: boxes xyxy (n,4) float32, scores (n,), class ids (n,), track ids (n,)."""

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = _as(self.xyxy, np.float32, (4,))
        n = len(self.xyxy)
        self.scores = _as(self.scores, np.float32, ())
        self.class_ids = _as(self.class_ids, np.int32, ())
        if self.track_ids is None:
            self.track_ids = np.full(n, NO_TRACK, np.int64)
        else:
            self.track_ids = _as(self.track_ids, np.int64, ())
        if not (len(self.scores) == len(self.class_ids) == len(self.track_ids) == n):
            raise ValueError(
                f"Detections arrays disagree in length: boxes {n}, scores {len(self.scores)}, "
                f"class ids {len(self.class_ids)}, track ids {len(self.track_ids)}"
            )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> "Detections":
        """Select by boolean mask, integer array or slice; always returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(self.xyxy[index], self.scores[index], self.class_ids[index], self.track_ids[index])

    @classmethod
    def empty(cls) -> "Detections":
        return cls()

    @classmethod
    def merge(cls, parts: Iterable["Detections"]) -> "Detections":
        """Concatenate several Detections into one."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls()
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.class_ids for p in parts]),
            np.concatenate([p.track_ids for p in parts]),
        )

    def clipped(self, size: tuple[int, int]) -> "Detections":
        """The same detections with their boxes cut to a frame of `size` (w, h): the visible part."""
        w, h = size
        return Detections(np.clip(self.xyxy, 0, np.array([w, h, w, h], np.float32)), self.scores, self.class_ids,
                          self.track_ids)

    @property
    def area(self) -> np.ndarray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    @property
    def centers(self) -> np.ndarray:
        return (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2


@dataclass(frozen=True, slots=True)
class Overlay:
    """What the model was shown of a frame, for drawing over it (latest.jpg's regions and motion): the
    views it ran on (x0, y0, w, h in source pixels), why it ran, the pixels the motion detector saw change."""

    views: tuple[tuple[int, int, int, int], ...] = ()
    reason: str = ""  # sweep, refresh, motion, new track, stationary (comma-separated)
    motion: np.ndarray | None = None  # (h, w) uint8, 255 where changed, at the motion detector's resolution


class Tracks(Protocol):
    """The published tracks of one frame, turned into event objects on demand (any thread)."""

    def __len__(self) -> int: ...

    def objects(self) -> list[dict]: ...


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What analytics made of one frame: the one value every output (file, MQTT, status) consumes. Frozen
    once made: a stage that adds to it (the overlay, has_snapshot) makes a new one (dataclasses.replace)."""

    seq: int
    timestamp: float  # source clock (file position or wall clock), seconds
    epoch: float  # the same instant as Unix time
    size: tuple[int, int]
    objects: Detections  # published tracks detected in this frame (boxes in source pixels, inside the frame)
    frame: Frame | None = None  # the image these results are of; None for results without one (end, reset)
    events: tuple[Event, ...] = ()  # this frame's object events (app/events.py)
    ended: list[int] = field(default_factory=list)  # track ids of published tracks that ended
    counts: dict[str, int] = field(default_factory=dict)  # label -> objects present ("all" too)
    zones: dict[str, dict[str, int]] = field(default_factory=dict)  # zone -> label -> objects present
    lines: dict[str, dict] = field(default_factory=dict)  # line -> {"in", "out", "since", "labels"}
    line_totals: dict[str, tuple[int, int]] = field(default_factory=dict)  # line -> (in, out), never reset
    tracks: Tracks | None = None  # the published tracks as event objects, when the API wants them
    lines_reset: bool = False  # line counts were just zeroed (saved and published at once)
    overlay: Overlay | None = None  # the views the model ran on and the motion found (for latest.jpg)
