"""Zone and line rules (app/analytics/rules.py): a rule from outside app/ (tests/wrong_way_rule.py) is
one module plus one registry line, configured under `rules:` and run by the real pipeline."""
import json
import subprocess
import sys

import numpy as np
import pytest

from app.analytics import Analytics, EventsConfig, LineConfig, ZoneConfig
from app.analytics.rules import RULES
from app.config import ConfigError, load_config
from app.config_input import merge_site
from app.types import Detections, Frame
from tests.conftest import ROOT
from tests.mqtt_util import Subscriber

W, H = 200, 100
LABELS = ["person", "car"]
QUICK = EventsConfig(update_interval=0, heartbeat=0)

SCRIPT = '''
import json, sys
import numpy as np
from app.analytics.rules import RULES, build_rules

RULES.modules["wrong_way"] = "tests.wrong_way_rule"  # the one registry line

from app import pipeline
from app.analytics import Analytics, EventsConfig
from app.config import ConfigError, load_config
from app.config_input import merge_site
from app.tracking.events import KINDS, TrackEvents
from app.types import Detections, Frame

out = {}
for bad in ({"lane": {"type": "wrong_way", "zone": "lane", "direction": [1, 0], "speed": 30}},
            {"lane": {"type": "wrong_way", "zone": "lane"}}):
    try:
        load_config(None, {"rules": bad}, env={})
    except ConfigError as e:
        out.setdefault("refused", []).append(str(e))

# scripted tracks through the analytics the pipeline builds from the same config
cfg = load_config(None, {
    "zones": {"lane": {"polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]], "inertia": 1}},
    "rules": {"lane_eastbound": {"type": "wrong_way", "zone": "lane", "direction": [1, 0]}},
}, env={})
a = Analytics(["person"], cfg.zones, cfg.lines, cfg.filters, cfg.stationary,
              EventsConfig(update_interval=0, heartbeat=0), rules=build_rules(cfg.rules))
events = []
for i in range(6):
    east, west = 0.1 + 0.05 * i, 0.45 - 0.05 * i  # both in the lane's left half, one each way, 100 px/s
    boxes = [[east * 200 - 5, 40, east * 200 + 5, 80], [west * 200 - 5, 40, west * 200 + 5, 80]]
    velocity = [[100, 0], [-100, 0]] if i != 3 else [[100, 0], [-10, 0]]  # a pause at frame 3: slower than 20
    tracker_events = TrackEvents(kind=[KINDS.index("matched")] * 2, track_id=[1, 2], class_id=[0, 0],
                                 timestamp=[i * 0.1] * 2, first_seen=[0, 0], last_seen=[i * 0.1] * 2,
                                 frames_seen=[i + 1] * 2, best_score=[0.9] * 2, score=[0.9] * 2, xyxy=boxes,
                                 velocity=velocity)
    r = a.update(Frame(np.zeros((100, 200, 3), np.uint8), i * 0.1, i), Detections(boxes, [0.9, 0.9], [0, 0], [1, 2]),
                 tracker_events)
    events += [{"frame": i, "type": e["type"], "track": e["after"]["track_id"], "changes": e["changes"]}
               for e in (ev.doc() for ev in r.events)]
out["scripted"] = events

if len(sys.argv) > 1:  # the real pipeline on the sample clip, events to the broker on this port
    run_cfg = load_config(None, {
        "preprocess.tiling.tile_size": 256, "preprocess.tiling.full_frame": False, "source.fps": 5,
        "output.progress": False, "device_id": "rules",
        "mqtt": {"enabled": True, "port": int(sys.argv[1])},
        "events": {"update_interval": 0, "heartbeat": 0},  # an update on the frame its reason is raised
        "zones": {"walkway": {"polygon": [[0.0, 0.4], [1.0, 0.4], [1.0, 0.9], [0.0, 0.9]]}},
        "rules": {"walkway_eastbound": {"type": "wrong_way", "zone": "walkway", "direction": [1, 0]}},
    }, env={})
    out["frames"] = pipeline.run(run_cfg, max_frames=150).frames
print(json.dumps(out))
'''


def run_script(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def clip_run(mosquitto):
    """The clip through the pipeline with the wrong-way rule on its walkway; every event a subscriber gets."""
    sub = Subscriber(mosquitto.port, "vigil/rules/events")
    try:
        out = run_script(str(mosquitto.port))
        sub.wait_for(lambda m: m.json()["type"] == "end" and m.json()["reason"] == "stop", what="the final ends")
    finally:
        sub.close()
    return out, [m.json() for m in sub.messages]


def test_a_rule_registered_by_one_line_raises_its_reason_for_the_right_track_once(clip_run):
    scripted = clip_run[0]["scripted"]
    wrong = [e for e in scripted if "wrong_way" in e["changes"]]
    # the westbound one goes the wrong way from its first frame, where its `new` event is all that is
    # sent (a reason counts for tracks published before the frame); it raises it again after its pause
    assert [(e["frame"], e["track"]) for e in wrong] == [(4, 2)], scripted
    assert [(e["type"], e["track"]) for e in scripted] == [("new", 1), ("new", 2), ("update", 2)]
    assert wrong[0]["changes"] == ["wrong_way"]


def test_a_rules_config_is_refused_in_one_line_naming_the_key(clip_run):
    assert clip_run[0]["refused"] == [
        "rules.lane.speed: unknown key",
        "rules.lane.direction: Field required",
    ]


def test_the_pipeline_runs_a_configured_rule_on_the_clip_and_mqtt_carries_its_reason(clip_run):
    out, events = clip_run
    assert out["frames"] == 150
    wrong = [e for e in events if "wrong_way" in e["changes"]]
    assert wrong, "nobody walked west on the walkway"
    for e in wrong:  # raised on the frame of the event: its velocity is the one judged
        assert "walkway" in e["after"]["current_zones"] and e["after"]["velocity"][0] < -20, e
    # people walk both ways there: the eastbound ones never raise it
    eastbound = {e["after"]["id"] for e in events if e["after"]["velocity"][0] > 20}
    assert eastbound - {e["after"]["id"] for e in wrong}


def test_without_a_registered_type_a_rules_entry_is_refused():
    assert not RULES.modules
    with pytest.raises(ConfigError) as e:
        load_config(None, {"rules": {"lane": {"type": "wrong_way", "zone": "lane"}}}, env={})
    assert str(e.value) == "rules.lane: unknown rule 'wrong_way'; none is registered"


# ---- the built-in rules under the one lock --------------------------------------------------

def dets(*objs):
    """objs: (track id, x, y) normalised bottom centres of small boxes."""
    boxes = [[(x - 0.025) * W, (y - 0.2) * H, (x + 0.025) * W, y * H] for _, x, y in objs]
    return Detections(boxes, [0.9] * len(objs), [0] * len(objs), [t for t, _, _ in objs])


def frame(i: int) -> Frame:
    return Frame(np.zeros((H, W, 3), np.uint8), i * 0.1, i)


def test_live_settings_keep_the_histories_counts_and_a_rules_columns():
    zones = {"left": ZoneConfig(polygon=[(0, 0), (0.5, 0), (0.5, 1), (0, 1)], inertia=1)}
    lines = {"door": LineConfig(start=(0.6, 0.0), end=(0.6, 1.0), hysteresis=0.01)}
    a = Analytics(LABELS, zones=zones, lines=lines, events=QUICK)
    for i, x in enumerate((0.3, 0.4, 0.5, 0.7, 0.8)):
        a.update(frame(i), dets((1, x, 0.9)))
    assert a.line_states["door"]["in"] + a.line_states["door"]["out"] == 1
    more = {**zones, "right": ZoneConfig(polygon=[(0.5, 0), (1, 0), (1, 1), (0.5, 1)], inertia=1)}
    kept = a.reconfigure(more, lines, a.filters, a.stationary, a.policy)
    assert kept == ["door"]
    r = a.update(frame(5), dets((1, 0.85, 0.9)))
    after = r.events[-1].doc()["after"]
    assert after["entered_zones"] == ["left", "right"] and [c["line"] for c in after["lines_crossed"]] == ["door"]
    assert r.events[-1].doc()["changes"] == ["entered_zone"]
    # a removed zone leaves the history; the line's count is the same one
    a.reconfigure({}, lines, a.filters, a.stationary, a.policy)
    obj = a.snapshot().objects()[0]
    assert obj["entered_zones"] == [] and a.line_states["door"]["in"] + a.line_states["door"]["out"] == 1


def test_the_rule_order_is_the_order_reasons_are_listed():
    a = Analytics(LABELS, zones={"right": ZoneConfig(polygon=[(0.5, 0), (1, 0), (1, 1), (0.5, 1)], inertia=1)},
                  lines={"mid": LineConfig(start=(0.45, 0.0), end=(0.45, 1.0), hysteresis=0.01)}, events=QUICK)
    a.update(frame(0), Detections([[20, 40, 30, 80]], [0.5], [0], [1]))  # left of the line, outside the zone
    r = a.update(frame(1), Detections([[110, 50, 120, 90]], [0.9], [1], [1]))  # in, across, relabelled, surer
    assert r.events[-1].doc()["changes"] == ["entered_zone", "label", "score", "crossed_line"]
    names = [getattr(rule, "reasons") for rule in a.rules()]
    assert names == [("entered_zone", "left_zone", "loitering"), ("label",), ("stationary", "moving"), ("score",),
                     ("crossed_line",)]


def test_rules_saved_on_site_replace_the_files_whole_like_zones():
    tree = {"rules": {"old": {"type": "wrong_way", "zone": "a"}}, "zones": {}}
    merge_site(tree, {"rules": {"new": {"type": "wrong_way", "zone": "b"}}})
    assert tree["rules"] == {"new": {"type": "wrong_way", "zone": "b"}}  # a rule deleted on site stays deleted
