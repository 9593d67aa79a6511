"""Events for tests of the outputs that read them: real app.events values with plausible fields."""
from __future__ import annotations

from app.events import EndReason, Event, TrackedObject


def tracked(oid: str = "run-1", **over) -> TrackedObject:
    """A published object; `oid` is its id (<run>-<track id>), any field can be given."""
    tail = oid.rsplit("-", 1)[-1]
    doc = {"id": oid, "track_id": int(tail) if tail.isdigit() else 1, "camera": "vigil", "label": "person", "score": 0.9, "top_score": 0.9,
           "box": (100, 100, 120, 140), "box_norm": (0.15, 0.2, 0.19, 0.29), "area": 800, "ratio": 0.5,
           "velocity": (0.0, 0.0), "start_time": 0.0, "end_time": None, "frame_time": 0.0, "current_zones": (),
           "entered_zones": (), "dwell": {}, "loitering_zones": (), "lines_crossed": (), "stationary": False,
           "motionless_count": 0}
    return TrackedObject.model_validate({**doc, **over})


def event(kind: str, oid: str = "run-1", seq: int = 1, changes=(), before: TrackedObject | None = None,
          **after) -> Event:
    """A `kind` event of object `oid` (an `end` says reason lost); `after` fields as keywords."""
    a = tracked(oid, **({"end_time": 0.0} if kind == "end" else {}), **after)
    return Event(type=kind, seq=seq, run_id=oid.rsplit("-", 1)[0], before=before or a, after=a,
                 changes=tuple(changes), reason=EndReason.LOST if kind == "end" else None)


class EventLog:
    """An extra output (pipeline.run's `consumers`) that keeps every event of every result, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_result(self, result) -> None:
        self.events.extend(result.events)

    def close(self) -> None:
        pass
