"""Links: the one way outputs tell each other something, by name, instead of by their order in the
list or by holding each other.

Three things cross between outputs, and only these:

- `end_delivered(object_id)`: the broker acknowledged an object's `end` (the MQTT output says it, on
  paho's thread); the open-tracks file listens and forgets the object.
- `snapshot_ready(label, jpeg)`: a new best snapshot of a label, sized for MQTT (snapshots say it, while
  each result is made); the MQTT output listens and retains it on the label's snapshot topic.
- `snapshots_on()`: whether snapshots are wanted now (Home Assistant's Snapshots switch, which the MQTT
  output answers; True when nothing answers).

An output connects a listener when it is built; the one that says something never knows who listens.
A listener that raises is logged and the others still hear it: a signal never breaks the thread that
sends it (paho's, the outputs thread).
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Generic, TypeVar

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., None])


class Signal(Generic[F]):
    """Listeners of one named message, called in the order they connected, on the sender's thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Callable[..., None]] = []
        self._lock = threading.Lock()  # connect at build time, send from any thread

    def connect(self, listener: F) -> None:
        with self._lock:
            self._listeners.append(listener)

    @property
    def heard(self) -> bool:
        """Someone listens (a sender may skip the work of a message nobody hears)."""
        return bool(self._listeners)

    def __call__(self, *args) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(*args)
            except Exception:  # noqa: BLE001 - one listener's bug must not break the sender's thread
                log.exception("%s: a listener failed", self.name)


class Links:
    """The messages between the outputs of one run (module docstring)."""

    def __init__(self) -> None:
        self.end_delivered: Signal[Callable[[str], None]] = Signal("end delivered")
        self.snapshot_ready: Signal[Callable[[str, bytes], None]] = Signal("snapshot ready")
        self._snapshots_on: Callable[[], bool] | None = None

    def answer_snapshots_on(self, query: Callable[[], bool]) -> None:
        """`query` says from now on whether snapshots are wanted (one answerer: the last one set)."""
        self._snapshots_on = query

    def snapshots_on(self) -> bool:
        query = self._snapshots_on
        if query is None:
            return True
        try:
            return bool(query())
        except Exception:  # noqa: BLE001 - a broken switch must not stop the outputs thread
            log.exception("snapshots on: the answer failed; taking snapshots")
            return True
