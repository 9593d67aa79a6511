"""Topic names and payloads of the MQTT feed (documented in docs/mqtt.md, schemas in docs/schemas/)."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import numpy as np

from app.types import Detections

# Axis scene metadata class types for the labels that have one; other labels pass through.
AXIS_CLASS = {"person": "Human", "car": "Car", "truck": "Truck", "bus": "Bus", "bicycle": "Bike", "motorcycle": "Bike"}
_UNSAFE = re.compile(r"[\s/+#\0]+")


def segment(name: str) -> str:
    """A label or name made safe as one topic level (no '/', '+', '#', whitespace)."""
    return _UNSAFE.sub("_", name.strip()) or "_"


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def iso(epoch: float) -> str:
    """Unix time as Axis writes it: YYYY-MM-DDTHH:MM:SS.ffffffZ."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Topics:
    """Every topic under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.available = f"{prefix}/available"
        self.events = f"{prefix}/events"
        self.frame = f"{prefix}/frame"
        self.stats = f"{prefix}/stats"

    def count(self, label: str) -> str:
        return f"{self.prefix}/counts/{segment(label)}"

    def zone(self, zone: str, label: str) -> str:
        return f"{self.prefix}/zones/{zone}/{segment(label)}"

    def line(self, line: str) -> str:
        return f"{self.prefix}/lines/{line}"


def frame_message(epoch: float, size: tuple[int, int], objects: Detections, ended: list[int],
                  labels: list[str], channel_id: int = 1) -> dict:
    """One frame as Axis scene metadata (com.axis.scene.frame.v1): normalised boxes, track ids, class, TrackEnded."""
    w, h = size
    dets = []
    boxes = np.clip(objects.xyxy, 0, (w, h, w, h)).tolist()
    for box, score, cls, tid in zip(boxes, objects.scores.tolist(), objects.class_ids.tolist(),
                                    objects.track_ids.tolist()):
        label = labels[cls] if 0 <= cls < len(labels) else str(cls)
        dets.append({
            "object_track_id": str(tid),
            "bounding_box": {"left": round(box[0] / w, 4), "top": round(box[1] / h, 4),
                             "right": round(box[2] / w, 4), "bottom": round(box[3] / h, 4)},
            "class": {"type": AXIS_CLASS.get(label, label), "score": round(score, 4)},
        })
    msg = {"channel_id": channel_id, "timestamp": iso(epoch), "detections": dets}
    if ended:
        msg["track_events"] = [{"type": "TrackEnded", "object_track_id": str(t)} for t in ended]
    return msg


def ha_node(device_id: str) -> str:
    """The Home Assistant node id of a device: its discovery topics are <prefix>/sensor/<node>/<object>/config."""
    return segment(f"vigil_{device_id}").replace(".", "_")


def ha_discovery(topics: Topics, ha_prefix: str, device_id: str, version: str, state_topic: str) -> tuple[str, dict] | None:
    """(config topic, payload) announcing a Home Assistant sensor for a count or line topic; None for others."""
    rest = state_topic[len(topics.prefix) + 1:].split("/")
    node = ha_node(device_id)
    device = {"identifiers": [node], "name": f"Vigil {device_id}", "manufacturer": "Vigil", "model": "Vigil",
              "sw_version": version}
    base = {"state_topic": state_topic, "availability_topic": topics.available, "payload_available": "online",
            "payload_not_available": "offline", "device": device}
    if rest[0] == "counts" and len(rest) == 2:
        oid, name = f"count_{rest[1]}", f"{rest[1]} count"
        extra = {"state_class": "measurement", "unit_of_measurement": "objects"}
    elif rest[0] == "zones" and len(rest) == 3:
        oid, name = f"zone_{rest[1]}_{rest[2]}", f"{rest[1]} {rest[2]}"
        extra = {"state_class": "measurement", "unit_of_measurement": "objects"}
    elif rest[0] == "lines" and len(rest) == 2:
        # a line gives two sensors; the caller asks for each direction through the returned list
        return None
    else:
        return None
    payload = {**base, "name": name, "unique_id": f"{node}_{oid}", "object_id": f"{node}_{oid}", **extra}
    return f"{ha_prefix}/sensor/{node}/{oid}/config", payload


def ha_line_discovery(topics: Topics, ha_prefix: str, device_id: str, version: str, line: str) -> list[tuple[str, dict]]:
    """Two Home Assistant sensors (in, out) for a line's retained topic."""
    node = ha_node(device_id)
    device = {"identifiers": [node], "name": f"Vigil {device_id}", "manufacturer": "Vigil", "model": "Vigil",
              "sw_version": version}
    out = []
    for d in ("in", "out"):
        oid = f"line_{line}_{d}"
        out.append((f"{ha_prefix}/sensor/{node}/{oid}/config", {
            "name": f"{line} {d}", "unique_id": f"{node}_{oid}", "object_id": f"{node}_{oid}",
            "state_topic": topics.line(line), "value_template": f"{{{{ value_json['{d}'] }}}}",
            "state_class": "total_increasing", "unit_of_measurement": "objects",
            "availability_topic": topics.available, "payload_available": "online",
            "payload_not_available": "offline", "device": device,
        }))
    return out
