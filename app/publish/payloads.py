"""Topic names and payloads of the MQTT feed (documented in docs/mqtt.md, schemas in docs/schemas/)."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from app.labels import label_name
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
        self.health = f"{prefix}/health"  # the GET /api/health document, retained, every stats interval
        self.reset_command = f"{prefix}/counts/reset/set"  # line count resets (app/publish/commands.py)
        self.latest_image = f"{prefix}/latest_image"  # the annotated frame as JPEG (mqtt.latest_image)

    def count(self, label: str) -> str:
        return f"{self.prefix}/counts/{segment(label)}"

    def zone(self, zone: str, label: str) -> str:
        return f"{self.prefix}/zones/{zone}/{segment(label)}"

    def line(self, line: str) -> str:
        return f"{self.prefix}/lines/{line}"

    def snapshot(self, label: str) -> str:
        """Frigate's <camera>/<label>/snapshot: the latest best view of an object of that label (JPEG)."""
        return f"{self.prefix}/{segment(label)}/snapshot"


def frame_message(epoch: float, size: tuple[int, int], objects: Detections, ended: list[int],
                  labels: list[str], channel_id: int = 1) -> dict:
    """One frame as Axis scene metadata (com.axis.scene.frame.v1): normalised boxes, track ids, class, TrackEnded."""
    w, h = size
    dets = []
    for box, score, cls, tid in zip(objects.xyxy.tolist(), objects.scores.tolist(), objects.class_ids.tolist(),
                                    objects.track_ids.tolist()):
        label = label_name(labels, cls)
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
