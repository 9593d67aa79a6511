"""`has_snapshot` decided once, when a result is made: each event's object says whether the snapshot
store holds a view of it at that moment, before any output sees the event.

`before` repeats what the track's previous event said (the object as it was sent), so a reader
comparing `before` and `after` sees the moment a view became available; a `new` event's `before` is
its `after`. The flags are set on new frozen events; the events analytics made are not changed.
"""
from __future__ import annotations

from app.events import Event, EventType, HasSnapshot


class SnapshotFlags:
    """Sets has_snapshot on events from the store's answer, remembering what each live object was sent."""

    def __init__(self, has: HasSnapshot) -> None:
        self.has = has
        self._sent: dict[str, bool] = {}  # object id -> has_snapshot in its last event (until its end)

    def decide(self, events: tuple[Event, ...]) -> tuple[Event, ...]:
        out = []
        for e in events:
            oid = e.after.id
            now = self.has(oid)
            before = now if e.type == EventType.NEW else self._sent.get(oid)  # None: as stored (an orphan's)
            if e.type == EventType.END:
                self._sent.pop(oid, None)
            else:
                self._sent[oid] = now
            out.append(e.with_snapshot(before, now))
        return tuple(out)
