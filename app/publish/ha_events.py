"""Home Assistant `event` entities made from Vigil's event feed (`<prefix>/events`), for automations
that trigger on "a person crossed the line inwards" without a raw MQTT trigger and a template.

Each entity subscribes to the event topic; its value template turns a Vigil event into one Home
Assistant event (`{"event_type": ..., attributes}`) or into nothing (an empty render is ignored by
Home Assistant), so the broker carries each event once, whatever the number of entities:
- "Object" (`event_types`: appeared, gone): a `new` and an `end` event;
- per line, "<line> crossing" (in, out): a crossing of that line that the previous message of the same
  object did not have yet (a `new` counts every crossing it carries);
- per zone, "<zone> activity" (entered, left, loitering): the object is in the zone and was not (a `new`
  inside it enters), was and is not (an `end` inside it leaves), or started loitering there.
One Vigil message fires at most one event per entity: an update carrying an entry and a crossing fires
both entities, but two crossings of one line in one rate-limited update fire one.
Attributes: label, id, score, zones (where the object is), and `snapshot_url`, the best view's JPEG on
the status page's API (`/api/events/<id>/snapshot.jpg`; present when the API is on, `has_snapshot`
says whether a view is kept yet).
"""
from __future__ import annotations

import json

OBJECT_TYPES = ["appeared", "gone"]
LINE_TYPES = ["in", "out"]
ZONE_TYPES = ["entered", "left", "loitering"]


def _attrs(base_url: str | None) -> str:
    """The Jinja dict literal of the attributes every event carries (`e` is the Vigil event)."""
    url = f", 'snapshot_url': {json.dumps(base_url)} ~ 'api/events/' ~ e.after.id ~ '/snapshot.jpg'" if base_url else ""
    return ("'label': e.after.label, 'id': e.after.id, 'score': e.after.top_score, 'zones': e.after.current_zones, "
            f"'has_snapshot': e.after.has_snapshot{url}")


def object_template(base_url: str | None) -> str:
    return ("{%- set e = value_json -%}{%- if e.type in ('new', 'end') -%}"
            "{{ {'event_type': 'appeared' if e.type == 'new' else 'gone', " + _attrs(base_url) + "} | tojson }}"
            "{%- endif -%}")


def line_kind(line: str) -> str:
    """Jinja that sets `t` to the direction of a crossing of `line` this message adds, else ''."""
    name = json.dumps(line)
    return ("{%- set e = value_json -%}"
            f"{{%- set c = e.after.lines_crossed | selectattr('line', 'eq', {name}) | list -%}}"
            f"{{%- set b = [] if e.type == 'new' else e.before.lines_crossed | selectattr('line', 'eq', {name}) | list -%}}"
            "{%- set t = c[-1].direction if c | length > b | length else '' -%}")


def line_template(line: str, base_url: str | None) -> str:
    return (line_kind(line) + "{%- if t -%}"
            "{{ {'event_type': t, 'line': " + json.dumps(line) + ", " + _attrs(base_url) + "} | tojson }}"
            "{%- endif -%}")


def zone_kind(zone: str) -> str:
    """Jinja that sets `t` to entered, left or loitering for `zone` on this message, else ''."""
    name = json.dumps(zone)
    return ("{%- set e = value_json -%}"
            f"{{%- set now = e.type != 'end' and {name} in e.after.current_zones -%}}"
            f"{{%- set was = {name} in e.after.current_zones if e.type == 'end' else "
            f"(e.type != 'new' and {name} in e.before.current_zones) -%}}"
            f"{{%- set loiter = {name} in e.after.loitering_zones and "
            f"(e.type == 'new' or {name} not in e.before.loitering_zones) -%}}"
            "{%- set t = 'entered' if now and not was else ('left' if was and not now else "
            "('loitering' if loiter and e.type != 'end' else '')) -%}")


def zone_template(zone: str, base_url: str | None) -> str:
    return (zone_kind(zone) + "{%- if t -%}{{ {'event_type': t, 'zone': " + json.dumps(zone) + ", "
            + _attrs(base_url) + "} | tojson }}{%- endif -%}")
