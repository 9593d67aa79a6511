"""Trackers: take Detections for one frame, return Detections carrying track ids.

Each tracker is one module (app.plugins): `Config` tagged by `type` and
`build(cfg, ctx, class_groups) -> Tracker`, registered by one line in TRACKERS; the pipeline
only ever calls `build_tracker(cfg, class_groups)`, `tracker.update(detections, timestamp)` and
`tracker.pop_events()`.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from app.plugins import PluginConfig, Registry, RunContext
from app.tracking.base import TrackerStats
from app.tracking.events import KINDS, EventKind, TrackEvent, TrackEvents
from app.tracking.predicted import TrackPredictions
from app.types import Detections

__all__ = [
    "KINDS",
    "EventKind",
    "TRACKERS",
    "TrackEvent",
    "TrackEvents",
    "TrackPredictions",
    "Tracker",
    "TrackerStats",
    "build_tracker",
]

# one line per tracker: type name -> module (its Config and build)
TRACKERS = Registry("tracker", "tracker", {
    "sort": "app.tracking.sort",
    "bytetrack": "app.tracking.bytetrack",
}, default="bytetrack")


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

    def expire(self, now: float) -> None:
        """End, at `now`, the tracks unseen for longer than the tracker keeps them (no frame came)."""
        ...

    def predicted(self, now: float, still_speed: float = 0.1) -> TrackPredictions:
        """Every live track predicted to time `now` (what a view planner needs)."""
        ...

    @property
    def stats(self) -> TrackerStats:
        """Counters: frames, invalid detections dropped, tracks started/confirmed/ended, live tracks."""
        ...


def build_tracker(cfg: PluginConfig | dict, class_groups: np.ndarray | None = None,
                  ctx: RunContext | None = None) -> Tracker:
    """The tracker named by cfg.type; class_groups (per class id, the id per-class matching
    compares) lets members of one label group continue each other's tracks."""
    return TRACKERS.build(TRACKERS.parse(cfg), ctx, class_groups)
