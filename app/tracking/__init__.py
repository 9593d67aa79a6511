"""Trackers: take Detections for one frame, return Detections carrying track ids.

Each tracker is one module with a pydantic config model tagged by a `type` literal,
registered in TRACKERS; the pipeline only ever calls `create_tracker(cfg)`,
`tracker.update(detections, timestamp)` and `tracker.pop_events()`.
"""
from __future__ import annotations

from typing import Annotated, Callable, Protocol, Union

from pydantic import Field

from app.tracking.base import TrackerStats
from app.tracking.bytetrack import ByteTrackConfig, ByteTrackTracker
from app.tracking.events import KINDS, EventKind, TrackEvent, TrackEvents
from app.tracking.sort import SortConfig, SortTracker
from app.types import Detections

__all__ = [
    "KINDS",
    "ByteTrackConfig",
    "ByteTrackTracker",
    "EventKind",
    "SortConfig",
    "SortTracker",
    "TRACKERS",
    "TRACKER_CONFIGS",
    "TrackEvent",
    "TrackEvents",
    "Tracker",
    "TrackerConfig",
    "TrackerStats",
    "create_tracker",
]


class Tracker(Protocol):
    """What the pipeline needs from any tracker."""

    def update(self, detections: Detections, timestamp: float) -> Detections:
        """Associate this frame's detections; return the confirmed tracks with track_ids set.

        Returned boxes and scores are the matched detections' own, in input order;
        class_ids are each track's majority class. Invalid boxes (NaN/inf, zero or
        negative area) are dropped and counted in `stats.invalid_detections`.
        """
        ...

    def pop_events(self) -> TrackEvents:
        """Return and clear the lifecycle events (new, update, lost, end) since the last call."""
        ...

    def end_all(self, timestamp: float | None = None) -> None:
        """End every track, emitting `end` events (call at end of stream)."""
        ...

    @property
    def stats(self) -> TrackerStats:
        """Counters: frames, invalid detections dropped, tracks started/confirmed/ended, live tracks."""
        ...


TrackerConfig = Annotated[Union[SortConfig, ByteTrackConfig], Field(discriminator="type")]

TRACKER_CONFIGS: dict[str, type[SortConfig] | type[ByteTrackConfig]] = {"sort": SortConfig, "bytetrack": ByteTrackConfig}

TRACKERS: dict[str, Callable[..., Tracker]] = {
    "sort": SortTracker,
    "bytetrack": ByteTrackTracker,
}


def create_tracker(cfg: SortConfig | ByteTrackConfig, class_groups=None) -> Tracker:
    """Build the tracker named by cfg.type; class_groups (per class id, the id per-class matching
    compares) lets members of one label group continue each other's tracks."""
    return TRACKERS[cfg.type](cfg, class_groups)
