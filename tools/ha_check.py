"""Validate MQTT discovery payloads with Home Assistant's own code (run by tests/test_ha_discovery.py
in .venv-ha, where the `homeassistant` package is installed; see `make ha-venv`).

Reads a JSON list of {"topic", "payload", "states": {topic: payload text}} on stdin and prints one
JSON object per item: the discovery topic as Home Assistant parses it, the errors of the platform's
strict schema (what a YAML entry would get: unknown keys are errors) and of its discovery schema
(what discovery runs), the keys discovery would silently drop, and each template rendered by Home
Assistant's template engine against the state payloads given (value, attributes, image topic)."""
import asyncio
import importlib
import json
import sys
import tempfile

import voluptuous as vol
from homeassistant.components.mqtt import discovery
from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template


def parse_topic(topic: str) -> dict | None:
    prefix = "homeassistant/"
    if not topic.startswith(prefix):
        return None
    m = discovery.TOPIC_MATCHER.match(topic[len(prefix):])
    return m.groupdict() if m else None


async def render(hass: HomeAssistant, template: str, payload: str):
    t = Template(template, hass)
    return t.async_render_with_possible_json_value(payload, "<no value>")


async def check(hass: HomeAssistant, item: dict) -> dict:
    out = {"topic": item["topic"], "errors": []}
    parts = parse_topic(item["topic"])
    out["parsed"] = parts
    if parts is None or parts["component"] not in discovery.SUPPORTED_COMPONENTS:
        out["errors"].append(f"not a discovery topic Home Assistant accepts: {item['topic']}")
        return out
    payload = item["payload"]
    if parts["component"] == "device_automation":  # a device trigger: one schema, unknown keys removed
        module = importlib.import_module("homeassistant.components.mqtt.device_trigger")
        strict = schema = module.TRIGGER_DISCOVERY_SCHEMA
    else:
        module = importlib.import_module(f"homeassistant.components.mqtt.{parts['component']}")
        strict, schema = module.PLATFORM_SCHEMA_MODERN, module.DISCOVERY_SCHEMA
    try:
        strict(dict(payload))
    except vol.Invalid as e:
        out["errors"].append(f"strict schema: {e}")
    try:
        validated = schema(dict(payload))
        out["dropped"] = sorted(set(payload) - set(validated))
    except vol.Invalid as e:
        out["errors"].append(f"discovery schema: {e}")
        return out
    states = item.get("states", {})
    rendered = {}
    for key, topic_key in (("value_template", "state_topic"), ("value_template", "topic"),
                           ("json_attributes_template", "json_attributes_topic")):
        if key in payload and payload.get(topic_key) in states:
            rendered[key] = await render(hass, payload[key], states[payload[topic_key]])
    out["rendered"] = {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
                       for k, v in rendered.items()}
    return out


async def main() -> None:
    items = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as d:
        hass = HomeAssistant(d)
        results = [await check(hass, it) for it in items]
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
