"""Events are frozen values (app/events.py): one serialisation for every output, a schema generated from
the models, and has_snapshot decided from the store when the result is made."""
import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from app.analytics import Analytics, EventsConfig, LineConfig, ZoneConfig
from app.events import Change, EndReason, Event, EventType, event_schema, event_schema_text
from app.snapshots.flags import SnapshotFlags
from tests.event_util import event, tracked
from tests.test_analytics import LABELS, dets, ended, frame

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schemas" / "event.schema.json"
ZONE = {"left": ZoneConfig(polygon=[[0, 0], [0.5, 0], [0.5, 1], [0, 1]], inertia=1)}
LINE = {"mid": LineConfig(start=[0.6, 0], end=[0.6, 1])}


def test_committed_event_schema_is_the_one_generated_from_the_models():
    # regenerate with: python -c "from app.events import event_schema_text as t; print(t(), end='')" > docs/schemas/event.schema.json
    assert SCHEMA.read_text() == event_schema_text()


def scripted_events() -> list[Event]:
    """new, updates (zone, line, heartbeat) and end of one person walking through a zone and over a line."""
    a = Analytics(LABELS, zones=ZONE, lines=LINE, events=EventsConfig(update_interval=0, heartbeat=0.5),
                  run_id="r1", device_id="cam")
    out = []
    for i, x in enumerate([0.8, 0.7, 0.55, 0.4, 0.3, 0.3, 0.4, 0.55, 0.7, 0.8] + [0.8] * 8):
        out += a.update(frame(i * 0.1, i), dets((7, x, 0.5))).events
    out += a.finish(ended(7, t=1.8)).events
    return out


def test_events_of_a_scripted_walk_are_values_that_validate_against_the_schema_as_sent():
    events = scripted_events()
    assert [e.type for e in events][0] == EventType.NEW and events[-1].type == EventType.END
    changes = {c for e in events for c in e.changes}
    assert {Change.ENTERED_ZONE, Change.LEFT_ZONE, Change.CROSSED_LINE, Change.HEARTBEAT} <= changes
    assert events[-1].reason is EndReason.STOP and [e.seq for e in events] == list(range(1, len(events) + 1))
    schema = event_schema()
    for e in events:
        doc = json.loads(e.payload)
        jsonschema.validate(doc, schema)
        assert doc == e.doc() and list(doc) == ["type", "seq", "run_id", "before", "after", "changes"] + (
            ["reason"] if e.type == EventType.END else [])
        assert list(doc["after"]) == schema["$defs"]["TrackedObject"]["required"]  # the documented order
    assert events[0].payload is events[0].payload  # serialised once, however many outputs send it
    crossing = next(e for e in events if Change.CROSSED_LINE in e.changes).after.lines_crossed[0]
    assert crossing.line == "mid" and crossing.direction == "in"  # leftwards first


def test_the_schema_refuses_a_reason_off_an_end_and_an_end_without_one():
    schema = event_schema()
    new, end = event("new").doc(), event("end").doc()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**new, "reason": "lost"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in end.items() if k != "reason"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**new, "changes": ["Teleported!"]}, schema)  # not a reason's shape
    jsonschema.validate({**new, "changes": ["wrong_way"]}, schema)  # a registered rule's reason (tests/test_rules.py)


def test_an_event_is_frozen_and_refuses_what_is_not_one():
    e = event("update", changes=["heartbeat"])
    with pytest.raises(ValidationError):
        e.seq = 5
    with pytest.raises(ValidationError):
        event("update", changes=["Teleported!"])  # neither a Change nor the shape of a rule's reason
    with pytest.raises(ValidationError):
        tracked(surprise=1)
    with pytest.raises(ValidationError):
        tracked(score=1.5)


def test_has_snapshot_is_decided_from_the_store_and_before_repeats_what_was_sent():
    held: set[str] = set()
    flags = SnapshotFlags(lambda oid: oid in held)
    held.add("r-1")
    (new,) = flags.decide((event("new", "r-1", 1),))
    assert new.after.has_snapshot and new.before.has_snapshot  # a new event's before is its after
    first = event("update", "r-2", 2)
    (up,) = flags.decide((first,))
    assert not up.after.has_snapshot and first.after.has_snapshot is False
    held.add("r-2")
    (up2,) = flags.decide((event("update", "r-2", 3),))
    assert up2.after.has_snapshot and up2.before.has_snapshot is False  # what the previous message said
    (end,) = flags.decide((event("end", "r-2", 4, before=tracked("r-2", has_snapshot=True)),))
    assert end.after.has_snapshot and end.before.has_snapshot
    unchanged = event("update", "r-9", 5)
    assert SnapshotFlags(lambda oid: False).decide((unchanged,))[0] is unchanged  # nothing to decide: the same value


def test_a_copy_of_an_event_is_serialised_afresh():
    e = event("update", "r-3", 4, changes=["heartbeat"])
    assert json.loads(e.payload)["seq"] == 4
    again = e.model_copy(update={"seq": 9})
    assert json.loads(again.payload)["seq"] == 9 and again.doc()["seq"] == 9 and json.loads(e.payload)["seq"] == 4
