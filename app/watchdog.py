"""The watchdog: each long-lived thread of a run (MQTT's network loop and sender, the outputs worker,
the API server) is checked every few seconds; a dead one is restarted in-process, a stuck one is
reported.

As Frigate's watchdogs do for its camera and detector processes: a part that stopped is not left
silent. What a part says about itself (`problem`) shows in /api/health at once, as failing, so
/api/live turns 503 and a container's HEALTHCHECK or the camera's respawn can act. The watchdog
restarts a part that has been dead at two checks in a row (health shows it failing in between), at
most MAX_RESTARTS times in RESTART_WINDOW s: a part that keeps dying is left failing, for the process
to be restarted. A thread stuck in a call cannot be restarted from Python; it stays failing.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

log = logging.getLogger(__name__)

INTERVAL = 5.0  # seconds between checks
STUCK_AFTER = 60.0  # seconds one callback or one item may take before its thread counts as stuck
RECENT = 60.0  # seconds a restart is shown (degraded) in health
MAX_RESTARTS = 5
RESTART_WINDOW = 600.0


class Watched(Protocol):
    """A part with threads of its own."""

    watch_name: str  # "mqtt", "outputs", "api"

    def thread_problem(self) -> str | None:
        """A dead or stuck thread, in words; None when all run (or the part was stopped on purpose)."""
        ...

    def revive(self) -> str | None:
        """Restart what has died; what was restarted, or None when nothing could be (a stuck thread)."""
        ...


@dataclass(frozen=True, slots=True)
class Restart:
    part: str
    what: str  # what was restarted
    why: str  # the problem it had
    at: float  # monotonic


class Watchdog:
    """Checks `parts()` every `interval` s on a thread of its own (or when `check` is called)."""

    def __init__(self, parts: Callable[[], Iterable[Watched]], interval: float | None = None) -> None:
        self.parts = parts
        self.interval = INTERVAL if interval is None else interval
        self._seen: dict[str, str] = {}  # part -> the problem seen at the last check
        self._restarts: dict[str, deque[float]] = {}
        self._gave_up: set[str] = set()
        self._recent: deque[Restart] = deque(maxlen=20)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watchdog itself must never die of a part's bug
                log.exception("watchdog: a check failed")

    def check(self, now: float | None = None) -> None:
        """Restart each part whose threads were already found dead at the previous check."""
        now = time.monotonic() if now is None else now
        for part in self.parts():
            name = part.watch_name
            problem = part.thread_problem()
            if problem is None:
                self._seen.pop(name, None)
                continue
            if name not in self._seen:
                self._seen[name] = problem
                log.error("watchdog: %s: %s", name, problem)
                continue
            done = self._restart(part, name, problem, now)
            if done:
                self._seen.pop(name, None)

    def _restart(self, part: Watched, name: str, problem: str, now: float) -> str | None:
        times = self._restarts.setdefault(name, deque())
        while times and now - times[0] > RESTART_WINDOW:
            times.popleft()
        if len(times) >= MAX_RESTARTS:
            if name not in self._gave_up:
                self._gave_up.add(name)
                log.error("watchdog: %s: restarted %d times in %.0f s; not again: restart Vigil", name,
                          len(times), RESTART_WINDOW)
            return None
        try:
            done = part.revive()
        except Exception as e:  # noqa: BLE001 - a failed restart is reported, and tried again next check
            log.error("watchdog: %s: restarting failed: %s: %s", name, type(e).__name__, e)
            return None
        if done:
            times.append(now)
            with self._lock:
                self._recent.append(Restart(name, done, problem, now))
            log.warning("watchdog: %s: restarted %s (%s)", name, done, problem)
        return done

    def recent(self, now: float | None = None) -> list[Restart]:
        """Restarts of the last RECENT s, oldest first."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return [r for r in self._recent if now - r.at <= RECENT]

    @property
    def restarts(self) -> int:
        with self._lock:
            return len(self._recent)
