"""Object events as values: what Vigil publishes on `<prefix>/events`, keeps for GET /api/events and
writes to the open-tracks file. Analytics makes them (app/analytics/engine.py); every output reads
the same frozen `Event` and sends its one serialisation (`payload`, `doc`). The committed
docs/schemas/event.schema.json is generated from these models (`event_schema`) and a test fails when
the two drift.
"""
from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_serializer

SCHEMA_ID = "https://vigil.invalid/schemas/event.schema.json"

Unit = Annotated[float, Field(ge=0, le=1)]


class EventType(StrEnum):
    NEW = "new"  # the track was published
    UPDATE = "update"  # a change (rate-limited) or a heartbeat
    END = "end"  # exactly once per published track


class Change(StrEnum):
    """Why an update was sent, in the order they are listed in `changes`."""

    ENTERED_ZONE = "entered_zone"
    LEFT_ZONE = "left_zone"
    LOITERING = "loitering"
    LABEL = "label"
    STATIONARY = "stationary"
    MOVING = "moving"
    SCORE = "score"
    CROSSED_LINE = "crossed_line"
    HEARTBEAT = "heartbeat"


# a reason a rule registered from outside declares (app/analytics/rules.py): a snake_case word
RuleReason = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class EndReason(StrEnum):
    LOST = "lost"  # the tracker lost the object
    STOP = "stop"  # Vigil stopped cleanly
    RESTART = "restart"  # Vigil died; the next start ended the tracks it left open


class _Value(BaseModel):
    # every key is always present in a document, defaults included
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


class Crossing(_Value):
    line: str
    direction: Literal["in", "out"]
    time: float


class TrackedObject(_Value):
    """One published track as an event carries it: Frigate's field names plus Vigil's."""

    id: str = Field(description="unique across restarts: <run id>-<track id>")
    track_id: int = Field(ge=1, description="the tracker's id, as in …/frame")
    camera: str = Field(description="device id")
    label: str
    score: Unit = Field(description="latest detection score")
    top_score: Unit
    box: tuple[int, int, int, int] = Field(description="x1, y1, x2, y2 in source pixels")
    box_norm: tuple[Unit, Unit, Unit, Unit] = Field(description="x1, y1, x2, y2 normalised to the frame")
    area: int = Field(ge=0, description="box area in pixels")
    ratio: float = Field(ge=0, description="box width / height")
    velocity: tuple[float, float] = Field(description="box centre velocity, pixels per second (x right, y down)")
    start_time: float = Field(description="Unix time of the track's first detection")
    end_time: float | None = Field(description="Unix time of its last detection; null until 'end'")
    frame_time: float = Field(description="Unix time of the frame this state is from")
    current_zones: tuple[str, ...] = Field(json_schema_extra={"uniqueItems": True})
    entered_zones: tuple[str, ...] = Field(json_schema_extra={"uniqueItems": True},
                                           description="zones entered so far, in order")
    dwell: dict[str, Annotated[float, Field(ge=0)]] = Field(description="seconds spent in each entered zone")
    loitering_zones: tuple[str, ...] = Field(json_schema_extra={"uniqueItems": True})
    lines_crossed: tuple[Crossing, ...]
    stationary: bool
    motionless_count: int = Field(ge=0, description="frames since the box last moved")
    has_snapshot: bool = Field(False, description="whether GET /api/events/<id>/snapshot.jpg has a view of this "
                               "object (snapshots.enabled), as the snapshot store said when the event was made")

    def doc(self) -> dict[str, Any]:
        """A new JSON-ready dict of this object (GET /api/tracks hands each reader its own)."""
        return self.model_dump(mode="json")


class Event(_Value):
    """Object lifecycle, Frigate-shaped: 'new' when a track is published, 'update' on a meaningful change or
    heartbeat (rate-limited), 'end' exactly once. QoS mqtt.qos (1 by default), not retained."""

    model_config = ConfigDict(title="vigil/<device>/events", json_schema_extra=lambda s: _reason_only_on_end(s))

    type: EventType
    seq: int = Field(ge=1, description="1, 2, 3, … per run, one per event of any type, no gaps: a jump means "
                     "messages were lost; GET /api/events?after=<seq> returns what followed")
    run_id: str = Field(description="random per start of Vigil; seq starts again at 1 when it changes (also the "
                        "prefix of after.id)")
    before: TrackedObject = Field(description="the object as sent in this track's previous event (equal to "
                                  "'after' for 'new')")
    after: TrackedObject = Field(description="the object now")
    changes: tuple[Change | RuleReason, ...] = Field(
        json_schema_extra={"uniqueItems": True},
        description="why this update was sent; empty for 'new'. The built-in reasons, or a reason a rule added "
                    "under `rules:` declares (docs/plugins.md)")
    reason: EndReason | None = Field(None, description="'end' only: the tracker lost the object (lost), Vigil "
                                     "stopped cleanly (stop), or Vigil died and this start ended the tracks the "
                                     "previous run left open (restart)")
    _doc: dict | None = PrivateAttr(None)
    _payload: bytes | None = PrivateAttr(None)

    @model_serializer(mode="wrap")
    def _without_absent_reason(self, handler):
        out = handler(self)
        if out.get("reason", 0) is None:
            del out["reason"]
        return out

    def doc(self) -> dict[str, Any]:
        """The event as a JSON-ready dict, made once and shared by every reader: never change it (copy)."""
        if self._doc is None:
            self._doc = self.model_dump(mode="json")
        return self._doc

    @property
    def payload(self) -> bytes:
        """The event as compact JSON bytes, made once (the MQTT message)."""
        if self._payload is None:
            self._payload = json.dumps(self.doc(), separators=(",", ":"), allow_nan=False).encode()
        return self._payload

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Event:
        """A copy with `update` applied, serialised afresh (never the original's cached bytes)."""
        copy = super().model_copy(update=update, deep=deep)
        copy._doc = copy._payload = None
        return copy

    def with_snapshot(self, before: bool | None, after: bool) -> Event:
        """This event with `has_snapshot` decided (the store's answer); a new value, this one unchanged."""
        b = self.before if before is None or before == self.before.has_snapshot else \
            self.before.model_copy(update={"has_snapshot": before})
        a = self.after if after == self.after.has_snapshot else self.after.model_copy(update={"has_snapshot": after})
        if a is self.after and b is self.before:
            return self
        return self.model_copy(update={"before": b, "after": a})


def _reason_only_on_end(schema: dict[str, Any]) -> None:
    """`reason` is present on 'end' events and on no others (it is left out, never null)."""
    schema["description"] = " ".join(schema["description"].split())
    reason = schema["properties"]["reason"]
    reason.pop("default", None)
    reason["anyOf"] = [x for x in reason.get("anyOf", []) if x.get("type") != "null"]
    if len(reason["anyOf"]) == 1:
        reason.update(reason.pop("anyOf")[0])
    schema["required"] = [k for k in schema.get("required", []) if k != "reason"]
    schema["if"] = {"properties": {"type": {"const": "end"}}}
    schema["then"] = {"required": ["reason"]}
    schema["else"] = {"not": {"required": ["reason"]}}


def object_of(doc: dict[str, Any]) -> TrackedObject:
    """A stored object (the open-tracks file) as a value; ValueError when it is not one Vigil wrote."""
    return TrackedObject.model_validate(doc)


def event_schema() -> dict[str, Any]:
    """The JSON Schema of an event, as committed in docs/schemas/event.schema.json."""
    schema = Event.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def event_schema_text() -> str:
    return json.dumps(event_schema(), indent=2, ensure_ascii=False) + "\n"


HasSnapshot = Callable[[str], bool]  # the snapshot store's answer for an object id
