"""Outputs are plugins: one registry (app/outputs/), config tagged by type, a declared order, and the
messages between outputs going through Links instead of through each other."""
import json
import subprocess
import sys
import textwrap

import pytest

from app import pipeline
from app.config import ConfigError, load_config
from app.outputs import OUTPUTS, Links
from tests.conftest import ROOT
from tests.event_util import EventLog
from tests.mqtt_util import Subscriber
from tests.test_mqtt import FAST, SCENE

# an output from outside app/: one module (its Config and build) ...
TALLY = '''
import json
from typing import Literal
from app.plugins import PluginConfig

class Config(PluginConfig):
    type: Literal["tally"] = "tally"
    path: str
    every: int = 1

class Tally:
    def __init__(self, cfg, where):
        self.cfg, self.where, self.lines = cfg, where, []

    def on_result(self, result):
        if result.frame is None:  # the end of the run
            self.lines.append({"events": [str(e.type) for e in result.events]})
        elif result.frame.seq % self.cfg.every == 0:
            self.lines.append({"seq": result.frame.seq, "objects": len(result.objects)})

    def close(self):
        with open(self.cfg.path, "w") as f:
            json.dump({"where_at_build": self.where, "results": self.lines}, f)

def build(cfg, ctx):
    return Tally(cfg, list(ctx.where))
'''

# ... and one line registering it, before the config tree is imported
SCRIPT = '''
import json, sys
from app.outputs import OUTPUTS

OUTPUTS.modules["tally"] = "tally_output"  # the one registry line per output

from app import pipeline
from app.config import ConfigError, load_config

over = json.loads(sys.argv[1])
summary = pipeline.run(load_config(None, over, env={}), max_frames=12)
refused = []
for bad in ({"type": "tally"}, {"type": "tally", "path": "x", "colour": "red"}):
    try:
        load_config(None, {"outputs": [bad]}, env={})
    except ConfigError as e:
        refused.append(str(e))
print(json.dumps({"frames": summary.frames, "outputs": summary.outputs, "refused": refused}))
'''


def test_an_output_registered_by_one_line_is_configured_by_type_and_gets_every_result(tmp_path):
    (tmp_path / "tally_output.py").write_text(textwrap.dedent(TALLY))
    jsonl, tally = tmp_path / "o.jsonl", tmp_path / "tally.json"
    over = {**FAST, "output.jsonl": str(jsonl), "outputs": [{"type": "tally", "path": str(tally), "every": 4}]}
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(over)], cwd=ROOT, capture_output=True,
                         text=True, timeout=180, env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["frames"] == 12
    written = json.loads(tally.read_text())
    frames = [(r["seq"], r["objects"]) for r in written["results"] if "seq" in r]
    # every frame's result, as the JSON Lines file has it, those its own key (every: 4) asks for
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 12 and 0 < len(frames) < 12
    assert frames == [(r["seq"], len(r["objects"])) for r in records if r["seq"] % 4 == 0]
    assert "seq" not in written["results"][-1] and "end" in written["results"][-1]["events"]  # then the end
    # built after the built-in outputs (declared order): the JSON Lines file was already there
    assert written["where_at_build"] == [f"{jsonl} (JSON Lines)"]
    missing, unknown = got["refused"]
    assert missing.startswith("outputs.0.path: Field required")
    assert unknown.startswith("outputs.0.colour: unknown key for outputs.type tally")


def test_built_in_outputs_keep_their_sections_and_an_unknown_type_names_what_can_be_added():
    with pytest.raises(ConfigError, match=r"^outputs\.0: jsonl is a built-in output, set in `output\.jsonl`"):
        load_config(None, {"outputs": [{"type": "jsonl"}]}, env={})
    with pytest.raises(ConfigError, match=r"^outputs\.0\.type: unknown output 'kafka'; choose one of \(none"):
        load_config(None, {"outputs": [{"type": "kafka"}]}, env={})
    assert load_config(None, {}, env={}).outputs == []


def test_results_reach_the_built_in_outputs_in_the_declared_order():
    order = [s.type for s in OUTPUTS.added([])]
    assert order == ["jsonl", "video", "status", "state", "tracks", "mqtt"]
    # a track is on disk before MQTT sends it (has_snapshot is decided before any output: not an output)
    assert order.index("tracks") < order.index("mqtt")


def test_a_listener_that_fails_does_not_keep_the_message_from_the_others(caplog):
    links, heard = Links(), []

    def broken(oid):
        raise RuntimeError("bug in a listener")

    assert not links.end_delivered.heard and links.snapshots_on()  # nobody listens, nobody switched them off
    links.end_delivered.connect(broken)
    links.end_delivered.connect(heard.append)
    links.end_delivered("r-1")
    assert heard == ["r-1"] and "end delivered: a listener failed" in caplog.text
    links.answer_snapshots_on(lambda: False)
    assert not links.snapshots_on()


def test_acknowledged_ends_leave_the_open_tracks_file_and_snapshots_reach_mqtt(mosquitto, tmp_path):
    """The two messages between outputs, end to end: MQTT's acknowledgement of each `end` reaches the
    open-tracks file (which then holds nothing after a clean stop), and the snapshots' images reach
    MQTT's retained snapshot topics."""
    log = EventLog()
    events = log.events
    cfg = load_config(None, {**FAST, **SCENE, "device_id": "links", "state.file": str(tmp_path / "state.json"),
                             "mqtt": {"enabled": True, "port": mosquitto.port},
                             "snapshots": {"enabled": True, "mqtt": {"enabled": True}}}, env={})
    pipeline.run(cfg, max_frames=40, consumers=[log])
    ended = {e.after.id for e in events if e.type == "end"}
    assert ended  # the stop ends every track
    assert not (tmp_path / "state.tracks.json").exists()  # every end acknowledged, so none is kept open
    late = Subscriber(mosquitto.port, "vigil/links/+/snapshot")  # after the run: what the broker retained
    image = late.wait_for(lambda m: m.topic == "vigil/links/person/snapshot", what="a person's snapshot")
    assert image.retain and image.payload[:2] == b"\xff\xd8"  # a JPEG
