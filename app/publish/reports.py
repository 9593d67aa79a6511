"""What the publisher sends on a clock: `…/stats` every `mqtt.stats_interval` s, and `…/health`
(retained) with them and also at once when a status in it changes, so that a camera gone silent
shows in Home Assistant's Health sensor within a second or two instead of up to a minute later."""
from __future__ import annotations

import time
from typing import Callable

from app.publish.outbound import Message
from app.publish.payloads import Topics, dumps

HEALTH_CHECK = 1.0  # s between looks at whether a status in the health document changed


class Reports:
    """When stats and health are due, and their messages. due() and wait() run under the publisher's
    lock; messages() outside it (the documents read the other parts' state)."""

    def __init__(self, topics: Topics, interval: float, stats: Callable[[], dict] | None,
                 health: Callable[[], dict] | None) -> None:
        self.topics = topics
        self.interval = interval  # 0: no stats
        self.stats = stats
        self.health = health
        now = time.monotonic()
        self._next_stats = now + interval
        self._next_health = now
        self._stats_due = False
        self._seen: tuple | None = None  # the statuses of the health document last sent

    def due(self, now: float, connected: bool) -> bool:
        """Whether messages() has something to send now."""
        if self.interval > 0 and now >= self._next_stats:
            self._next_stats = now + self.interval
            self._stats_due = connected and self.stats is not None
        look = connected and self.health is not None and now >= self._next_health
        if look:
            self._next_health = now + HEALTH_CHECK
        return self._stats_due or look

    def wait(self, now: float) -> float:
        """Seconds until the next report may be due (at most 1)."""
        return min((self._next_stats - now) if self.interval > 0 else 1.0, self._next_health - now, 1.0)

    def messages(self) -> tuple[Message | None, Message | None]:
        """(stats, health): each None when not due, or health when none of its statuses changed."""
        due, self._stats_due = self._stats_due, False
        doc = self.stats() if due and self.stats is not None else None
        stats = None if doc is None else Message(self.topics.stats, dumps(doc), 0, False)
        health = self.health() if self.health is not None else None
        if health is None:
            return stats, None
        statuses = (health.get("status"), sorted((k, c.get("status")) for k, c in health.get("components", {}).items()))
        changed, self._seen = statuses != self._seen, statuses
        return stats, Message(self.topics.health, dumps(health), 1, True) if stats is not None or changed else None
