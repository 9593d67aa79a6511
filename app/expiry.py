"""Ending tracks while no frame gets through: a live camera gone silent (rebooting, cable pulled) or
inference waiting for ACAP Runtime to come back. Without this, the last people seen stay in the
counts and in /api/tracks until frames flow again, which on a camera can be minutes.

The frame loop touches the tracker under `Expiry.lock` and reports each tracked frame; a thread of
its own looks every `every` s and, once no frame has been tracked for a while, asks the tracker to
end the tracks the next frame would have ended (tracker.expire, on the source's clock: the last
frame's timestamp plus the time since). Their `end` events go to `emit`.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from app.callbacks import Guarded
from app.tracking import Tracker, TrackEvents

log = logging.getLogger(__name__)


class Expiry:
    """The tracker's lock, and the thread that expires its tracks while no frame is tracked."""

    def __init__(self, tracker: Tracker, emit: Callable[[TrackEvents], None], every: float = 0.5) -> None:
        self.lock = threading.Lock()  # held by whoever updates, plans from or expires the tracker
        self.tracker = tracker
        self.emit = emit  # called with the lock held, so events keep the order they were made in
        self.every = every
        self._last: tuple[float, float] | None = None  # (timestamp, monotonic time) of the last tracked frame
        self._stop = threading.Event()
        self._guard = Guarded("expiry", log)
        self._thread = threading.Thread(target=self._run, name="expiry", daemon=True)

    def tracked(self, timestamp: float) -> None:
        """A frame of this timestamp was just tracked (caller holds the lock)."""
        self._last = (timestamp, time.monotonic())

    def start(self) -> "Expiry":
        self._thread.start()
        return self

    def _run(self) -> None:
        tick = self._guard.wrap(self._tick, "expire")  # an error is logged (bounded) and the next look still comes
        while not self._stop.wait(self.every):
            tick()

    def _tick(self) -> None:
        with self.lock:
            if self._last is None:
                return
            timestamp, at = self._last
            self.tracker.expire(timestamp + (time.monotonic() - at))
            events = self.tracker.pop_events()
            if len(events):
                self.emit(events)

    def close(self) -> None:
        """Stop the thread (before the run ends every track itself)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
