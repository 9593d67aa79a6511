"""The Detection switch (app/detection_switch.py, app/publish/switches.py) on a real run: the sample clip
through the real INT8 model, a real mosquitto, the real HTTP API. Off: frames are still read and
processed, no model runs, tracks end, counts are kept, /api/stats says so; the setting survives a
restart; on again: the model runs and objects are tracked again."""
import json

import httpx
import paho.mqtt.publish as publish

from app.config import load_config
from app.publish.config import MqttConfig
from app.publish.expected import Expected
from app.publish.switches import Switches
from tests.consumers import BackgroundRun
from tests.mqtt_util import Subscriber, free_port, wait_until
from tests.test_mqtt import FAST, SCENE

DEVICE = "detswitch"
PREFIX = f"vigil/{DEVICE}"


def config(port: int, state_dir, api_port: int):
    return load_config(None, {
        **FAST, **SCENE, "source.loop": True, "device_id": DEVICE,
        "state": {"file": str(state_dir / "state.json")},
        "api": {"enabled": True, "port": api_port},
        "mqtt": {"enabled": True, "port": port, "stats_interval": 0.5, "home_assistant": {"discovery": True}},
    }, env={})


def test_detection_off_stops_the_model_keeps_the_rest_and_survives_a_restart(mosquitto, tmp_path):
    api = free_port()
    cfg = config(mosquitto.port, tmp_path, api)
    base = f"http://127.0.0.1:{api}"
    stats = lambda: httpx.get(base + "/api/stats", timeout=10).json()  # noqa: E731
    sub = Subscriber(mosquitto.port, f"{PREFIX}/detection/state")
    disc = Subscriber(mosquitto.port, f"homeassistant/switch/vigil_{DEVICE}/detection/config")
    run = BackgroundRun(cfg)
    try:
        # announced to Home Assistant and on at start
        config_msg = disc.wait_for(lambda m: bool(m.payload), 60, what="the Detection switch's discovery")
        assert config_msg.json()["command_topic"] == f"{PREFIX}/detection/set"
        sub.wait_for(lambda m: m.payload == b"ON", 60, what="the switch's state ON")
        wait_until(lambda: run.errors or stats()["tracker"]["active_tracks"] > 0, 90, 0.2, "tracked objects")
        assert stats()["detection"] is True and stats()["detection_fps"] > 0

        publish.single(f"{PREFIX}/detection/set", b"OFF", qos=1, hostname="127.0.0.1", port=mosquitto.port)
        said(sub, 0, b"OFF")
        assert stats()["detection"] is False
        saved = json.loads((tmp_path / "state.switches.json").read_text())
        assert saved["detection"] is False and saved["snapshots"] is True
        # no model runs, frames still go through, the tracks end as when nothing is seen
        wait_until(lambda: stats()["detection_fps"] == 0, 30, 0.2, "no model runs")
        wait_until(lambda: stats()["tracker"]["active_tracks"] == 0, 30, 0.2, "every track ended")
        counts = httpx.get(base + "/api/counts", timeout=10).json()["lines"]["crossing"]
        before = stats()
        wait_until(lambda: stats()["frames"]["processed"] >= before["frames"]["processed"] + 10, 30, 0.2,
                   "frames processed while off")
        after = stats()
        assert after["detection_fps"] == 0 and after["process_fps"] > 0
        assert after["tracker"]["tracks_confirmed"] == before["tracker"]["tracks_confirmed"]
        # counts kept
        assert httpx.get(base + "/api/counts", timeout=10).json()["lines"]["crossing"] == counts
    finally:
        run.stop()
    assert not run.errors, run.errors
    # a retained command is ignored (it would flip the switch at every start)
    publish.single(f"{PREFIX}/detection/set", b"ON", qos=1, retain=True, hostname="127.0.0.1", port=mosquitto.port)

    # a restart keeps it off: the new run never runs the model
    n = len(sub.messages)
    run = BackgroundRun(cfg)
    try:
        wait_until(lambda: run.errors or _get(base) is not None and _get(base)["frames"]["processed"] >= 15, 90,
                   0.2, "frames after the restart")
        s = stats()
        assert s["detection"] is False and s["model_run_ms"]["p50"] is None and s["detection_fps"] == 0
        assert s["model_runs_per_frame"] == 0 and s["tracker"]["tracks_confirmed"] == 0
        said(sub, n, b"OFF")
        assert not any(m.payload == b"ON" for m in sub.messages[n:])
        publish.single(f"{PREFIX}/detection/set", b"", qos=1, retain=True, hostname="127.0.0.1", port=mosquitto.port)
        # on again: the model runs and objects are tracked
        n = len(sub.messages)
        publish.single(f"{PREFIX}/detection/set", b"on", qos=1, hostname="127.0.0.1", port=mosquitto.port)
        said(sub, n, b"ON")
        wait_until(lambda: stats()["tracker"]["tracks_confirmed"] > 0, 60, 0.2, "objects tracked again")
        assert stats()["detection"] is True and stats()["model_run_ms"]["p50"] is not None
    finally:
        run.stop()
        sub.close()
        disc.close()
    assert not run.errors, run.errors


def said(sub: Subscriber, n: int, payload: bytes) -> None:
    """Wait for the switch's state `payload` among the messages after the first `n`."""
    wait_until(lambda: any(m.payload == payload for m in sub.messages[n:]), 20, 0.05, f"the state {payload!r}")


def _get(base: str) -> dict | None:
    try:
        return httpx.get(base + "/api/stats", timeout=5).json()
    except httpx.HTTPError:  # the API of the new run not up yet
        return None


def test_a_switch_not_offered_counts_as_on_and_follows_the_rule_of_the_resets(tmp_path):
    (tmp_path / "state.switches.json").write_text(json.dumps({"detection": False, "snapshots": False}))
    sw = Switches(tmp_path / "state.json")
    # a saved `off` that no one could turn on again (MQTT changes now refused) does not blind the camera
    assert sw.on("detection") and sw.on("snapshots")
    sw.offer(["detection"], "vigil/x", None)
    assert not sw.on("detection") and sw.on("snapshots")
    assert sw.report() == {"snapshots": True, "detection": False}
    sw.offer([], "vigil/x", None)
    assert sw.on("detection")
    # offered where the resets are: a local broker yes, a remote one without credentials no
    base = {"model.labels": ["person"]}
    local = load_config(None, {**base, "mqtt.enabled": True, "mqtt.host": "127.0.0.1"}, env={})
    remote = load_config(None, {**base, "mqtt.enabled": True, "mqtt.host": "broker.lan"}, env={})
    assert "detection" in Expected.of(local, ["person"]).switches
    assert "detection" not in Expected.of(remote, ["person"]).switches
    assert MqttConfig(host="broker.lan").allow_unauthenticated_changes is False
