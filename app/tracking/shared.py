"""A tracker that several threads use, owning the one lock that keeps them apart.

A live run touches its tracker from three threads: the frame loop tracks each frame, the planner
(on the prepare thread) asks where the tracks will be, and the expiry thread (app/expiry.py) ends
tracks while no frame comes. `SharedTracker` is the only way in for all of them; each operation
holds the lock for its whole length, including handing its events on, so events reach the outputs
in the order they were made. Once `end_all` has ended the run's tracks nothing expires any more.
"""
from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from typing import Callable

from app.timing import StageTimer
from app.tracking import Tracker, TrackerStats, TrackEvents, TrackPredictions
from app.types import Detections


class SharedTracker:
    """A tracker (app.tracking.Tracker) and its lock, for the frame loop, the planner and the expiry thread."""

    def __init__(self, tracker: Tracker, timer: StageTimer | None = None) -> None:
        self.tracker = tracker
        self._timer = timer
        self._lock = threading.Lock()
        self._last: tuple[float, float] | None = None  # (timestamp, monotonic time) of the last tracked frame

    @property
    def stats(self) -> TrackerStats:
        """The tracker's counters (any thread, without the lock: at worst a count one frame old)."""
        return self.tracker.stats

    def update(self, detections: Detections, timestamp: float,
               hand_on: Callable[[Detections, TrackEvents], None]) -> Detections:
        """Track one frame and hand its tracks and events on (`hand_on`, called with the lock held)."""
        with self._lock:
            with self._timer.measure("track") if self._timer is not None else nullcontext():
                tracked = self.tracker.update(detections, timestamp)
            hand_on(tracked, self.tracker.pop_events())
            self._last = (timestamp, time.monotonic())
        return tracked

    def predicted(self, now: float, still_speed: float = 0.1) -> TrackPredictions:
        """Every live track predicted to time `now` (for a planner that follows the tracks)."""
        with self._lock:
            return self.tracker.predicted(now, still_speed)

    def expire_idle(self, hand_on: Callable[[TrackEvents], None]) -> None:
        """End the tracks the next frame would end if it came now (on the source's clock: the last
        frame's timestamp plus the time since), handing their `end` events on with the lock held.
        Nothing before the first frame, nor after end_all."""
        with self._lock:
            if self._last is None:
                return
            timestamp, at = self._last
            self.tracker.expire(timestamp + (time.monotonic() - at))
            events = self.tracker.pop_events()
            if len(events):
                hand_on(events)

    def end_all(self, hand_on: Callable[[TrackEvents], None]) -> None:
        """End every track and hand the events on (even none: the run's last result follows them)."""
        with self._lock:
            self.tracker.end_all()
            self._last = None
            hand_on(self.tracker.pop_events())
