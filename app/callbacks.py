"""Callbacks Vigil hands a library (paho, uvicorn, gRPC): an error in one is logged, counted and survived.

A library calls our code on a thread of its own; an exception that escapes kills that thread (paho's
network loop: no more messages, no reconnect) while everything else looks fine. `Guarded.wrap` catches
it, logs one bounded line (the first with its traceback at debug level, then at most one a minute per
callback, with the number suppressed), keeps the count for health, and records which callback the
thread is in and since when, so a watchdog can tell a thread stuck in our code.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

LOG_CHARS = 300  # of any text that came from outside (a payload, an error message) in one log line
REPEAT_EVERY = 60.0  # seconds between log lines for the same failing callback


def short(text: object, limit: int = LOG_CHARS) -> str:
    """`text` cut to `limit` characters, saying how long it was."""
    s = str(text)
    return s if len(s) <= limit else f"{s[:limit]}… ({len(s)} characters)"


@dataclass(frozen=True, slots=True)
class CallbackErrors:
    """What health shows of a component's callbacks."""

    errors: int  # exceptions caught since start
    last_error: str | None  # "<callback>: <type>: <message>" of the newest, bounded
    inside: str | None  # the callback a thread is in now (the oldest, if several)
    inside_for: float  # seconds it has been in it


class Guarded:
    """Wraps the callbacks of one component (e.g. "mqtt") so none can kill the library's thread."""

    def __init__(self, component: str, logger: logging.Logger) -> None:
        self.component = component
        self.log = logger
        self._lock = threading.Lock()
        self._errors = 0
        self._last: str | None = None
        self._logged: dict[str, tuple[float, int]] = {}  # callback -> (last logged at, suppressed since)
        self._inside: dict[int, tuple[str, float]] = {}  # thread id -> (callback, since)

    def wrap(self, fn: Callable, name: str | None = None, default=None) -> Callable:
        """`fn`, never raising (Exception): on an error it returns `default`."""
        what = name or getattr(fn, "__name__", "callback")

        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            me = threading.get_ident()
            with self._lock:
                outer = self._inside.get(me)
                if outer is None:
                    self._inside[me] = (what, time.monotonic())
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - the point: the library's thread must go on
                self.failed(what, e)
                return default
            finally:
                if outer is None:
                    with self._lock:
                        self._inside.pop(me, None)

        return guarded

    def failed(self, what: str, e: BaseException) -> None:
        """Count and log (bounded) an error caught in callback `what`."""
        now = time.monotonic()
        text = short(f"{type(e).__name__}: {e}")
        with self._lock:
            self._errors += 1
            self._last = f"{what}: {text}"
            at, suppressed = self._logged.get(what, (None, 0))
            due = at is None or now - at >= REPEAT_EVERY
            self._logged[what] = (now, 0) if due else (at, suppressed + 1)
        if due:
            more = f" ({suppressed} more since the last report)" if suppressed else ""
            self.log.error("%s: error in %s, caught; %s carries on: %s%s", self.component, what, self.component,
                           text, more)
            self.log.debug("%s: traceback of the error in %s", self.component, what, exc_info=e)

    def snapshot(self) -> CallbackErrors:
        now = time.monotonic()
        with self._lock:
            oldest = min(self._inside.values(), key=lambda v: v[1], default=None)
            return CallbackErrors(self._errors, self._last, oldest[0] if oldest else None,
                                  now - oldest[1] if oldest else 0.0)
