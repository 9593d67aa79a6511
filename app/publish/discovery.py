"""Home Assistant MQTT discovery: what a Home Assistant user sees of Vigil, and the config payloads.

Entities, all under one device (with `configuration_url` pointing at the status page) and all
unavailable while `<prefix>/available` is `offline`:
- sensors per count topic ("Persons", "Objects") and per zone count ("Walkway persons");
- an occupancy binary_sensor per zone × label, on while the count is above 0 ("Walkway person occupancy");
- two sensors per line ("Crossing line in"/"… out", total_increasing) with `since` as an attribute,
  and a button per line (and one for all lines) that resets it through `<prefix>/counts/reset/set`,
  when MQTT resets are allowed (app/publish/commands.py);
- image entities for the latest annotated frame (`<prefix>/latest_image`) and the last snapshot
  (`<prefix>/all/snapshot`, and one per label: those the configuration names are announced at start,
  any other as it first appears; app/publish/expected.py), when those feeds are on;
- a `Snapshots` switch (config) turning the snapshot output on and off, and a `Detection` switch turning
  the model off and on (app/detection_switch.py), when MQTT changes are accepted (app/publish/switches.py);
- event entities for an object appearing or gone, per line crossed (in/out) and per zone entered, left
  or loitered in (app/publish/ha_events.py), and the same as device triggers (app/publish/ha_triggers.py);
- diagnostic sensors: camera, processing and skipped fps, inference time per frame and per model run,
  MQTT queue (from `<prefix>/stats`) and health (`<prefix>/health`).
Entity ids: `default_entity_id` (`<component>.<node>_<object>`, Home Assistant 2025.10+) and `object_id`
(`<node>_<object>`, what 2024.x–2025.9 read; 2026.4+ ignores it), so every version makes the same
entity id; object ids of the sensors announced before (count_*, zone_*, line_*_in/out) are unchanged.
"""
from __future__ import annotations

import socket

from app.api.config import ApiConfig
from app.publish import ha_events, ha_triggers
from app.publish.config import HomeAssistantConfig
from app.publish.payloads import Topics, ha_node

ICONS = {"person": "mdi:account", "car": "mdi:car", "truck": "mdi:truck", "bus": "mdi:bus", "bicycle": "mdi:bicycle",
         "motorcycle": "mdi:motorbike", "dog": "mdi:dog", "cat": "mdi:cat", "bird": "mdi:bird",
         "vehicle": "mdi:car-multiple", "all": "mdi:shape-outline"}
SWITCH_ICONS = {"snapshots": "mdi:camera-burst", "detection": "mdi:motion-sensor"}
COMPONENTS = ("sensor", "binary_sensor", "image", "button", "event", "switch", "device_automation")


def human(name: str) -> str:
    """A zone or line name as a person would write it: mid_line -> Mid line."""
    text = name.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def plural(label: str) -> str:
    """persons, buses, traffic lights, objects (for 'all')."""
    if label == "all":
        return "objects"
    if label.endswith(("s", "x", "ch", "sh")):
        return label + "es"
    if label.endswith("y") and label[-2:-1] not in tuple("aeiou"):
        return label[:-1] + "ies"
    return label + "s"


def line_title(line: str) -> str:
    t = human(line)
    return t if t.lower().endswith("line") else f"{t} line"


class Discovery:
    """The discovery configs of one publisher (pure: topics and payloads, no I/O)."""

    def __init__(self, topics: Topics, ha_prefix: str, device_id: str, version: str,
                 configuration_url: str | None = None, lines: list[str] | tuple = (), reset: bool = False,
                 latest_image: bool = False, snapshots: bool = False, expected=None) -> None:
        self.topics = topics
        self.prefix = ha_prefix
        self.node = ha_node(device_id)
        self.device = {"identifiers": [self.node], "name": f"Vigil {device_id}", "manufacturer": "Vigil",
                       "model": "Vigil", "sw_version": version}
        if configuration_url:
            self.device["configuration_url"] = configuration_url
        self.lines = list(lines)
        self.reset = reset
        self.latest_image = latest_image
        self.snapshots = snapshots
        self.zones = list(expected.zones) if expected is not None else []
        self.loitering = list(expected.loitering) if expected is not None else []
        self.snapshot_labels = list(expected.snapshot_labels) if expected is not None and snapshots else []
        self.switches = list(expected.switches) if expected is not None else []

    def _entity(self, component: str, oid: str, name: str, **fields) -> tuple[str, dict]:
        payload = {"name": name, "unique_id": f"{self.node}_{oid}", "object_id": f"{self.node}_{oid}",
                   "default_entity_id": f"{component}.{self.node}_{oid}", **fields,
                   "availability_topic": self.topics.available, "payload_available": "online",
                   "payload_not_available": "offline", "device": self.device}
        return f"{self.prefix}/{component}/{self.node}/{oid}/config", payload

    def static(self) -> list[tuple[str, dict]]:
        """Entities that exist from the start: diagnostics, reset buttons, image entities."""
        t = self.topics
        diag = {"entity_category": "diagnostic"}
        fps = {"state_topic": t.stats, "unit_of_measurement": "fps", "state_class": "measurement", **diag}
        out = [
            self._entity("sensor", "process_fps", "Processing fps", value_template="{{ value_json.process_fps }}",
                         icon="mdi:speedometer", **fps),
            self._entity("sensor", "camera_fps", "Camera fps", value_template="{{ value_json.camera_fps }}",
                         icon="mdi:camera-iris", **fps),
            self._entity("sensor", "skipped_fps", "Skipped fps", value_template="{{ value_json.skipped_fps }}",
                         icon="mdi:debug-step-over", **fps),
            # the two inference figures of GET /api/stats, each named for what it measures (p50)
            self._entity("sensor", "inference_time", "Inference time per frame", state_topic=t.stats,
                         value_template="{{ value_json.frame_detect_ms.p50 }}", unit_of_measurement="ms",
                         device_class="duration", state_class="measurement", icon="mdi:timer-outline", **diag),
            self._entity("sensor", "model_run_time", "Model run time", state_topic=t.stats,
                         value_template="{{ value_json.model_run_ms.p50 }}", unit_of_measurement="ms",
                         device_class="duration", state_class="measurement", icon="mdi:timer-outline", **diag),
            self._entity("sensor", "mqtt_queue", "MQTT queue", state_topic=t.stats,
                         value_template="{{ value_json.mqtt.queued }}", unit_of_measurement="messages",
                         state_class="measurement", icon="mdi:tray-full", **diag),
            self._entity("sensor", "health", "Health", state_topic=t.health,
                         value_template="{{ value_json.status }}", json_attributes_topic=t.health,
                         json_attributes_template="{{ value_json.components | tojson }}", icon="mdi:heart-pulse",
                         **diag),
            # on at once when the camera stream is lost or back (health goes out on every status change)
            self._entity("binary_sensor", "source_connected", "Camera stream", state_topic=t.health,
                         value_template="{{ 'ON' if value_json.components.source.status == 'ok' else 'OFF' }}",
                         payload_on="ON", payload_off="OFF", device_class="connectivity", **diag),
        ]
        if self.reset and self.lines:
            cmd = {"command_topic": t.reset_command, "entity_category": "config", "icon": "mdi:counter"}
            out += [self._entity("button", f"reset_{ln}", f"{line_title(ln)} reset", payload_press=ln, **cmd)
                    for ln in self.lines]
            if len(self.lines) > 1:
                out.append(self._entity("button", "reset_lines", "All lines reset", payload_press="all", **cmd))
        if self.latest_image:
            out.append(self._entity("image", "latest_frame", "Latest frame", image_topic=t.latest_image,
                                    content_type="image/jpeg", icon="mdi:cctv"))
        if self.snapshots:
            out.append(self._entity("image", "snapshot_all", "Last snapshot", image_topic=t.snapshot("all"),
                                    content_type="image/jpeg", icon="mdi:image"))
            for label in self.snapshot_labels:
                out += self.for_state(t.snapshot(label))
        for name in self.switches:  # app/publish/switches.py
            out.append(self._entity("switch", name, human(name), command_topic=f"{t.prefix}/{name}/set",
                                    state_topic=f"{t.prefix}/{name}/state", payload_on="ON", payload_off="OFF",
                                    entity_category="config", icon=SWITCH_ICONS.get(name, "mdi:toggle-switch")))
        triggers = ha_triggers.triggers(self, {ln: line_title(ln) for ln in self.lines}, {z: human(z) for z in self.zones})
        return out + self.events() + triggers

    def events(self) -> list[tuple[str, dict]]:
        """Event entities on the event feed (app/publish/ha_events.py)."""
        base = self.device.get("configuration_url")
        ev = {"state_topic": self.topics.events}
        out = [self._entity("event", "object", "Object", event_types=ha_events.OBJECT_TYPES,
                            value_template=ha_events.object_template(base), icon="mdi:motion-sensor", **ev)]
        out += [self._entity("event", f"crossing_{ln}", f"{line_title(ln)} crossing", event_types=ha_events.LINE_TYPES,
                             value_template=ha_events.line_template(ln, base), icon="mdi:arrow-split-vertical", **ev)
                for ln in self.lines]
        out += [self._entity("event", f"activity_{z}", f"{human(z)} activity", event_types=ha_events.ZONE_TYPES,
                             value_template=ha_events.zone_template(z, base), icon="mdi:vector-polygon", **ev)
                for z in self.zones]
        return out

    def for_state(self, topic: str) -> list[tuple[str, dict]]:
        """Entities for one retained topic Vigil publishes (count, zone, line, per-label snapshot)."""
        rest = topic[len(self.topics.prefix) + 1:].split("/")
        measure = {"state_class": "measurement", "unit_of_measurement": "objects"}
        if rest[0] == "counts" and len(rest) == 2:
            label = rest[1]
            return [self._entity("sensor", f"count_{label}", human(plural(label)), state_topic=topic,
                                 icon=ICONS.get(label, "mdi:shape-outline"), **measure)]
        if rest[0] == "zones" and len(rest) == 3:
            zone, label = rest[1], rest[2]
            what = "" if label == "all" else f" {label}"
            return [
                self._entity("sensor", f"zone_{zone}_{label}", f"{human(zone)} {plural(label)}", state_topic=topic,
                             icon=ICONS.get(label, "mdi:shape-outline"), **measure),
                self._entity("binary_sensor", f"occupancy_{zone}_{label}", f"{human(zone)}{what} occupancy",
                             state_topic=topic, value_template="{{ 'ON' if value | int(0) > 0 else 'OFF' }}",
                             payload_on="ON", payload_off="OFF", device_class="occupancy"),
            ]
        if rest[0] == "lines" and len(rest) == 2:
            line = rest[1]
            return [self._entity(
                "sensor", f"line_{line}_{d}", f"{line_title(line)} {d}", state_topic=topic,
                value_template=f"{{{{ value_json['{d}'] }}}}", state_class="total_increasing",
                unit_of_measurement="objects", icon="mdi:arrow-right-bold" if d == "in" else "mdi:arrow-left-bold",
                json_attributes_topic=topic,
                json_attributes_template="{{ {'since': value_json.since, 'labels': value_json.labels} | tojson }}",
            ) for d in ("in", "out")]
        if len(rest) == 2 and rest[1] == "snapshot" and rest[0] != "all":
            label = rest[0]
            return [self._entity("image", f"snapshot_{label}", f"Last {label} snapshot", image_topic=topic,
                                 content_type="image/jpeg", icon=ICONS.get(label, "mdi:image"))]
        return []


def status_page_url(api: ApiConfig, ha: HomeAssistantConfig) -> str | None:
    """Where a person opens the status page: the configured address, else one made from api.* (None with the API off)."""
    if ha.configuration_url:
        return ha.configuration_url
    if not api.enabled:
        return None
    host = api.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname() or "localhost"
    host = f"[{host}]" if ":" in host else host
    if api.root_path:  # on a camera: its reverse proxy serves /local/<app>/ on port 80
        return f"http://{host}{api.root_path}/"
    return f"http://{host}:{api.port}/"
