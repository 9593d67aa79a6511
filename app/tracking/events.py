"""Track lifecycle events, stored as arrays and read as small records."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Literal

import numpy as np

# "matched", not "update": analytics publishes Frigate's `update` events, a rate-limited different thing
EventKind = Literal["new", "matched", "lost", "end"]
KINDS: tuple[EventKind, ...] = ("new", "matched", "lost", "end")
NEW, UPDATE, LOST, END = range(4)


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """One lifecycle event of one confirmed track."""

    kind: EventKind  # new: confirmed; matched: matched again; lost: first missed frame; end: removed
    track_id: int
    class_id: int  # the track's majority class
    timestamp: float  # time of the frame that produced the event, seconds
    first_seen: float  # timestamp of the track's first detection
    last_seen: float  # timestamp of its latest matched detection
    frames_seen: int  # number of detections matched to it, including the first
    best_score: float
    score: float  # score of the latest matched detection
    box: tuple[float, float, float, float]  # Kalman-filtered box at the latest match, xyxy source pixels
    velocity: tuple[float, float]  # box centre velocity from the motion model, px/s


def _arr(a, dtype, tail=()) -> np.ndarray:
    arr = np.asarray(a, dtype=dtype)
    return arr.reshape((-1, *tail)) if arr.size else np.zeros((0, *tail), dtype)


@dataclass(slots=True)
class TrackEvents:
    """Struct of arrays holding a batch of events; iterate it for TrackEvent records."""

    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))  # index into KINDS
    track_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    class_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    timestamp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    first_seen: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    last_seen: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    frames_seen: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    best_score: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    score: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))

    def __post_init__(self) -> None:
        self.kind = _arr(self.kind, np.uint8)
        self.track_id = _arr(self.track_id, np.int64)
        self.class_id = _arr(self.class_id, np.int32)
        self.timestamp = _arr(self.timestamp, np.float64)
        self.first_seen = _arr(self.first_seen, np.float64)
        self.last_seen = _arr(self.last_seen, np.float64)
        self.frames_seen = _arr(self.frames_seen, np.int64)
        self.best_score = _arr(self.best_score, np.float32)
        self.score = _arr(self.score, np.float32)
        self.xyxy = _arr(self.xyxy, np.float32, (4,))
        self.velocity = _arr(self.velocity, np.float32, (2,))
        n = len(self.kind)
        lengths = {len(getattr(self, name)) for name in self.__slots__}
        if lengths - {n}:
            raise ValueError(f"TrackEvents arrays disagree in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.kind)

    def __getitem__(self, index) -> "TrackEvents":
        """Select by boolean mask, integer array or slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return TrackEvents(*(getattr(self, name)[index] for name in self.__slots__))

    def __iter__(self) -> Iterator[TrackEvent]:
        cols = [getattr(self, name).tolist() for name in self.__slots__]
        for kind, tid, cls, ts, first, last, frames, best, score, box, vel in zip(*cols):
            yield TrackEvent(KINDS[kind], tid, cls, ts, first, last, frames, best, score, tuple(box), tuple(vel))

    def of_kind(self, kind: EventKind) -> "TrackEvents":
        """The events of one kind, in order."""
        return self[self.kind == KINDS.index(kind)]

    @classmethod
    def _trusted(cls, *arrays: np.ndarray) -> "TrackEvents":
        """Build from arrays already of the right dtype and shape, skipping validation."""
        obj = object.__new__(cls)
        for name, arr in zip(cls.__slots__, arrays):
            object.__setattr__(obj, name, arr)
        return obj

    @classmethod
    def merge(cls, parts: Iterable["TrackEvents"]) -> "TrackEvents":
        """Concatenate batches in order."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls()
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__slots__))
