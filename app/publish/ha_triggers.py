"""Home Assistant device triggers (MQTT discovery `device_automation`, `automation_type: trigger`): in the
automation editor, *Device → Vigil <device>* lists "Crossing line crossed_in", "Walkway entered", … so
an automation needs no entity, raw MQTT trigger or template of its own.

One config per trigger under `<discovery prefix>/device_automation/<node>/<object>/config` (retained),
all on Vigil's event topic: its `value_template` (Home Assistant's engine) renders a Vigil event to the
trigger's kind, and Home Assistant fires the trigger whose `payload` equals the result (an empty
render matches nothing). The kinds are the event entities' (app/publish/ha_events.py), so a trigger
fires exactly when the matching event entity does:
- per line: `crossed_in`, `crossed_out` (subtype: the line's name, "Crossing line");
- per zone: `entered`, `left`, and `loitering` when the zone has a `loitering_time`.
What the configuration implies is announced at start, and the stale-topic sweep clears the configs
of lines and zones it no longer has (`device_automation` is one of the swept components).
Keys (Home Assistant's `mqtt/device_trigger.py` TRIGGER_DISCOVERY_SCHEMA, 2024.3.3 installed here, and
the current docs): automation_type, topic, type, subtype, payload, value_template, qos, device; the
pair (type, subtype) is unique on the device.
"""
from __future__ import annotations

from app.publish import ha_events


def triggers(disc, line_titles: dict[str, str], zone_titles: dict[str, str]) -> list[tuple[str, dict]]:
    """The device triggers of a Discovery (its device, topics and loitering zones) for these lines and
    zones (name -> the name a person reads)."""
    out = []

    def add(oid: str, kind: str, subtype: str, template: str) -> None:
        out.append((f"{disc.prefix}/device_automation/{disc.node}/{oid}/config", {
            "automation_type": "trigger", "topic": disc.topics.events, "type": kind, "subtype": subtype,
            "payload": kind, "value_template": template, "qos": 1, "device": disc.device}))

    for ln, title in line_titles.items():
        for d in ("in", "out"):
            add(f"crossed_{ln}_{d}", f"crossed_{d}", title,
                ha_events.line_kind(ln) + "{{ 'crossed_' ~ t if t else '' }}")
    for z, title in zone_titles.items():
        for kind in ["entered", "left"] + (["loitering"] if z in disc.loitering else []):
            add(f"{kind}_{z}", kind, title, ha_events.zone_kind(z) + "{{ t }}")
    return out
