"""Messages waiting for the broker: bounded, with a drop policy by kind. Not thread-safe: the owner locks."""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Iterable

from app.events import Event, EventType


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    critical: bool = False  # an event the bound never drops (new/end)
    kind: str = "other"  # critical | update | other: how it is counted when it cannot be delivered
    ended: str | None = None  # for an `end` event: the object's id, reported once the broker acknowledges it

    @classmethod
    def of_event(cls, topic: str, e: Event, qos: int) -> Message:
        """An event as sent: its one serialisation; `new`/`end` critical, an `end` reported when acknowledged."""
        update = e.type == EventType.UPDATE
        return cls(topic, e.payload, qos, False, not update, "update" if update else "critical",
                   e.after.id if e.type == EventType.END else None)


class OutboundQueue:
    """What the MQTT sender publishes next, in priority order.

    - retained state (counts, zones, lines, availability): one latest value per topic, so it is
      bounded by the number of topics; `mark_all_dirty` queues all of it again after a reconnect,
      with the availability topic last;
    - events: kept in order up to `bound`; beyond it the oldest `update` is dropped, never a
      critical one (`new`/`end`), unless criticals alone exceed `hard_bound`;
    - the latest stats message only;
    - frames: at most `frame_bound`, oldest dropped first, and none while disconnected.
    """

    def __init__(self, bound: int, frame_bound: int = 4, hard_bound: int | None = None) -> None:
        self.bound = bound
        self.hard_bound = hard_bound or 20 * bound
        self.frame_bound = frame_bound
        self.retained: dict[str, Message] = {}
        self._dirty: dict[str, None] = {}  # insertion-ordered set of retained topics to (re)send
        self._last: str | None = None  # retained topic always sent after the others (availability)
        self.events: deque[Message] = deque()
        self.frames: deque[Message] = deque()
        self.stats: Message | None = None
        self.clears: deque[Message] = deque()  # one-shot empty retained messages deleting stale topics
        self.dropped: Counter = Counter()

    def __len__(self) -> int:
        return (len(self._dirty) + len(self.events) + len(self.frames) + (self.stats is not None)
                + len(self.clears))

    def set_retained(self, msg: Message, last: bool = False) -> bool:
        """Store the latest value of a retained topic; queue it when it changed. Returns whether it did."""
        old = self.retained.get(msg.topic)
        if last:
            self._last = msg.topic
        if old is not None and old.payload == msg.payload:
            return False
        self.retained[msg.topic] = msg
        self._dirty.pop(msg.topic, None)
        self._dirty[msg.topic] = None
        return True

    def mark_all_dirty(self) -> None:
        """Queue every retained value again (after a reconnect: the broker may have lost them)."""
        self._dirty = dict.fromkeys(t for t in self.retained if t != self._last)
        if self._last in self.retained:
            self._dirty[self._last] = None

    def put_event(self, msg: Message) -> None:
        ev = self.events
        if len(ev) >= self.bound:
            for i, m in enumerate(ev):
                if not m.critical:
                    del ev[i]
                    self.dropped["update"] += 1
                    break
            else:
                if len(ev) >= self.hard_bound:
                    ev.popleft()
                    self.dropped["critical"] += 1
        ev.append(msg)

    def put_frame(self, msg: Message, connected: bool) -> None:
        if not connected:
            self.dropped["frame"] += 1
            return
        if len(self.frames) >= self.frame_bound:
            self.frames.popleft()
            self.dropped["frame"] += 1
        self.frames.append(msg)

    def put_stats(self, msg: Message) -> None:
        if self.stats is not None:
            self.dropped["stats"] += 1
        self.stats = msg

    def ready(self, events: bool = True) -> bool:
        """Whether pop(events) has something to send."""
        return bool(self.clears or self._dirty or (events and self.events) or self.stats is not None or self.frames)

    def undelivered(self) -> dict[str, int]:
        """What is still queued, by kind: new/end events, update events, everything else."""
        crit = sum(1 for m in self.events if m.critical)
        return {"critical": crit, "update": len(self.events) - crit,
                "other": len(self._dirty) + len(self.frames) + (self.stats is not None) + len(self.clears)}

    def pop(self, events: bool = True) -> Message | None:
        """The next message to send: stale-topic clears, retained state, events (unless held back), stats, frames."""
        if self.clears:
            return self.clears.popleft()
        if self._dirty:
            topic = next(iter(self._dirty))
            if topic == self._last and len(self._dirty) > 1:
                # keep availability behind the rest of the state even if it was dirtied first
                del self._dirty[topic]
                self._dirty[topic] = None
                topic = next(iter(self._dirty))
            del self._dirty[topic]
            return self.retained[topic]
        if events and self.events:
            return self.events.popleft()
        if self.stats is not None:
            msg, self.stats = self.stats, None
            return msg
        if self.frames:
            return self.frames.popleft()
        return None

    def requeue_unacknowledged(self, outstanding: dict[int, Message]) -> tuple[list[int], dict[int, Message]]:
        """After a lost connection: the events the broker never acknowledged go back to the front, in order.
        Returns their message ids and the unacknowledged messages left to paho (retained state)."""
        again = [(mid, msg) for mid, msg in outstanding.items() if msg.qos and msg.kind != "other"]
        for _, msg in reversed(again):
            self.events.appendleft(msg)
        return [mid for mid, _ in again], {m: msg for m, msg in outstanding.items() if msg.qos and msg.kind == "other"}

    def drop_volatile(self) -> None:
        """Forget frames and stats (called when the connection drops: they would be stale)."""
        self.dropped["frame"] += len(self.frames)
        self.frames.clear()
        if self.stats is not None:
            self.dropped["stats"] += 1
            self.stats = None


@dataclass
class Leftover:
    """What a publisher stopped with: the events not acknowledged, in order, and how many other messages."""

    events: list[Message]
    other: int

    @classmethod
    def of(cls, q: OutboundQueue, outstanding: Iterable[Message]) -> "Leftover":
        sent = list(outstanding)
        return cls(list(q.events) + [m for m in sent if m.kind != "other"],
                   q.undelivered()["other"] + sum(m.kind == "other" for m in sent))

    def counts(self) -> dict[str, int]:
        """By kind: new/end events, update events, everything else."""
        crit = sum(m.critical for m in self.events)
        return {"critical": crit, "update": len(self.events) - crit, "other": self.other}
