"""Home Assistant as its users set it up: every discovery payload checked by Home Assistant's own
schemas and template engine (the `homeassistant` package in .venv-ha, `make ha-venv`), readable
names, occupancy, images, diagnostics, and line resets over MQTT, on a real broker and pipeline."""
import json
import subprocess

import cv2
import httpx
import numpy as np
import paho.mqtt.publish as publish
import pytest

from app.config import load_config
from app.publish.commands import parse_reset, resets_allowed
from app.publish.config import MqttConfig
from app.publish.discovery import Discovery, human, line_title, plural
from app.publish.payloads import Topics
from tests.conftest import ROOT
from tests.mqtt_util import Subscriber, free_port, wait_until
from tests.test_mqtt import FAST, SCENE
from tests.consumers import BackgroundRun

DEVICE = "hass"
PREFIX = f"vigil/{DEVICE}"
NODE = f"vigil_{DEVICE}"
HA_PYTHON = ROOT / ".venv-ha" / "bin" / "python"


@pytest.fixture(scope="module")
def ha_run(mosquitto):
    """A looping pipeline with discovery, images, snapshots over MQTT and the API; a subscriber from the start."""
    port = free_port()
    sub = Subscriber(mosquitto.port, "#")
    cfg = load_config(None, {
        **FAST, **SCENE,
        "lines": {**SCENE["lines"], "mid": {"start": [0.0, 0.55], "end": [1.0, 0.55]}},
        "source.loop": True,
        "device_id": DEVICE,
        "api": {"enabled": True, "port": port},
        "snapshots": {"enabled": True, "mqtt": {"enabled": True}},
        "mqtt": {"enabled": True, "port": mosquitto.port, "stats_interval": 1.0, "latest_image": {"interval": 0.5},
                 "home_assistant": {"discovery": True}},
    }, env={})
    run = BackgroundRun(cfg)
    errors = run.errors
    # running once the person snapshot image is announced and the first health and stats are out
    want = [f"homeassistant/image/{NODE}/snapshot_person/config", f"{PREFIX}/health", f"{PREFIX}/stats"]
    sub.wait_for(lambda m: errors or (m.topic == want[0]), 90, what="the person snapshot entity")
    wait_until(lambda: errors or all(sub.on(t) for t in want[1:]), 30, 0.1, "health and stats")
    # a stats message with timings: before the first samples they are null (Home Assistant: unknown)
    sub.wait_for(lambda m: errors or (m.topic == want[2] and m.json()["frame_detect_ms"]["p50"] is not None
                                      and m.json()["model_run_ms"]["p50"] is not None), 30, what="timed stats")
    yield sub, f"http://127.0.0.1:{port}", cfg
    run.stop()
    sub.close()
    assert not errors, errors


def configs(sub, component: str | None = None) -> dict[str, dict]:
    """The entities' discovery configs (or, with `component`, that component's: device_automation)."""
    return {t: m.json() for t, m in sub.latest().items()
            if t.startswith("homeassistant/") and f"/{NODE}/" in t and m.payload
            and (t.split("/")[1] == component if component else t.split("/")[1] != "device_automation")}


def ha_check(items: list[dict]) -> list[dict]:
    if not HA_PYTHON.exists():
        pytest.fail("Home Assistant's venv is missing: run `make ha-venv` (make test does)", pytrace=False)
    p = subprocess.run([str(HA_PYTHON), str(ROOT / "tools" / "ha_check.py")], input=json.dumps(items),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)


def test_every_discovery_payload_passes_home_assistants_own_schema_and_templates(ha_run):
    sub, _, _ = ha_run
    found = configs(sub)
    states = {t: m.payload.decode() for t, m in sub.latest().items()
              if t.startswith(PREFIX) and not t.endswith(("snapshot", "latest_image"))}
    # default_entity_id is what Home Assistant 2025.10+ reads (docs/mqtt.md); 2024.3 drops it and reads object_id
    assert all(p["default_entity_id"] == f"{t.split('/')[1]}.{p['object_id']}" for t, p in found.items())
    results = ha_check([{"topic": t, "payload": {k: v for k, v in p.items() if k != "default_entity_id"},
                         "states": states} for t, p in found.items()])
    assert len(results) == len(found) >= 30
    for r in results:
        assert r["errors"] == [] and r["dropped"] == [], r
        assert r["parsed"]["node_id"] == NODE
    rendered = {r["topic"]: r["rendered"] for r in results}
    for topic, payload in found.items():
        got = rendered[topic]
        state = states.get(payload.get("state_topic"))
        if topic.endswith("/source_connected/config"):  # on while the source is ok
            source = json.loads(state)["components"]["source"]["status"]
            assert got["value_template"] == ("ON" if source == "ok" else "OFF"), (topic, state)
        elif topic.startswith("homeassistant/binary_sensor/"):  # on while the zone's count is above 0
            assert got["value_template"] == ("ON" if int(state) > 0 else "OFF"), (topic, state)
        elif "/line_" in topic:
            line = json.loads(state)
            assert int(got["value_template"]) == line[topic.rsplit("_", 1)[1].split("/")[0]]
            assert json.loads(got["json_attributes_template"])["since"] == line["since"]
        elif payload.get("state_topic") == f"{PREFIX}/stats":
            float(got["value_template"])  # a number (fps, ms, messages)
        elif payload.get("state_topic") == f"{PREFIX}/health":
            assert got["value_template"] in ("ok", "degraded", "failing")
            assert set(json.loads(got["json_attributes_template"])) == {"source", "backend", "mqtt"}


def test_entities_have_names_a_person_can_read_icons_and_the_status_page(ha_run):
    sub, base, _ = ha_run
    found = configs(sub)
    names = {p["name"] for p in found.values()}
    assert {"Persons", "Objects", "Walkway persons", "Walkway person occupancy", "Walkway occupancy",
            "West persons", "Crossing line in", "Crossing line out", "Mid line in", "Mid line out",
            "Crossing line reset", "Mid line reset", "All lines reset", "Processing fps",
            "Inference time per frame", "Model run time", "MQTT queue", "Health", "Camera stream", "Latest frame",
            "Last snapshot", "Last person snapshot", "Last truck snapshot", "Camera fps", "Skipped fps", "Object",
            "Crossing line crossing", "Mid line crossing", "Walkway activity", "West activity", "Snapshots"} <= names, sorted(names)
    kinds = {t.split("/")[1] for t in found}
    assert kinds == {"sensor", "binary_sensor", "image", "button", "event", "switch"}
    assert all("icon" in p for t, p in found.items() if "/binary_sensor/" not in t)
    assert all(p["device_class"] == ("connectivity" if p["name"] == "Camera stream" else "occupancy")
               for t, p in found.items() if "/binary_sensor/" in t)
    diag = {p["name"] for p in found.values() if p.get("entity_category") == "diagnostic"}
    assert diag == {"Processing fps", "Camera fps", "Skipped fps", "Inference time per frame", "Model run time", "MQTT queue", "Health",
                    "Camera stream"}
    urls = {p["device"]["configuration_url"] for p in found.values()}
    assert len(urls) == 1
    url = urls.pop()
    assert url.startswith("http://") and url.endswith(base.rsplit(":", 1)[1] + "/")
    page = httpx.get(base + "/", timeout=10)  # the address is this host's name; the page is what it shows
    assert page.status_code == 200 and "Vigil status" in page.text
    print("\n".join(f"{t.split('/')[1]:>13}  {p['name']}" for t, p in sorted(found.items())))


def test_latest_frame_and_snapshots_are_jpegs_within_their_limits(ha_run):
    sub, _, cfg = ha_run
    wait_until(lambda: len(sub.on("/latest_image")) >= 2, 30, 0.1, "two latest images")
    frame = cv2.imdecode(np.frombuffer(sub.on("/latest_image")[-1].payload, np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape[0] == cfg.mqtt.latest_image.height
    snaps = sub.on(f"{PREFIX}/person/snapshot")
    assert snaps and sub.on(f"{PREFIX}/all/snapshot")
    for m in snaps:
        img = cv2.imdecode(np.frombuffer(m.payload, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[0] <= cfg.snapshots.mqtt.height
        assert len(m.payload) <= cfg.snapshots.mqtt.max_bytes
    # retained: a subscriber that comes later gets the last one at once
    late = Subscriber(sub.port, f"{PREFIX}/person/snapshot")
    try:
        assert late.wait_for(lambda m: m.retain, 10, what="the retained snapshot").payload[:2] == b"\xff\xd8"
    finally:
        late.close()


def test_a_reset_over_mqtt_zeroes_the_named_line_and_its_since_moves(ha_run):
    sub, base, _ = ha_run
    topic = f"{PREFIX}/lines/crossing"
    wait_until(lambda: any(m.json()["in"] + m.json()["out"] > 0 for m in sub.on(topic)), 60, 0.1, "a crossing")
    before = sub.on(topic)[-1].json()
    mid_before = sub.on(f"{PREFIX}/lines/mid")[-1].json()["since"]
    n = len(sub.on(topic))
    publish.single(f"{PREFIX}/counts/reset/set", b"crossing", qos=1, hostname="127.0.0.1", port=sub.port)
    wait_until(lambda: any(m.json()["since"] > before["since"] for m in sub.on(topic)[n:]), 20, 0.05, "the reset")
    after = next(m.json() for m in sub.on(topic)[n:] if m.json()["since"] > before["since"])
    # zeroed: a crossing in the milliseconds between the reset and the publish may already show
    assert after["in"] + after["out"] <= 2, (before, after)
    assert sub.on(f"{PREFIX}/lines/mid")[-1].json()["since"] == mid_before  # only the line named
    counts = httpx.get(base + "/api/counts", timeout=10).json()
    assert counts["lines"]["crossing"]["since"] >= after["since"]
    # an unknown line changes nothing (a warning in the log), nor does deleting a retained message
    # on the topic (everyone subscribed gets an empty message)
    n = len(sub.on(topic))
    publish.single(f"{PREFIX}/counts/reset/set", b"nope", qos=1, hostname="127.0.0.1", port=sub.port)
    publish.single(f"{PREFIX}/counts/reset/set", b"", qos=1, retain=True, hostname="127.0.0.1", port=sub.port)
    publish.single(f"{PREFIX}/counts/reset/set", b"PRESS", qos=1, hostname="127.0.0.1", port=sub.port)
    wait_until(lambda: sub.on(f"{PREFIX}/lines/mid")[-1].json()["since"] > mid_before, 20, 0.05, "the reset of all")


def test_resets_over_mqtt_need_an_authenticating_or_local_broker_or_an_opt_in():
    assert resets_allowed(MqttConfig(host="127.0.0.1"))[0]
    assert resets_allowed(MqttConfig(host="broker.lan", username="vigil"))[0]
    ok, why = resets_allowed(MqttConfig(host="broker.lan"))
    assert not ok and "mqtt.username" in why and "allow_unauthenticated_changes" in why
    assert resets_allowed(MqttConfig(host="broker.lan", allow_unauthenticated_changes=True))[0]
    # refused: no subscription, and no buttons for Home Assistant
    d = Discovery(Topics("vigil/x"), "homeassistant", "x", "1", lines=["door"], reset=False)
    assert not [t for t, _ in d.static() if "/button/" in t]


@pytest.mark.parametrize("payload, names", [
    (b"PRESS", None), (b"all", None), (b"door", ["door"]), (b"door, gate", ["door", "gate"]),
    (b'["gate"]', ["gate"]),
])
def test_reset_payloads_name_lines_or_all(payload, names):
    assert parse_reset(payload, ["door", "gate"]) == names


@pytest.mark.parametrize("payload", [b"window", b'["door", 3]', b"[oops", b"", b" ", b",", b"[]"])
def test_reset_payloads_naming_no_line_are_refused(payload):
    with pytest.raises(ValueError):
        parse_reset(payload, ["door", "gate"])


def test_names_read_like_english():
    assert [plural(x) for x in ("person", "bus", "traffic light", "all", "vehicle")] == \
        ["persons", "buses", "traffic lights", "objects", "vehicles"]
    assert human("mid_line") == "Mid line" and line_title("mid_line") == "Mid line" and line_title("door") == "Door line"


def test_the_health_topic_and_every_discovery_config_match_their_schemas(ha_run):
    from tests.mqtt_util import validate

    sub, _, _ = ha_run
    health = sub.on(f"{PREFIX}/health")
    assert health
    for m in health:
        validate("health", m.json())
    for payload in configs(sub).values():
        validate("ha-discovery", payload)


def _event(kind: str, before: dict, after: dict) -> dict:
    base = {"id": "r-7", "label": "person", "top_score": 0.9, "current_zones": [], "loitering_zones": [],
            "lines_crossed": [], "has_snapshot": True}
    return {"type": kind, "seq": 1, "before": {**base, **before}, "after": {**base, **after}, "changes": []}


CROSS_IN = {"line": "door", "direction": "in", "time": 1.0}
CROSS_OUT = {"line": "door", "direction": "out", "time": 2.0}
OTHER = {"line": "gate", "direction": "out", "time": 1.5}


EVENT_CASES = [
    # object: appeared on new, gone on end, nothing on an update
    (_event("new", {}, {}), {"object": "appeared"}),
    (_event("end", {}, {}), {"object": "gone"}),
    (_event("update", {}, {}), {}),
    # line: a crossing of its line the previous message did not carry, with its direction
    (_event("update", {}, {"lines_crossed": [CROSS_IN]}), {"crossing_door": "in"}),
    (_event("update", {"lines_crossed": [CROSS_IN]}, {"lines_crossed": [CROSS_IN, CROSS_OUT]}), {"crossing_door": "out"}),
    (_event("update", {"lines_crossed": [CROSS_IN]}, {"lines_crossed": [CROSS_IN, OTHER]}), {"crossing_gate": "out"}),
    (_event("new", {"lines_crossed": [CROSS_IN]}, {"lines_crossed": [CROSS_IN]}),
     {"object": "appeared", "crossing_door": "in"}),
    # zone: entered, left, loitering; a new object inside enters, an ended one inside leaves
    (_event("update", {}, {"current_zones": ["yard"]}), {"activity_yard": "entered"}),
    (_event("update", {"current_zones": ["yard"]}, {}), {"activity_yard": "left"}),
    (_event("update", {"current_zones": ["yard"]}, {"current_zones": ["yard"], "loitering_zones": ["yard"]}),
     {"activity_yard": "loitering"}),
    (_event("new", {"current_zones": ["yard"]}, {"current_zones": ["yard"]}),
     {"object": "appeared", "activity_yard": "entered"}),
    (_event("end", {"current_zones": ["yard"]}, {"current_zones": ["yard"]}), {"object": "gone", "activity_yard": "left"}),
]


def test_event_entities_turn_vigil_events_into_home_assistant_events():
    """The event entities' templates rendered by Home Assistant's own template engine (one process for all)."""
    from app.publish.expected import Expected

    d = Discovery(Topics("vigil/x"), "homeassistant", "x", "1", "http://cam:8080/", lines=["door", "gate"],
                  expected=Expected(labels=["person"], zones={"yard": []}))
    entities = {t.split("/")[3]: p for t, p in d.events()}
    assert set(entities) == {"object", "crossing_door", "crossing_gate", "activity_yard"}
    items = [{"topic": t, "payload": {k: v for k, v in p.items() if k != "default_entity_id"},
              "states": {"vigil/x/events": json.dumps(event)}} for event, _ in EVENT_CASES for t, p in d.events()]
    results = ha_check(items)
    for n, (event, fired) in enumerate(EVENT_CASES):
        got = {}
        for r in results[n * len(entities):(n + 1) * len(entities)]:
            assert r["errors"] == [] and r["dropped"] == [], r
            if text := r["rendered"]["value_template"]:
                data = json.loads(text)
                oid = r["topic"].split("/")[3]
                assert data["event_type"] in entities[oid]["event_types"]
                assert data["label"] == "person" and data["id"] == "r-7"
                assert data["snapshot_url"] == "http://cam:8080/api/events/r-7/snapshot.jpg"
                got[oid] = data["event_type"]
        assert got == fired, (n, event["type"], got, fired)


def test_device_triggers_fire_exactly_when_the_event_entities_do():
    """The device triggers' templates rendered by Home Assistant's engine: the trigger whose payload equals
    the render fires; that is the one for the event entity's event type, and no other."""
    from app.publish.expected import Expected

    d = Discovery(Topics("vigil/x"), "homeassistant", "x", "1", "http://cam:8080/", lines=["door", "gate"],
                  expected=Expected(labels=["person"], zones={"yard": []}, loitering=["yard"]))
    triggers = [(t, p) for t, p in d.static() if t.startswith("homeassistant/device_automation/")]
    assert {t.split("/")[3] for t, _ in triggers} == {
        "crossed_door_in", "crossed_door_out", "crossed_gate_in", "crossed_gate_out", "entered_yard", "left_yard",
        "loitering_yard"}
    assert len({(p["type"], p["subtype"]) for _, p in triggers}) == len(triggers)  # unique on the device
    results = ha_check([{"topic": t, "payload": p, "states": {"vigil/x/events": json.dumps(event)}}
                        for event, _ in EVENT_CASES for t, p in triggers])
    as_entity = {"crossed_door_in": ("crossing_door", "in"), "crossed_door_out": ("crossing_door", "out"),
                 "crossed_gate_in": ("crossing_gate", "in"), "crossed_gate_out": ("crossing_gate", "out"),
                 "entered_yard": ("activity_yard", "entered"), "left_yard": ("activity_yard", "left"),
                 "loitering_yard": ("activity_yard", "loitering")}
    for n, (event, fired) in enumerate(EVENT_CASES):
        got = {}
        for r, (_, p) in zip(results[n * len(triggers):(n + 1) * len(triggers)], triggers):
            assert r["errors"] == [] and r["dropped"] == [], r
            if r["rendered"]["value_template"] == p["payload"]:
                entity, kind = as_entity[r["topic"].split("/")[3]]
                got[entity] = kind
        assert got == {k: v for k, v in fired.items() if k != "object"}, (n, event["type"], got, fired)


def test_device_triggers_are_announced_and_pass_home_assistants_schema(ha_run):
    sub, _, _ = ha_run
    found = configs(sub, "device_automation")
    # the scene: lines crossing and mid, zones walkway and west (loitering_time 2 s)
    assert {t.split("/")[3] for t in found} == {
        "crossed_crossing_in", "crossed_crossing_out", "crossed_mid_in", "crossed_mid_out", "entered_walkway",
        "left_walkway", "entered_west", "left_west", "loitering_west"}
    assert all(p["topic"] == f"{PREFIX}/events" and p["automation_type"] == "trigger"
               and p["device"]["identifiers"] == [NODE] for p in found.values())
    results = ha_check([{"topic": t, "payload": p} for t, p in found.items()])
    assert all(r["errors"] == [] and r["dropped"] == [] for r in results), results
