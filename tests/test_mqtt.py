"""The MQTT feed on the sample clip, through a real mosquitto: topics, retain flags, QoS, schemas and
the event lifecycle, as a subscriber sees them."""
import json
import threading
from collections import defaultdict

import pytest

from app import pipeline
from app.config import load_config
from tests.mqtt_util import Subscriber, retained_state, validate
from tests.consumers import OnFrame

DEVICE = "clip"
PREFIX = f"vigil/{DEVICE}"
# A cheaper detector set-up than the default (12 model runs per frame instead of 36) and every
# other frame of the 10 fps clip: 150 frames cover 30 s of video in a few seconds.
FAST = {
    "preprocess.tiling.tile_size": 256,
    "preprocess.tiling.full_frame": False,
    "source.fps": 5,
    "output.progress": False,
}
SCENE = {
    # the walkway in the middle of the clip, and the area left of the lamp post
    "zones": {
        "walkway": {"polygon": [[0.4, 0.4], [1.0, 0.4], [1.0, 0.8], [0.4, 0.8]]},
        "west": {"polygon": [[0.0, 0.35], [0.45, 0.35], [0.45, 0.7], [0.0, 0.7]], "labels": ["person"],
                 "loitering_time": 2.0},
    },
    # drawn bottom to top, so 'in' is walking to the right
    "lines": {"crossing": {"start": [0.7, 0.8], "end": [0.7, 0.25]}},
    "events": {"update_interval": 0.5, "heartbeat": 5.0},
}


def clip_config(port: int, **extra):
    over = {
        **FAST, **SCENE,
        "device_id": DEVICE,
        "mqtt": {"enabled": True, "port": port, "frame": True, "stats_interval": 1.0,
                 "home_assistant": {"discovery": True}},
    }
    over.update(extra)
    return load_config(None, over, env={})


@pytest.fixture(scope="module")
def clip_run(mosquitto):
    """Run 150 frames of the sample clip with MQTT on; record everything a subscriber receives."""
    sub = Subscriber(mosquitto.port, "#")
    late: dict = {}

    def late_subscriber() -> None:
        topics = {f"{PREFIX}/{t}" for t in ("available", "counts/all", "counts/person", "zones/walkway/all",
                                             "zones/west/person", "lines/crossing")}
        try:
            late["retained"] = retained_state(mosquitto.port, PREFIX, topics)
        except AssertionError as e:
            late["error"] = str(e)

    thread = threading.Thread(target=late_subscriber)
    frames = []

    def on_frame(frame, tracked):
        frames.append(frame.seq)
        if len(frames) == 75:  # half-way: people are on the walkway
            thread.start()

    summary = pipeline.run(clip_config(mosquitto.port), max_frames=150, consumers=[OnFrame(on_frame)])
    thread.join(15)
    sub.wait_for(lambda m: m.topic == f"{PREFIX}/available" and m.payload == b"offline", what="offline at the end")
    sub.close()
    msgs = [m for m in sub.messages if m.topic.startswith(PREFIX) or m.topic.startswith("homeassistant/")]
    return msgs, summary, late


def events_of(msgs):
    return [m.json() for m in msgs if m.topic == f"{PREFIX}/events"]


def test_every_message_matches_its_schema(clip_run):
    msgs, _, _ = clip_run
    kinds = defaultdict(int)
    for m in msgs:
        rest = m.topic[len(PREFIX) + 1:] if m.topic.startswith(PREFIX) else None
        if rest is None:
            schema = "ha-trigger" if m.topic.split("/")[1] == "device_automation" else "ha-discovery"
            value = m.json()
        elif rest == "available":
            schema, value = "available", m.payload.decode()
        elif rest.startswith("counts/") or rest.startswith("zones/"):
            schema, value = "count", m.json()
        elif rest.startswith("lines/"):
            schema, value = "line", m.json()
        elif rest.endswith("/state"):  # a switch (app/publish/switches.py): the Detection switch
            assert m.payload in (b"ON", b"OFF"), m
            kinds["switch"] += 1
            continue
        else:
            schema, value = {"events": "event"}.get(rest, rest), m.json()  # events, frame, stats
        validate(schema, value)
        kinds[schema] += 1
    assert set(kinds) == {"available", "count", "line", "event", "frame", "stats", "health", "ha-discovery",
                          "ha-trigger", "switch"}, dict(kinds)
    assert kinds["event"] >= 10 and kinds["frame"] >= 150


def test_each_track_gets_new_first_and_end_last_exactly_once(clip_run):
    msgs, summary, _ = clip_run
    by_id = defaultdict(list)
    for e in events_of(msgs):
        by_id[e["after"]["id"]].append(e)
    assert len(by_id) >= 8  # people walk through the clip all the time
    for oid, evs in by_id.items():
        types = [e["type"] for e in evs]
        assert types[0] == "new" and types[-1] == "end", (oid, types)
        assert types.count("new") == 1 and types.count("end") == 1, (oid, types)
        end = evs[-1]["after"]
        assert end["end_time"] is not None and end["end_time"] >= end["start_time"]
        assert all(e["after"]["end_time"] is None for e in evs[:-1])
    assert summary.feed["events"]["new"] == len(by_id) == summary.feed["events"]["end"]


def test_events_are_numbered_from_one_without_gaps_and_every_end_says_why(clip_run):
    msgs, summary, _ = clip_run
    events = events_of(msgs)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["run_id"] for e in events}) == 1
    assert all(e["after"]["id"].startswith(e["run_id"] + "-") for e in events)
    reasons = [e["reason"] for e in events if e["type"] == "end"]
    # the clip ends with people in view: those are ended by the stop, the others by the tracker
    assert set(reasons) == {"lost", "stop"}
    assert all("reason" not in e for e in events if e["type"] != "end")


def test_updates_carry_the_previous_state_and_say_why(clip_run):
    msgs, _, _ = clip_run
    last_after = {}
    updates = 0
    for e in events_of(msgs):
        oid = e["after"]["id"]
        if e["type"] == "new":
            assert e["before"] == e["after"] and e["changes"] == []
        else:
            assert e["before"] == last_after[oid]
        if e["type"] == "update":
            updates += 1
            assert e["changes"], e
        last_after[oid] = e["after"]
    assert updates >= 5


def test_zone_entries_dwell_and_loitering_reach_the_payload(clip_run):
    msgs, _, _ = clip_run
    ends = [e["after"] for e in events_of(msgs) if e["type"] == "end"]
    walkers = [o for o in ends if "walkway" in o["entered_zones"]]
    assert walkers, "nobody entered the walkway"
    for o in walkers:
        assert 0 <= o["dwell"]["walkway"] <= o["end_time"] - o["start_time"] + 1e-6
    changes = {c for e in events_of(msgs) for c in e["changes"]}
    assert {"entered_zone", "left_zone", "crossed_line", "heartbeat"} <= changes, changes
    loiterers = [e for e in events_of(msgs) if "loitering" in e["changes"]]
    for e in loiterers:
        assert "west" in e["after"]["loitering_zones"] and e["after"]["dwell"]["west"] >= 2.0


def test_line_totals_equal_the_crossings_reported_in_events(clip_run):
    msgs, _, _ = clip_run
    crossings = {"in": 0, "out": 0}
    for e in events_of(msgs):
        if e["type"] == "end":
            for c in e["after"]["lines_crossed"]:
                assert c["line"] == "crossing"
                crossings[c["direction"]] += 1
    last = [m for m in msgs if m.topic == f"{PREFIX}/lines/crossing"][-1].json()
    assert (last["in"], last["out"]) == (crossings["in"], crossings["out"])
    assert last["in"] + last["out"] >= 2


def test_state_topics_are_retained_qos1_and_events_frames_are_not_retained(clip_run):
    msgs, _, _ = clip_run
    live = [m for m in msgs if not m.retain]  # delivered live to our subscriber
    for m in live:
        rest = m.topic[len(PREFIX) + 1:]
        if rest == "events":
            assert m.qos == 1
        elif rest == "frame" or rest == "stats":
            assert m.qos == 0
    assert {m.topic[len(PREFIX) + 1:] for m in live if m.qos == 1} >= {"events", "counts/all", "lines/crossing"}


def test_late_subscriber_sees_current_counts_at_once(clip_run, mosquitto):
    msgs, _, late = clip_run
    assert "error" not in late, late.get("error")
    got = late["retained"]
    assert got[f"{PREFIX}/available"].payload == b"online"
    seen = defaultdict(set)
    for m in msgs:
        seen[m.topic].add(m.payload)
    for topic, m in got.items():
        if topic.startswith(f"{PREFIX}/counts/") or topic.startswith(f"{PREFIX}/zones/"):
            assert m.payload in seen[topic]  # a value Vigil really published, not a stale one
    # after the run: everything retained, objects gone, line totals kept, offline
    final = retained_state(mosquitto.port, PREFIX, {f"{PREFIX}/available", f"{PREFIX}/counts/all",
                                                    f"{PREFIX}/lines/crossing", f"{PREFIX}/zones/walkway/all"})
    assert final[f"{PREFIX}/available"].payload == b"offline"
    assert final[f"{PREFIX}/counts/all"].payload == b"0"
    assert final[f"{PREFIX}/zones/walkway/all"].payload == b"0"
    last_line = [m for m in msgs if m.topic == f"{PREFIX}/lines/crossing"][-1]
    assert final[f"{PREFIX}/lines/crossing"].payload == last_line.payload
    assert all(m.retain for m in final.values())


def test_frame_messages_follow_axis_scene_metadata(clip_run):
    msgs, _, _ = clip_run
    frames = [m.json() for m in msgs if m.topic == f"{PREFIX}/frame"]
    published = {str(e["after"]["track_id"]) for e in events_of(msgs)}
    ended = {str(e["after"]["track_id"]) for e in events_of(msgs) if e["type"] == "end"}
    in_frames = {d["object_track_id"] for f in frames for d in f["detections"]}
    track_ended = [t["object_track_id"] for f in frames for t in f.get("track_events", [])]
    assert in_frames and in_frames <= published
    assert sorted(track_ended) == sorted(ended)  # one TrackEnded per ended track
    types = {d["class"]["type"] for f in frames for d in f["detections"]}
    assert "Human" in types and types <= {"Human", "Car", "Truck", "Bus", "Bike"}  # Axis's class names
    stamps = [f["timestamp"] for f in frames]
    assert stamps == sorted(stamps)


def test_home_assistant_discovery_announces_every_count_and_line(clip_run):
    msgs, _, _ = clip_run
    # this device's only: the session broker keeps other tests' retained configs
    configs = {m.topic: m.json() for m in msgs if m.topic.startswith("homeassistant/") and "/vigil_clip/" in m.topic
               and "/device_automation/" not in m.topic}  # device triggers have no availability (ha-trigger schema)
    assert configs
    state_topics = {c["state_topic"] for c in configs.values() if "state_topic" in c}  # not buttons
    published = {m.topic for m in msgs}
    assert state_topics <= published
    assert {f"{PREFIX}/counts/person", f"{PREFIX}/zones/walkway/person", f"{PREFIX}/lines/crossing"} <= state_topics
    assert all(c["availability_topic"] == f"{PREFIX}/available" for c in configs.values())
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)


def test_available_goes_online_before_state_and_offline_last(clip_run):
    msgs, _, _ = clip_run
    avail = [m.payload for m in msgs if m.topic == f"{PREFIX}/available"]
    assert avail[0] == b"online" and avail[-1] == b"offline"
    mine = [m for m in msgs if m.topic.startswith(PREFIX)]
    assert mine[-1].topic == f"{PREFIX}/available"  # nothing after offline


def test_stats_messages_report_the_pipeline(clip_run):
    msgs, _, _ = clip_run
    stats = [m.json() for m in msgs if m.topic == f"{PREFIX}/stats"]
    assert stats
    s = stats[-1]
    assert s["device_id"] == DEVICE and s["mqtt"]["connected"] is True
    assert s["frames"]["processed"] > 0 and s["process_fps"] > 0 and s["model_run_ms"]["p50"] > 0
    assert json.dumps(s)  # plain JSON, no NaN


def all_retained(port: int, topic: str) -> dict[str, bytes]:
    """Every retained message under `topic` now: subscribe, then wait for a marker sent after the SUBACK."""
    import paho.mqtt.publish as publish

    sub = Subscriber(port, topic)
    try:
        marker = f"{topic.rstrip('#')}marker-{id(sub)}"
        sub.client.subscribe(marker, qos=1)
        publish.single(marker, b"x", qos=1, hostname="127.0.0.1", port=port)
        sub.wait_for(lambda m: m.topic == marker, 10, what="the marker")
        return {m.topic: m.payload for m in sub.messages if m.retain and m.payload}
    finally:
        sub.close()


def test_retained_topics_of_a_renamed_zone_and_a_removed_line_are_cleared_at_start(mosquitto):
    import paho.mqtt.publish as publish

    prefix, node = "vigil/rename", "vigil_rename"

    def run(zones: dict, lines: dict) -> None:
        cfg = load_config(None, {**FAST, "device_id": "rename", "zones": zones, "lines": lines,
                                 "mqtt": {"enabled": True, "port": mosquitto.port,
                                          "home_assistant": {"discovery": True}}}, env={})
        pipeline.run(cfg, max_frames=3)

    poly = [[0.4, 0.4], [1.0, 0.4], [1.0, 0.8], [0.4, 0.8]]
    line = {"start": [0.7, 0.8], "end": [0.7, 0.25]}
    run({"plaza": {"polygon": poly}}, {"door": line, "gate": line})
    before = all_retained(mosquitto.port, "#")
    assert f"{prefix}/zones/plaza/all" in before and f"{prefix}/lines/gate" in before
    assert f"homeassistant/sensor/{node}/zone_plaza_person/config" in before
    # not Vigil's: another device's sensor and a topic of the user's under the prefix stay
    publish.single(f"{prefix}/notes", b"mine", retain=True, qos=1, hostname="127.0.0.1", port=mosquitto.port)
    publish.single("homeassistant/sensor/other_node/zone_plaza_person/config", b"{}", retain=True, qos=1,
                   hostname="127.0.0.1", port=mosquitto.port)
    # a label the model no longer has, from an older model's run
    publish.single(f"{prefix}/counts/unicorn", b"0", retain=True, qos=1, hostname="127.0.0.1", port=mosquitto.port)
    run({"lawn": {"polygon": poly}}, {"door": line})  # plaza renamed lawn, gate removed
    after = all_retained(mosquitto.port, "#")
    ours = {t for t in after if t.startswith(f"{prefix}/") or f"/{node}/" in t}
    assert not {t for t in ours if "plaza" in t or "gate" in t or "unicorn" in t}, sorted(ours)
    assert f"{prefix}/zones/lawn/all" in after and f"{prefix}/lines/door" in after
    assert f"homeassistant/sensor/{node}/zone_lawn_person/config" in after
    assert f"homeassistant/sensor/{node}/line_door_in/config" in after
    assert after[f"{prefix}/notes"] == b"mine" and "homeassistant/sensor/other_node/zone_plaza_person/config" in after
