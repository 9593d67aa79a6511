"""Ending tracks while no frame gets through: a live camera gone silent (rebooting, cable pulled) or
inference waiting for ACAP Runtime to come back. Without this, the last people seen stay in the
counts and in /api/tracks until frames flow again, which on a camera can be minutes.

A thread of its own looks every `every` s and, once no frame has been tracked for a while, asks the
shared tracker (app/tracking/shared.py, which owns the lock) to end the tracks the next frame would
have ended. Their `end` events go to `emit(events, timeout) -> bool`, which gives up after `timeout`
seconds when the outputs are full; the thread then tries again, until it is closed: events it could
not hand on by then wait in `left` for the run to hand on before it ends the rest (so closing never
waits on a stuck output, and no `end` is lost).
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from app.callbacks import Guarded
from app.tracking import TrackEvents
from app.tracking.shared import SharedTracker

log = logging.getLogger(__name__)


class Expiry:
    """The thread that expires a shared tracker's tracks while no frame is tracked."""

    def __init__(self, tracker: SharedTracker, emit: Callable[[TrackEvents, float], bool],
                 every: float = 0.5) -> None:
        self.tracker = tracker
        self.emit = emit  # called with the tracker's lock held, so events keep the order they were made in
        self.every = every
        self.left: list[TrackEvents] = []  # expired but not handed on when the thread was closed
        self._stop = threading.Event()
        self._guard = Guarded("expiry", log)
        self._thread = threading.Thread(target=self._run, name="expiry", daemon=True)

    def start(self) -> "Expiry":
        self._thread.start()
        return self

    def _run(self) -> None:
        tick = self._guard.wrap(self._tick, "expire")  # an error is logged (bounded) and the next look still comes
        while not self._stop.wait(self.every):
            tick()

    def _tick(self) -> None:
        self.tracker.expire_idle(self._hand_on)

    def _hand_on(self, events: TrackEvents) -> None:
        while not self.emit(events, self.every):  # the outputs are full: try again unless closing
            if self._stop.is_set():
                self.left.append(events)
                return

    def close(self) -> list[TrackEvents]:
        """Stop the thread (before the run ends every track itself); the events it could not hand on."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                log.warning("the expiry thread did not stop within 5 s")
        left, self.left = self.left, []
        return left
