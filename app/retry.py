"""Retrying a step that fails for a while: a server restarting, a busy DLPU, a camera still booting.

Every retry loop in Vigil goes through `Retry.call`: the ACAP Runtime client (model load,
Predict, camera stream, camera parameters) and the OpenCV source (a live URL not up at
start, a stream that stopped). One policy type, one way of counting retries in `Health`,
one way of giving up and of stopping early. It lives outside `app.acap` because the OpenCV
source uses it too.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from app.errors import VigilError
from app.health import Health

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Waits between attempts: base_delay, 2 × base_delay, … capped at max_delay, for up to `timeout` s
    (0 = forever)."""

    timeout: float = 600.0
    base_delay: float = 0.25
    max_delay: float = 1.0  # a server coming back (ACAP Runtime restarted) is used within about a second

    @classmethod
    def every(cls, delay: float, timeout: float) -> "RetryPolicy":
        """The same wait before every attempt."""
        return cls(timeout=timeout, base_delay=delay, max_delay=delay)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1, 2, …)."""
        return min(self.base_delay * attempt, self.max_delay)


class Retry:
    """Calls a step until it works, retrying the failures `transient` accepts, and records them in health.

    `stops` are events that end the waiting early (the owner's close(), the run's SIGTERM); giving up or
    being stopped raises `error`, a VigilError subclass chosen by the owner (SourceError, …).
    """

    def __init__(self, policy: RetryPolicy, health: Health | None = None, stops: Sequence[threading.Event] = (),
                 error: type[VigilError] = VigilError, quiet: bool = False,
                 logger: logging.Logger | None = None) -> None:
        self.policy = policy
        self.health = health if health is not None else Health()
        self.stops = tuple(stops) or (threading.Event(),)  # none given: an event nobody sets
        self.error = error
        self.level = logging.DEBUG if quiet else logging.WARNING  # quiet: a poll that tries again later anyway
        self.log = logger or log  # the owner's logger, so its retries show under its name

    def call(self, what: str, fn: Callable[[], T], transient: Callable[[Exception], str | None], *,
             timeout: float | None = None, setting: str = "") -> T:
        """fn(), retried while it raises an exception for which transient() gives a description (other
        exceptions propagate). Gives up after `timeout` s (default: the policy's; 0 = never), naming the
        config key `setting` that sets that time."""
        limit = self.policy.timeout if timeout is None else timeout
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as e:
                message = transient(e)
                if message is None:
                    raise
            attempt += 1
            self.health.retries += 1
            self.health.set("retrying", message)
            elapsed = time.monotonic() - start
            if limit and elapsed >= limit:
                self.health.set("failed", message)
                where = f" ({setting})" if setting else ""
                raise self.error(f"{what}: {message}; giving up after {elapsed:.0f} s{where}") from None
            delay = self.policy.delay(attempt)
            if limit:
                delay = min(delay, max(0.0, limit - elapsed))
            if attempt == 1 or attempt % 10 == 0:
                self.log.log(self.level, "%s: %s; retrying in %.3g s (attempt %d)", what, message, delay, attempt)
            if self._wait(delay):
                raise self.error(f"{what}: stopped while retrying ({message})") from None

    def stopped(self) -> bool:
        """Whether one of the stop events is set."""
        return any(s.is_set() for s in self.stops)

    def _wait(self, delay: float) -> bool:
        """Wait `delay` s; True as soon as a stop event is set."""
        if len(self.stops) == 1:
            return self.stops[0].wait(delay)
        end = time.monotonic() + delay
        while not self.stopped():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.stops[0].wait(min(left, 0.1))  # several events: look at the others every 0.1 s
        return True
