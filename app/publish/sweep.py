"""Stale retained topics: a zone, line or label renamed or removed since an earlier run leaves its
retained topics (and Home Assistant entities) behind. At the first connect the publisher subscribes
to its own topics: the broker answers with what is retained there and then, handling our packets in
order, echoes the `online` we publish after the state. Whatever came back retained before that echo
and is neither ours nor implied by the configuration (a label's count or snapshot image that is
published once the label is seen: app/publish/expected.py) is stale and gets cleared."""
from __future__ import annotations

from dataclasses import dataclass, field

from app.publish.discovery import COMPONENTS
from app.publish.payloads import Topics, ha_node


@dataclass
class _Look:
    mid: int  # the subscription's message id
    since: float  # monotonic time it started
    stale: dict[str, None] = field(default_factory=dict)  # retained topics seen, in order


class StaleSweep:
    """The look for stale retained topics of one publisher; its caller holds the publisher's lock."""

    def __init__(self, topics: Topics, ha_prefix: str, device_id: str, timeout: float, kept=()) -> None:
        self.topics = topics
        self.kept = set(kept)  # what the configuration implies though not published yet (app/publish/expected.py)
        self.ha_prefix = ha_prefix
        self.node = ha_node(device_id)
        self.timeout = timeout
        self.done = False  # looked for on this run's broker (found, refused or given up)
        self._look: _Look | None = None

    def filters(self) -> list[str]:
        """The subscriptions that bring back what is retained under Vigil's own topics."""
        return [f"{self.topics.prefix}/#", f"{self.ha_prefix}/+/{self.node}/+/config"]

    def owned(self, topic: str) -> bool:
        """Whether a retained topic is of a kind this publisher writes (counts, zones, lines, HA discovery)."""
        base = self.topics.prefix + "/"
        if topic.startswith(base):
            rest = topic[len(base):].split("/")
            return (rest[0] in ("counts", "lines") and len(rest) == 2) or (rest[0] == "zones" and len(rest) == 3)
        if not topic.startswith(self.ha_prefix + "/"):
            return False
        rest = topic[len(self.ha_prefix) + 1:].split("/")  # <component>/<node>/<object>/config
        return len(rest) == 4 and rest[0] in COMPONENTS and rest[1] == self.node and rest[3] == "config"

    def begin(self, mid: int, now: float) -> None:
        """The subscription went out with message id `mid`."""
        self._look = _Look(mid, now)

    def interrupted(self) -> None:
        """The connection dropped before the look finished: look again at the next connect."""
        self._look = None

    def refused(self, mid: int, failed: bool) -> bool:
        """The broker answered a subscription; True when it refused this look's (the look ends)."""
        if self._look is None or mid != self._look.mid or not failed:
            return False
        self._end()
        return True

    def message(self, topic: str, retained: bool, payload: bytes, ours: set[str] | dict) -> list[str] | None:
        """One message under our topics. Returns the stale topics once our own `online` comes back
        (the look ends), else None. `ours`: the retained topics this run publishes."""
        look = self._look
        if look is None:
            return None
        if topic == self.topics.available and not retained and payload == b"online":
            self._end()
            return [t for t in look.stale if t not in ours]
        if retained and payload and self.owned(topic) and topic not in ours and topic not in self.kept:
            look.stale[topic] = None
        return None

    def expired(self, now: float) -> bool:
        """True once when the broker never echoed the marker within the timeout (the look ends)."""
        if self._look is not None and now - self._look.since > self.timeout:
            self._end()
            return True
        return False

    @property
    def running(self) -> bool:
        return self._look is not None

    def _end(self) -> None:
        self._look, self.done = None, True
