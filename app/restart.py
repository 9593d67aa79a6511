"""Asking a running `vigil run` to end its run cleanly and start again, re-reading its configuration.

One small object shared by whoever may ask (SIGHUP, the camera's parameters changing, a saved
configuration) and the CLI's run loop, which ends the run (end events, counts saved, MQTT offline)
and starts the next one in the same process.
"""
from __future__ import annotations

import threading


class Restart:
    """Restart requests for the run that `stop` ends; safe from any thread and from a signal handler
    (no lock: a list's append and the swap in take() are each one step under the GIL, and a request
    landing between them goes into the list take() returns)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self._reasons: list[str] = []

    def request(self, reason: str) -> None:
        """End the current run and start again; `reason` is said when the next run starts."""
        self._reasons.append(reason)
        self.stop.set()

    def take(self) -> list[str]:
        """The reasons asked for since the last take (empty: the run ended for good), and forget them."""
        reasons, self._reasons = self._reasons, []
        return reasons
