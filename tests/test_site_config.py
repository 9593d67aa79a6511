"""Settings changed on site: the site file and its place among the layers, the configuration routes, and
changes applied live (zones, lines), by a new MQTT publisher (broker settings) or by a restart — against a
real pipeline on the sample clip, real mosquitto brokers and real HTTP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from app.config import load_config
from app.errors import ConfigError
from app.run_options import ConfigLayers
from app.settings import Settings, plan
from app.site import SiteFile, prev_path, with_kept_secrets
from tests.conftest import ROOT
from tests.consumers import BackgroundRun
from tests.mqtt_util import Subscriber, free_port, wait_until
from tests.test_mqtt import FAST

JSON = {"Content-Type": "application/json"}
LAWN = {"polygon": [[0.0, 0.45], [1.0, 0.45], [1.0, 1.0], [0.0, 1.0]]}
GATE = {"start": [0.55, 0.95], "end": [0.55, 0.2]}  # drawn bottom to top: 'in' is walking to the right


# ---- the site layer ----------------------------------------------------------------------------

def test_site_layer_sits_between_camera_parameters_and_flags_and_replaces_zones_whole(tmp_path):
    f = tmp_path / "vigil.yaml"
    f.write_text("mqtt: {host: broker.local, port: 1000}\nzones:\n  old: {polygon: [[0,0],[1,0],[1,1]]}\n")
    env = {"VIGIL_MQTT__PORT": "2000"}
    params = {"mqtt.port": 3000}
    site = {"mqtt": {"port": 4000}, "zones": {"lawn": LAWN}}
    assert load_config(f, env=env, params=params).mqtt.port == 3000
    cfg = load_config(f, env=env, params=params, site=site)
    assert cfg.mqtt.port == 4000 and cfg.mqtt.host == "broker.local"  # sections merge key by key
    assert list(cfg.zones) == ["lawn"]  # a zone deleted on site stays deleted
    assert load_config(f, {"mqtt.port": 5000}, env=env, params=params, site=site).mqtt.port == 5000


def test_site_file_is_saved_atomically_and_keeps_the_version_before(tmp_path):
    site = SiteFile(tmp_path / "data" / "site.yaml")
    site.save({"zones": {"lawn": LAWN}})
    site.save({"lines": {"gate": GATE}})
    assert yaml.safe_load(site.path.read_text()) == {"lines": {"gate": GATE}}
    assert yaml.safe_load(prev_path(site.path).read_text()) == {"zones": {"lawn": LAWN}}
    assert sorted(p.name for p in site.path.parent.iterdir()) == ["site.yaml", "site.yaml.prev"]  # no temp left


@pytest.mark.parametrize("damage", ["zones: [unclosed\n", "zones:\n  lawn: {polygon: [[0,0],[2,2],[0,1]]}\n",
                                    "\x00\xff binary"])
def test_a_damaged_or_invalid_site_file_runs_on_its_previous_version_and_says_why(tmp_path, damage):
    layers = ConfigLayers(None, {}, {})
    site = SiteFile(tmp_path / "site.yaml")
    site.save({"zones": {"lawn": LAWN}})
    site.save({"lines": {"gate": GATE}})
    site.path.write_bytes(damage.encode("latin-1"))
    opened = SiteFile.open(site.path, layers.check)
    assert opened.tree == {"zones": {"lawn": LAWN}}
    assert "previous version" in opened.error and str(site.path) in opened.error
    prev_path(site.path).write_text("lines: 3\n")
    assert SiteFile.open(site.path, layers.check).tree == {}  # neither usable: none, never a crash


def test_a_site_zone_naming_an_unknown_label_is_refused_like_at_start():
    layers = ConfigLayers(None, {}, {})
    with pytest.raises(ConfigError, match=r"zones\.lawn\.labels: 'persn' is not one of the model's labels"):
        layers.check({"zones": {"lawn": {**LAWN, "labels": ["persn"]}}})


@pytest.mark.parametrize("tree", [{"api": {"admin_port": None}}, {"api": {"port": 9}}, {"site": {"file": "/x"}}])
def test_where_the_api_listens_cannot_be_changed_on_site(tree):
    """A save from the settings page must not cut off the settings page (the camera's admin path)."""
    with pytest.raises(ConfigError, match="cannot be set on site") as e:
        Settings(load_config(None, env={})).check(tree)
    assert e.value.items[0]["loc"] in ("api.admin_port", "api.port", "site")


def test_secrets_left_out_or_masked_keep_the_stored_ones_and_an_empty_one_clears():
    stored = {"mqtt": {"username": "v", "password": "pw"}, "api": {"token": "tok"}}
    kept = with_kept_secrets({"mqtt": {"username": "w"}}, stored)
    assert kept == {"mqtt": {"username": "w", "password": "pw"}, "api": {"token": "tok"}}
    assert with_kept_secrets({"mqtt": {"password": "**********"}}, stored)["mqtt"]["password"] == "pw"
    assert "password" not in with_kept_secrets({"mqtt": {"password": ""}}, stored).get("mqtt", {})


def test_each_section_is_applied_in_the_cheapest_complete_way():
    base = load_config(None, env={})
    zones = load_config(None, env={}, site={"zones": {"lawn": LAWN}})
    p = plan(base, zones)
    assert (p.live, p.reconnect, p.restart) == (["zones"], [], []) and p.changes[0]["key"] == "zones.lawn"
    secret = load_config(None, env={}, site={"mqtt": {"password": "x"}})
    p = plan(base, secret)
    assert p.reconnect == ["mqtt"] and p.changes == [{"key": "mqtt.password", "from": None, "to": "**********"}]
    p = plan(base, load_config(None, env={}, site={"tracker": {"type": "sort"}}))
    assert p.restart == ["tracker"] and [c["key"] for c in p.changes] == ["tracker"]  # one change, not 13


# ---- the routes on a running pipeline ---------------------------------------------------------------

def start(tmp_path, broker_port: int, **extra):
    """A looping pipeline with the API and MQTT, a state file (so a site file) in tmp_path; (run, client, prefix)."""
    port = free_port()
    device = f"site{port}"
    cfg = load_config(None, {**FAST, "source.loop": True, "device_id": device, "state.file": str(tmp_path / "state.json"),
                             "api": {"enabled": True, "port": port},
                             "mqtt": {"enabled": True, "port": broker_port, "home_assistant": {"discovery": True}},
                             **extra}, env={})
    run = BackgroundRun(cfg, settings=Settings(cfg))
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)

    def ready():
        if run.errors:
            raise run.errors[0]
        try:
            return client.get("/api/stats").json()["frames"]["processed"] >= 5
        except (httpx.TransportError, KeyError, ValueError):
            return False

    wait_until(ready, 60, 0.05, "the pipeline to run")
    return run, client, f"vigil/{device}"


def test_a_zone_and_a_line_put_on_site_count_at_once_without_a_new_track_or_a_lost_count(tmp_path, mosquitto):
    run, client, prefix = start(tmp_path, mosquitto.port)
    sub = Subscriber(mosquitto.port, f"{prefix}/#")
    ha = Subscriber(mosquitto.port, "homeassistant/+/+/+/config")
    try:
        before = {t["id"] for t in client.get("/api/tracks").json()}
        r = client.put("/api/config", json={"zones": {"lawn": LAWN}, "lines": {"gate": GATE}})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["apply"] == {"live": ["zones", "lines"], "reconnect": [], "restart": []}
        assert doc["applied_in_ms"] < 10000
        # at once: the API and the feed count the new zone; the objects tracked before keep their ids
        assert "lawn" in client.get("/api/counts").json()["zones"]
        sub.wait_for(lambda m: m.topic == f"{prefix}/zones/lawn/person", 20, "the new zone's count")
        after = {t["id"] for t in client.get("/api/tracks").json()}
        assert before & after, "no track id survived the change: the tracker was restarted"
        change = sub.wait_for(lambda m: m.topic == f"{prefix}/config", 20, "the change on the feed").json()
        assert change["by"].endswith("(no token)") and change["apply"]["live"] == ["zones", "lines"]
        wait_until(lambda: sum(client.get("/api/counts").json()["lines"]["gate"][d] for d in ("in", "out")) > 0,
                   60, 0.2, "a crossing of the new line")
        counted = client.get("/api/counts").json()["lines"]["gate"]
        # a zone moved, the line untouched: the line keeps its counts
        moved = {"polygon": [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]}
        r = client.put("/api/config", json={"zones": {"lawn": moved}, "lines": {"gate": GATE}})
        assert r.json()["lines_kept"] == ["gate"]
        now = client.get("/api/counts").json()["lines"]["gate"]
        assert now["in"] >= counted["in"] and now["out"] >= counted["out"] and now["since"] == counted["since"]
        # the line removed: its retained topic and entities are cleared from the broker
        r = client.put("/api/config", json={"zones": {"lawn": moved}})
        assert r.status_code == 200
        sub.wait_for(lambda m: m.topic == f"{prefix}/lines/gate" and m.payload == b"", 20, "the line's topic cleared")
        assert "gate" not in client.get("/api/counts").json()["lines"]
        node = f"vigil_{prefix.split('/')[1]}"
        entity = f"homeassistant/sensor/{node}/line_gate_in/config"
        assert any(m.topic == entity and m.payload for m in ha.messages), "the line had no Home Assistant entity"
        ha.wait_for(lambda m: m.topic == entity and m.payload == b"", 20, "the line's entity removed")
        assert yaml.safe_load((tmp_path / "site.yaml").read_text()) == {"zones": {"lawn": moved}}
        # the zone removed while objects that entered it are tracked: their events go on without it
        wait_until(lambda: any("lawn" in t["entered_zones"] for t in client.get("/api/tracks").json()), 60, 0.1,
                   "an object in the zone")
        assert client.put("/api/config", json={}).status_code == 200
        mark = len(sub.on("/events"))
        sub.wait_for(lambda m: m.topic.endswith("/events") and len(sub.on("/events")) > mark + 3, 60, "events")
        assert all("lawn" not in e.json()["after"]["entered_zones"] for e in sub.on("/events")[mark + 1:])
    finally:
        sub.close()
        ha.close()
        run.stop()
        client.close()
    assert not run.errors, run.errors
    seqs = [m.json()["seq"] for m in sub.on("/events")]
    assert seqs == sorted(seqs) and len(set(seqs)) == seqs[-1] - seqs[0] + 1  # seq continued through every change


def test_broker_settings_move_the_feed_to_another_broker_without_losing_a_new_or_an_end(tmp_path, broker_factory):
    a, b = broker_factory().start(), broker_factory().start()
    sub_a, sub_b = Subscriber(a.port, "vigil/+/events"), Subscriber(b.port, "vigil/+/events")
    run, client, prefix = start(tmp_path, a.port)
    try:
        sub_a.wait_for(lambda m: m.json()["type"] == "new", 30, "events on the first broker")
        r = client.put("/api/config", json={"mqtt": {"port": b.port}})
        assert r.status_code == 200 and r.json()["apply"]["reconnect"] == ["mqtt"], r.text
        sub_b.wait_for(lambda m: m.json()["type"] in ("new", "update", "end"), 30, "events on the second broker")
        assert client.get("/api/stats").json()["mqtt"]["broker"] == f"127.0.0.1:{b.port}"
    finally:
        run.stop()
        client.close()
    assert not run.errors, run.errors
    events = [m.json() for m in sub_a.messages + sub_b.messages]
    sub_a.close()
    sub_b.close()
    seqs = sorted({e["seq"] for e in events})
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "an event went to neither broker"
    news = {e["after"]["id"] for e in events if e["type"] == "new"}
    ends = {e["after"]["id"] for e in events if e["type"] == "end"}
    assert news and news <= ends, f"new without end: {sorted(news - ends)}"


def test_test_connection_shows_the_brokers_answer_and_a_refused_save_changes_nothing(tmp_path, mosquitto,
                                                                                       broker_factory):
    locked = broker_factory(users={"vigil": "right"}).start()
    run, client, _ = start(tmp_path, mosquitto.port)
    try:
        ask = lambda **mqtt: client.post("/api/config/test-mqtt", json={"host": "127.0.0.1", **mqtt}).json()  # noqa: E731
        assert ask(port=locked.port, username="vigil", password="right")["result"] == "ok"
        wrong = ask(port=locked.port, username="vigil", password="wrong")
        assert wrong["result"] in ("bad credentials", "not authorised") and not wrong["ok"]
        assert "refused" in wrong["detail"]
        assert ask(port=free_port())["result"] == "unreachable"
        tls = ask(port=mosquitto.port, tls={"enabled": True})
        assert tls["result"] in ("tls error", "timeout") and not tls["ok"]
        site = client.get("/api/config/site").json()
        bad = client.put("/api/config", json={"zones": {"lawn": {"polygon": [[0, 0], [2, 0], [1, 1]]}},
                                               "mqtt": {"port": 70000}})
        assert bad.status_code == 422
        locs = {d["loc"] for d in bad.json()["detail"]}
        assert {"zones.lawn.polygon", "mqtt.port"} <= locs
        assert client.get("/api/config/site").json() == site and not (tmp_path / "site.yaml").exists()
        assert client.put("/api/config", content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
    finally:
        run.stop()
        client.close()


def test_export_leaves_secrets_out_and_an_import_keeps_the_stored_ones(tmp_path, mosquitto):
    run, client, _ = start(tmp_path, mosquitto.port)
    try:
        r = client.put("/api/config", json={"lines": {"gate": GATE}, "mqtt": {"username": "cam", "password": "pw-123456"}})
        assert r.json()["apply"] == {"live": ["lines"], "reconnect": ["mqtt"], "restart": []}, r.text
        exported = client.get("/api/config/export")
        assert exported.headers["content-type"].startswith("application/yaml")
        assert "pw-123456" not in exported.text
        assert yaml.safe_load(exported.text) == {"lines": {"gate": GATE}, "mqtt": {"username": "cam"}}
        assert client.get("/api/config/site").json()["secrets_set"] == ["mqtt.password"]
        assert "pw-123456" not in client.get("/api/config/site").text + client.get("/api/config").text
        r = client.post("/api/config/import", content=exported.content, headers={"Content-Type": "application/yaml"})
        assert r.status_code == 200 and r.json()["changes"] == []  # the stored password was kept
        assert yaml.safe_load((tmp_path / "site.yaml").read_text())["mqtt"]["password"] == "pw-123456"
        r = client.post("/api/config/import", content=b"zones: [", headers={"Content-Type": "application/yaml"})
        assert r.status_code == 400 and "YAML" in r.json()["detail"]
    finally:
        run.stop()
        client.close()


def test_a_change_waiting_for_a_start_does_not_hold_back_later_live_changes(tmp_path, mosquitto):
    run, client, _ = start(tmp_path, mosquitto.port)  # pipeline.run without the vigil command: no restart
    try:
        r = client.put("/api/config", json={"api": {"token": "tok-123456"}}).json()
        assert r["apply"]["restart"] == ["api"] and r["note"] == "saved; applied at the next start"
        auth = {"Authorization": "Bearer tok-123456"}  # not needed yet: the token applies at the next start
        r = client.put("/api/config", json={"api": {"token": "tok-123456"}, "stationary": {"seconds": 12}}).json()
        assert r["apply"]["live"] == ["stationary"] and r["apply"]["restart"] == ["api"]
        assert client.get("/api/config", headers=auth).json()["stationary"]["seconds"] == 12
        assert client.get("/api/config").json()["api"]["token"] is None  # still the running one
    finally:
        run.stop()
        client.close()


# ---- the vigil command: restart, identity of the saved settings, a damaged file at start -------------

def vigil(tmp_path, port: int):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "vigil.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "app", "run", "--loop", "--fps", "5", "--no-progress",
                             "--api", str(port), "--set", f"state.file={tmp_path / 'state.json'}"],
                            cwd=ROOT, env=env, stdout=log, stderr=log)


def test_a_change_that_needs_a_restart_comes_back_in_the_same_process_and_after_a_new_start(tmp_path):
    port = free_port()
    proc = vigil(tmp_path, port)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)
    try:
        wait_until(lambda: _get(client, "/api/health") is not None, 60, 0.1, "vigil to serve")
        r = client.put("/api/config", json={"tracker": {"type": "sort"}, "zones": {"lawn": LAWN}})
        assert r.status_code == 200 and r.json()["apply"]["restart"] == ["tracker"], r.text
        wait_until(lambda: (_get(client, "/api/config") or {}).get("tracker", {}).get("type") == "sort", 60, 0.1,
                   "the restarted pipeline")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        proc = vigil(tmp_path, port)
        wait_until(lambda: "lawn" in ((_get(client, "/api/counts") or {}).get("zones") or {}), 60, 0.1,
                   "the saved zone after a new start")
        assert _get(client, "/api/config")["tracker"]["type"] == "sort"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        client.close()
    text = (tmp_path / "vigil.log").read_text()
    assert "starting again to apply them" in text and "Traceback" not in text


def test_a_damaged_site_file_at_start_is_said_in_the_log_and_health_and_vigil_runs(tmp_path):
    (tmp_path / "site.yaml").write_text("zones: {lawn: {polygon: [[0, 0], [1, 1]]}}\n")  # too few corners
    port = free_port()
    proc = vigil(tmp_path, port)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)
    try:
        wait_until(lambda: "config" in ((_get(client, "/api/health") or {}).get("components") or {}), 60, 0.1,
                   "health to name the site file")
        comp = client.get("/api/health").json()["components"]["config"]
        assert comp["status"] == "degraded" and "site.yaml" in comp["detail"]
        assert client.put("/api/config", json={"zones": {"lawn": LAWN}}).status_code == 200
        assert "config" not in client.get("/api/health").json()["components"]  # saved again: all is well
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        client.close()
    assert "site file not used" in (tmp_path / "vigil.log").read_text()


def _get(client: httpx.Client, path: str):
    try:
        r = client.get(path)
        return r.json() if r.status_code in (200, 503) else None
    except (httpx.TransportError, json.JSONDecodeError):
        return None


def test_the_same_flow_in_camera_mode_against_the_acap_runtime_emulator(tmp_path, mosquitto):
    """Camera mode (model and video over ACAP Runtime, camera parameters on): zones and lines saved on site
    count at once on the API and the feed, and a restart-kind change comes back with them."""
    import shutil
    import tempfile

    from app.acap.emulator import Emulator, EmulatorConfig
    from tests.conftest import SAMPLE_CLIP

    sock = Path(tempfile.mkdtemp(prefix="vg", dir="/tmp"))  # Unix socket paths are short
    emu = Emulator(EmulatorConfig(address=f"unix://{sock}/rt.sock", video=str(SAMPLE_CLIP), loop=True,
                                  params={"root.Vigil.ScoreThresholdPercent": "35"})).start()
    port = free_port()
    log = open(tmp_path / "vigil.log", "ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VIGIL_MQTT__ENABLED": "true", "VIGIL_MQTT__PORT": str(mosquitto.port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "run", "--backend", "acap-runtime", "--source", "acap-runtime", "--no-progress",
         "--set", f"acap_runtime.address={emu.config.address}", "--set", "acap_runtime.parameters=true",
         "--set", "source.stream.width=384", "--set", "source.stream.height=288", "--set", "device_id=camsite",
         "--api", str(port), "--set", f"state.file={tmp_path / 'state.json'}"],
        cwd=ROOT, env=env, stdout=log, stderr=log)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)
    sub = Subscriber(mosquitto.port, "vigil/camsite/#")
    try:
        wait_until(lambda: ((_get(client, "/api/stats") or {}).get("frames") or {}).get("processed", 0) > 3, 90, 0.1,
                   "camera mode to run")
        r = client.put("/api/config", json={"zones": {"lawn": LAWN}, "lines": {"gate": GATE}})
        assert r.status_code == 200 and r.json()["apply"]["live"] == ["zones", "lines"], r.text
        assert "lawn" in client.get("/api/counts").json()["zones"]
        sub.wait_for(lambda m: m.topic == "vigil/camsite/zones/lawn/all", 30, "the zone on the feed")
        sub.wait_for(lambda m: m.topic == "vigil/camsite/lines/gate", 30, "the line on the feed")
        r = client.put("/api/config", json={"zones": {"lawn": LAWN}, "lines": {"gate": GATE},
                                            "preprocess": {"planner": {"type": "regions"}}})
        assert r.json()["apply"]["restart"] == ["preprocess"], r.text
        wait_until(lambda: ((_get(client, "/api/config") or {}).get("preprocess") or {}).get("planner", {})
                   .get("type") == "regions", 90, 0.1, "the restart in camera mode")
        wait_until(lambda: "gate" in ((_get(client, "/api/counts") or {}).get("lines") or {}), 60, 0.1,
                   "the saved line after the restart")
        assert proc.poll() is None
    finally:
        sub.close()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        client.close()
        emu.stop()
        shutil.rmtree(sock, ignore_errors=True)
    text = (tmp_path / "vigil.log").read_text()
    assert code == 0 and "Traceback" not in text, text[-3000:]
