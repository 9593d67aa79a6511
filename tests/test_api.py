"""The HTTP status API, Prometheus metrics and the status page, served by a pipeline running the sample clip."""
import contextlib
import json
import re
import shutil
import subprocess
import time

import cv2
import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app.config import load_config
from tests.conftest import ROOT, run_vigil
from tests.mqtt_util import free_port, retained_state, validate, wait_until
from tests.test_mqtt import FAST, SCENE
from tests.consumers import BackgroundRun, OnFrame
from tests.event_util import event

TOKEN = "s3cret-token"
PASSWORD = "hunter2-mqtt"


@pytest.fixture(scope="module")
def live(mosquitto):
    """A looping pipeline with the API on a free loopback port (and MQTT to the session broker)."""
    port = free_port()
    cfg = load_config(None, {
        **FAST, **SCENE,
        "source.loop": True,
        "device_id": "apitest",
        "api": {"enabled": True, "port": port, "token": TOKEN},
        "mqtt": {"enabled": True, "port": mosquitto.port, "username": "vigil", "password": PASSWORD},
        "snapshots": {"enabled": True},  # memory only: no state.file here
    }, env={})
    frames = []
    run = BackgroundRun(cfg, [OnFrame(lambda f, d: frames.append(f.seq))])
    errors = run.errors
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base, timeout=10)

    def ready():
        if errors:
            raise errors[0]
        try:
            return len(frames) >= 20 and client.get("/api/latest.jpg").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, 60, 0.05, "the API to serve a frame")
    yield client, frames, mosquitto
    run.stop()
    client.close()
    assert not errors, errors


def test_health_reports_each_component(live):
    client, _, _ = live
    r = client.get("/api/health")
    assert r.status_code == 200
    h = r.json()
    assert set(h["components"]) == {"source", "backend", "mqtt"}
    assert h["components"]["source"]["status"] == "ok" and h["components"]["mqtt"]["status"] == "ok"
    assert h["status"] == "ok"


def test_stats_match_the_schema_and_name_both_inference_times(live):
    client, frames, _ = live
    s = client.get("/api/stats").json()
    validate("stats", s)
    assert s["process_fps"] > 0 and s["camera_fps"] >= s["process_fps"] and s["skipped_fps"] > 0  # fps cap 5 of 10
    assert s["detection_fps"] == pytest.approx(s["process_fps"] * s["model_runs_per_frame"], rel=0.5)
    assert s["model_run_ms"]["p50"] > 0 and s["frame_detect_ms"]["p95"] >= s["frame_detect_ms"]["p50"]
    assert s["tracker"]["update_ms"]["p50"] is not None
    assert s["frames"]["processed"] >= 20 and s["mqtt"]["connected"] is True
    from app.cpus import cpu_budget

    n = cpu_budget().cpus  # model.backend threads and interpreters left at their defaults: one interpreter per CPU
    assert (s["model_interpreters"], s["model_threads"]) == (min(n, 2), max(1, n // min(n, 2)))


def test_metrics_are_prometheus_text_with_the_pipeline_figures(live):
    from prometheus_client.parser import text_string_to_metric_families

    client, _, _ = live
    r = client.get("/api/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name in ("vigil_process_fps", "vigil_camera_fps", "vigil_model_run_seconds", "vigil_frames",
                 "vigil_events", "vigil_zone_objects", "vigil_line_crossings", "vigil_mqtt_connected", "vigil_health"):
        assert name in fams, name
    processed = [s.value for s in fams["vigil_frames"].samples if s.labels.get("kind") == "processed"]
    assert processed and processed[0] >= 20
    zones = {s.labels["zone"] for s in fams["vigil_zone_objects"].samples}
    assert zones == {"walkway", "west"}
    # nothing is given up on while running; the kinds match /api/stats mqtt.undelivered
    left = {s.labels["kind"]: s.value for s in fams["vigil_mqtt_undelivered"].samples}
    assert left == {"critical": 0, "update": 0, "other": 0}


def test_metrics_pass_promtool_and_latencies_are_histograms(live):
    """`promtool check metrics` (Debian's prometheus package) lints the exposition: no quantile labels on
    gauges, counters end in _total, no _count suffix on a gauge."""
    import shutil
    import subprocess

    from prometheus_client.parser import text_string_to_metric_families

    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: tools/install-test-deps.sh installs Debian's prometheus package"
    client, _, _ = live
    text = client.get("/api/metrics").text
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["vigil_model_run_seconds"].type == "histogram" and fams["vigil_stage_seconds"].type == "histogram"
    assert fams["vigil_frames"].type == "counter" and fams["vigil_source_reconnects"].type == "counter"
    buckets = [(float(x.labels["le"]), x.value) for x in fams["vigil_model_run_seconds"].samples
               if x.name.endswith("_bucket")]
    count = next(x.value for x in fams["vigil_model_run_seconds"].samples if x.name.endswith("_count"))
    assert [n for _, n in buckets] == sorted(n for _, n in buckets) and buckets[-1] == (float("inf"), count) and count > 0
    assert "process_resident_memory_bytes" in fams and fams["vigil_build_info"].samples[0].labels["backend"] == "tflite"


def test_config_is_redacted_and_valid_against_its_own_schema(live):
    import jsonschema

    client, _, _ = live
    doc = client.get("/api/config")
    assert PASSWORD not in doc.text and TOKEN not in doc.text
    cfg = doc.json()
    assert cfg["mqtt"]["password"] == "**********" and cfg["api"]["token"] == "**********"
    assert cfg["zones"]["walkway"]["polygon"][0] == [0.4, 0.4]
    schema = client.get("/api/config/schema.json").json()
    assert "zones" in schema["properties"] and "mqtt" in schema["properties"]
    jsonschema.validate(cfg, schema)


def test_tracks_and_recent_events_are_event_objects(live):
    client, frames, _ = live
    wait_until(lambda: len(client.get("/api/events?limit=100").json()) >= 5, 30, 0.1, "five events")
    events = client.get("/api/events", params={"limit": 3}).json()
    assert len(events) == 3
    for e in events:
        validate("event", e)
    wait_until(lambda: client.get("/api/tracks").json(), 30, 0.05, "a tracked object")
    for obj in client.get("/api/tracks").json():
        validate("event", {"type": "update", "seq": 1, "run_id": "x", "before": obj, "after": obj, "changes": []})


def test_events_after_a_seq_backfill_what_followed_in_order(live):
    client, _, _ = live
    wait_until(lambda: len(client.get("/api/events?limit=100").json()) >= 8, 30, 0.1, "eight events")
    r = client.get("/api/events", params={"limit": 100000})
    held = r.json()
    seqs = [e["seq"] for e in held]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one per event, no gaps
    assert {e["run_id"] for e in held} == {r.headers["X-Vigil-Run-Id"]}
    assert int(r.headers["X-Vigil-Events-First"]) == seqs[0] and int(r.headers["X-Vigil-Events-Last"]) >= seqs[-1]
    start = seqs[2]
    got = client.get("/api/events", params={"after": start, "limit": 3}).json()
    assert [e["seq"] for e in got] == [start + 1, start + 2, start + 3]
    assert got == held[3:6]
    # past the newest: nothing yet, not an error
    assert client.get("/api/events", params={"after": 10**9}).json() == []


def test_event_ring_is_bounded_and_after_a_forgotten_seq_starts_at_the_oldest_held():
    from app.types import FrameResult
    from app.health import Health
    from app.status import Parts, Status
    from app.timing import StageTimer
    from app.types import Detections

    st = Status(["person"], "dev", StageTimer(), Parts(Health(), Health()), "r", history=5)
    for seq in range(1, 13):
        ev = event("update", "r-1", seq, changes=["heartbeat"])
        st.on_result(FrameResult(seq=seq, timestamp=0.0, epoch=0.0, size=(1, 1),
                                                     objects=Detections(), events=(ev,)))
    assert st.event_window() == (8, 12)
    assert [e["seq"] for e in st.events(100, after=2)] == [8, 9, 10, 11, 12]  # 3..7 are gone: the gap shows
    assert [e["seq"] for e in st.events(2, after=9)] == [10, 11]
    assert [e["seq"] for e in st.events(3)] == [10, 11, 12]


def test_latest_jpg_is_annotated_and_sized_as_asked(live):
    client, _, _ = live
    r = client.get("/api/latest.jpg", params={"h": 240, "quality": 60})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[0] == 240 and img.shape[1] == 320  # the clip is 768x576
    plain = client.get("/api/latest.jpg", params={"h": 240, "bbox": False, "zones": False, "lines": False})
    drawn = client.get("/api/latest.jpg", params={"h": 240, "bbox": False, "zones": True, "lines": False})
    a = cv2.imdecode(np.frombuffer(plain.content, np.uint8), cv2.IMREAD_COLOR).astype(int)
    b = cv2.imdecode(np.frombuffer(drawn.content, np.uint8), cv2.IMREAD_COLOR).astype(int)
    # the walkway outline (orange or cyan) is drawn along its top edge at y = 0.4 * 240
    band = np.abs(a - b)[94:99, 140:300].sum(axis=2)
    assert (band > 100).mean() > 0.3


def test_latest_jpg_draws_the_views_the_model_ran_on_when_asked(live):
    client, _, _ = live
    plain = client.get("/api/latest.jpg", params={"bbox": False, "zones": False, "lines": False})
    drawn = client.get("/api/latest.jpg", params={"bbox": False, "zones": False, "lines": False, "regions": True,
                                                  "motion": True})
    assert drawn.status_code == 200
    a = cv2.imdecode(np.frombuffer(plain.content, np.uint8), cv2.IMREAD_COLOR).astype(int)
    b = cv2.imdecode(np.frombuffer(drawn.content, np.uint8), cv2.IMREAD_COLOR).astype(int)
    # the fixed plan's one view is the whole frame: its outline runs along the bottom row
    assert (np.abs(a - b)[-1, 100:700].sum(axis=1) > 100).mean() > 0.5


def test_latest_jpg_never_upscales_the_frame(live):
    client, _, _ = live
    r = client.get("/api/latest.jpg", params={"h": 4320})
    assert r.status_code == 200
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (576, 768)  # the clip's own size, not 5760x4320


def jpeg(r) -> np.ndarray:
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", r.text[:200]
    return cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)


def test_every_event_says_whether_it_has_a_snapshot_and_the_snapshot_is_served(live):
    client, _, _ = live
    wait_until(lambda: any(e["type"] == "end" for e in client.get("/api/events?limit=500").json()), 60, 0.2,
               "an object to end")
    events = client.get("/api/events?limit=500").json()
    assert all(e["after"]["has_snapshot"] is True for e in events)  # every label, memory only
    oid = next(e["after"]["id"] for e in events if e["type"] == "end")
    full = jpeg(client.get(f"/api/events/{oid}/snapshot.jpg"))
    assert full.shape[:2] == (576, 768)  # the whole frame, its box drawn
    crop = jpeg(client.get(f"/api/events/{oid}/snapshot.jpg", params={"crop": True}))
    assert crop.shape[0] < 576 and crop.shape[1] < 768
    small = jpeg(client.get(f"/api/events/{oid}/snapshot.jpg", params={"h": 120, "quality": 50}))
    assert small.shape[0] == 120 and small.shape[1] == 160
    big = jpeg(client.get(f"/api/events/{oid}/snapshot.jpg", params={"crop": True, "h": 4000}))
    assert big.shape == crop.shape  # never upscaled
    assert client.get(f"/api/events/{oid}-9/snapshot.jpg").status_code == 404
    assert client.get("/api/events/nobody/snapshot.jpg").status_code == 404
    tracks = client.get("/api/tracks").json()
    assert all(isinstance(t["has_snapshot"], bool) for t in tracks)


@pytest.mark.parametrize("path", [
    "/api/latest.jpg?h=abc", "/api/latest.jpg?h=5", "/api/latest.jpg?quality=500", "/api/events?limit=0", "/api/events?after=-1", "/api/events?after=x",
    "/api/events?limit=x", "/api/nope", "/api/events/x-1/snapshot.jpg?h=2", "/api/events/x-1/snapshot.jpg?quality=0",
])
def test_malformed_requests_get_4xx(live, path):
    client, _, _ = live
    assert 400 <= client.get(path).status_code < 500


def test_count_reset_needs_the_token_and_zeroes_the_line_everywhere(live):
    client, _, broker = live
    assert client.post("/api/counts/reset").status_code == 401
    assert client.post("/api/counts/reset", headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/api/counts/reset", params={"line": "nope"}, headers=auth).status_code == 404
    r = client.post("/api/counts/reset", params={"line": "crossing"}, headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert body["reset"] == ["crossing"]
    since = body["lines"]["crossing"]["since"]
    assert time.time() - since < 30
    counts = client.get("/api/counts").json()["lines"]["crossing"]
    assert counts["since"] == since and counts["in"] + counts["out"] <= 2  # only crossings after the reset
    topic = "vigil/apitest/lines/crossing"
    state = retained_state(broker.port, "vigil/apitest", {topic})
    assert json.loads(state[topic].payload)["since"] >= since


@pytest.mark.parametrize("body", [b'{"line": "nope"}', b"{bad json", b"x" * 100_000])
def test_count_reset_with_a_body_is_refused_and_resets_nothing(live, body):
    # the route takes no body: it was ignored and every line reset (a body naming one line reset them all)
    client, _, _ = live
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    before = client.get("/api/counts").json()["lines"]["crossing"]["since"]
    r = client.post("/api/counts/reset", content=body, headers=auth)
    assert r.status_code == 400 and "takes no body" in r.json()["detail"] and "?line=" in r.json()["detail"]
    assert client.get("/api/counts").json()["lines"]["crossing"]["since"] == before
    assert client.get("/api/live").status_code == 200
    assert client.post("/api/counts/reset", content=b"{}", headers=auth).status_code == 200  # an empty object is no body


def test_count_reset_with_a_broken_chunked_body_is_400_without_an_exception(live):
    import logging
    import socket

    client, _, _ = live
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    loggers = [logging.getLogger(n) for n in ("uvicorn.error", "app.api.server")]  # uvicorn's, and the guard's
    for lg in loggers:
        lg.addHandler(handler)
    try:
        # a route that takes no body, and one that reads a JSON body (app/api/bodies.py reads both)
        for head in (b"POST /api/counts/reset", b"POST /api/config/check"):
            with socket.create_connection((client.base_url.host, client.base_url.port), timeout=10) as s:
                s.sendall(head + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                          + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
                assert s.recv(100).startswith(b"HTTP/1.1 400"), head  # "zz" is not a chunk size
        assert client.get("/api/live").status_code == 200
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    assert not [r for r in seen if r.levelno >= logging.ERROR], [r.getMessage() for r in seen]


def test_status_page_uses_relative_links_only(live):
    client, _, _ = live
    html = client.get("/").text
    import re

    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(not r.startswith(("/", "http:", "https:")) for r in refs), refs
    js = client.get("/status.js").text
    assert re.findall(r'fetch\("(/|http)', js) == [] and '"api/latest.jpg' in js
    for r in refs:
        if r != "docs":
            assert client.get(f"/{r.split('?')[0]}").status_code == 200, r


@contextlib.contextmanager
def serving(api: dict):
    """A looping pipeline on the sample clip with these api.* settings, on a free port; yields an httpx client."""
    port = free_port()
    cfg = load_config(None, {**FAST, **SCENE, "source.loop": True, "api": {"enabled": True, "port": port, **api}},
                      env={})
    run = BackgroundRun(cfg)
    errors = run.errors
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def up():
        if errors:
            raise errors[0]
        try:
            return client.get("/api/live").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(up, 60, 0.05, "the API to answer")
        yield client
    finally:
        run.stop()
        client.close()
    assert not errors, errors


def exposure_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.getMessage().startswith("api: ")]


def test_network_address_without_token_refuses_changes_and_warns_at_start(caplog):
    with serving({"host": "0.0.0.0"}) as client:
        r = client.post("/api/counts/reset")
        assert r.status_code == 403 and "api.token" in r.json()["detail"]
        assert client.get("/api/counts").status_code == 200  # reading stays open
    warnings = exposure_warnings(caplog)
    assert len(warnings) == 1 and "0.0.0.0 without api.token" in warnings[0] and "refused" in warnings[0]


def test_explicit_opt_in_allows_changes_without_token_and_warns_at_start(caplog):
    with serving({"host": "0.0.0.0", "allow_unauthenticated_changes": True}) as client:
        wait_until(lambda: client.post("/api/counts/reset").status_code == 200, 30, 0.05, "counting to start")
        assert client.post("/api/counts/reset", params={"line": "crossing"}).json()["reset"] == ["crossing"]
    warnings = exposure_warnings(caplog)
    assert len(warnings) == 1 and "anyone who reaches this address can read everything and reset counts" in warnings[0]


def test_loopback_without_token_allows_changes_without_a_warning(caplog):
    with serving({"host": "127.0.0.1"}) as client:
        wait_until(lambda: client.post("/api/counts/reset").status_code == 200, 30, 0.05, "counting to start")
    assert exposure_warnings(caplog) == []


def test_liveness_needs_no_token_and_tells_nothing_when_everything_is_protected():
    with serving({"token": TOKEN, "protect": "all"}) as client:
        assert client.get("/api/health").status_code == 401
        r = client.get("/api/live")
        assert r.status_code == 200 and r.json() == {"alive": True}
        spec = client.get("/openapi.json").json()["paths"]["/api/live"]["get"]
        assert "security" not in spec and "401" not in spec["responses"]


def test_empty_token_is_a_config_error_not_authentication_off():
    p = run_vigil("run", "--max-frames", "1", "--no-progress", env={"VIGIL_API__TOKEN": "", "VIGIL_API__PROTECT": "all"})
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert [ln for ln in p.stderr.splitlines() if ln.startswith("vigil:")] == [
        "vigil: config error: api.token: must not be empty; to run without a token, leave api.token unset (null) (got '')"]


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_api_can_protect_reads_too_and_serves_under_a_root_path():
    from fastapi.testclient import TestClient

    from app.api.config import ApiConfig
    from app.api.server import create_app
    from app.health import Health
    from app.status import Parts, Status
    from app.timing import StageTimer

    status = Status(["person"], "dev", StageTimer(), Parts(Health(), Health()), "r")
    app = create_app(status, ApiConfig(token="t", protect="all", root_path="/local/vigil"))
    with TestClient(app) as c:
        assert c.get("/api/stats").status_code == 401
        assert c.get("/local/vigil/api/stats", headers={"Authorization": "Bearer t"}).status_code == 200
        assert c.get("/api/stats", headers={"Authorization": "Bearer t"}).status_code == 200
        assert c.get("/api/latest.jpg", headers={"Authorization": "Bearer t"}).status_code == 404  # no frame yet
        assert c.get("/").status_code == 200  # the page itself holds no data
        assert c.get("/openapi.json").json()["servers"] == [{"url": "/local/vigil"}]


def test_busy_api_port_is_one_clear_line(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = run_vigil("run", "--api", str(port), "--max-frames", "1", "--no-progress")
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("vigil:")]
    assert line == [f"vigil: config error: api: cannot listen on 127.0.0.1:{port}: Address already in use"]


# ---- generated requests (schemathesis) against the live server ----------------------------------

def test_no_generated_request_gets_a_server_error(live):
    """Every operation in the OpenAPI document, with generated valid and invalid parameters: never a 5xx,
    and every answer conforms to the documented status codes, content types and schemas."""
    from hypothesis import given

    client, _, _ = live
    base = str(client.base_url)
    api = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [r.ok() for r in api.get_all_operations()]
    assert len(operations) >= 9
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(base_url=base)

        check()


# ---- the status page in a real browser ----------------------------------------------------------

def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: the status page test needs it. Install it with "
                "`sudo apt-get install chromium` (or run `make test` as root)", pytrace=False)


def page_dom(app, tmp_path) -> str:
    """The status page of `app`, served on a free port, as headless Chromium renders it after 4 s."""
    from app.api.server import ApiServer

    server = ApiServer(app, "127.0.0.1", 0)
    server.start()
    try:
        dom = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                              f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=4000",
                              "--dump-dom", server.url], capture_output=True, text=True, timeout=120)
    finally:
        server.close()
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


def test_status_page_renders_the_frame_and_counts_in_chromium(live, tmp_path):
    client, _, _ = live
    browser = chromium()
    url = f"{client.base_url}/"
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=6000",
              "--window-size=1280,900"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'id="frame"' in html and 'data-loaded="1"' in html, "the annotated frame did not load"
    assert 'data-width="640"' in html  # 768x576 shown at h=480
    assert 'data-stale="0"' in re.search(r'<img id="frame"[^>]*>', html).group(0)  # live: not greyed
    assert 'data-key="walkway/person"' in html and 'data-key="crossing"' in html, "counts table is empty"
    frame_row = re.search(r'<tr data-key="frame"><td>frame</td><td>(\d+)</td><td>(.*?)</td></tr>', html)
    assert frame_row, "no row for the whole frame"
    shown = re.findall(r'<span class="count" data-key="frame/([^"]+)">[^<]* (\d+)</span>', frame_row.group(2))
    hidden = re.findall(r'<span class="count" data-key="frame/([^"]+)" hidden="">[^<]* 0</span>', frame_row.group(2))
    assert hidden and all(int(n) > 0 for _, n in shown), frame_row.group(0)  # zeros are hidden, the rest shown
    assert 'data-status="ok"' in html
    assert re.search(r'<img class="thumb"[^>]*data-loaded="1"', html), "no event thumbnail loaded"
    assert re.search(r"<time>\d", html) and "zones: " in html, "events lack their time or zones"
    shot = tmp_path / "status_page.png"
    r = subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.stat().st_size > 10_000, r.stderr[-2000:]
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    shutil.copy(shot, out / "status_page.png")  # for people to look at; out/ is git-ignored


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_events_say_has_snapshot_false_once_the_store_has_evicted_it():
    from fastapi.testclient import TestClient

    from app.api.config import ApiConfig
    from app.api.server import create_app
    from app.health import Health
    from app.snapshots.store import Snapshot, SnapshotStore
    from app.status import Parts, Status
    from app.timing import StageTimer
    from app.types import Detections, FrameResult

    status = Status(["person"], "dev", StageTimer(), Parts(Health(), Health()), "r")
    store = SnapshotStore(None, max_count=10, max_bytes=10**9, memory_count=1, memory_bytes=10**9)
    events = tuple(event("new", f"r-{i}", i + 1, has_snapshot=True, track_id=i + 1) for i in range(2))
    status.on_result(FrameResult(0, 0.0, 0.0, (640, 480), Detections(), events=events))
    for i in range(2):  # memory holds one: the first is evicted
        store.put(f"r-{i}", Snapshot(b"c", b"f", (1, 1), (1, 1)))
    with TestClient(create_app(status, ApiConfig(), snapshots=store)) as c:
        got = c.get("/api/events").json()
        assert [e["after"]["has_snapshot"] for e in got] == [False, True]
        assert c.get("/api/events/r-0/snapshot.jpg").status_code == 404
    assert events[0].doc()["after"]["has_snapshot"] is True  # the shared event is not changed by a reader


def test_status_page_shows_a_plain_tile_for_an_object_without_snapshot(tmp_path):
    import cv2
    import numpy as np

    from app.api.config import ApiConfig
    from app.api.server import create_app
    from app.health import Health
    from app.snapshots.store import Snapshot, SnapshotStore
    from app.status import Parts, Status
    from app.timing import StageTimer
    from app.types import Detections, FrameResult

    status = Status(["person"], "dev", StageTimer(), Parts(Health(), Health()), "r")
    store = SnapshotStore(None, max_count=10, max_bytes=10**9, memory_count=1, memory_bytes=10**9)
    jpg = cv2.imencode(".jpg", np.full((96, 48, 3), 120, np.uint8))[1].tobytes()
    events = tuple(event("new", f"r-{i}", i + 1, has_snapshot=True, label="person", track_id=i + 1,
                         frame_time=1.0 + i)
                   for i in range(2))
    status.on_result(FrameResult(0, 0.0, 0.0, (640, 480), Detections(), events=events))
    for i in range(2):  # memory holds one: r-0's is evicted
        store.put(f"r-{i}", Snapshot(jpg, jpg, (48, 96), (48, 96)))
    html = page_dom(create_app(status, ApiConfig(), snapshots=store), tmp_path)
    thumbs = {m.group(1): m.group(0) for m in re.finditer(r'<img class="thumb" data-id="([^"]+)"[^>]*>', html)}
    assert set(thumbs) == {"r-0", "r-1"}, html[-3000:]
    assert 'data-loaded="1"' in thumbs["r-1"] and 'alt="person"' in thumbs["r-1"]
    # no picture: the grey tile, not the browser's broken-image sign with the alt text beside it
    assert "src=" not in thumbs["r-0"] and 'alt=""' in thumbs["r-0"], thumbs["r-0"]


def test_status_page_greys_the_picture_while_the_source_is_not_ok(tmp_path):
    """A camera gone silent: the page must not pass its last frame off as live."""
    import numpy as np

    from app.api.config import ApiConfig
    from app.api.server import create_app
    from app.health import Health
    from app.status import Parts, Status
    from app.timing import StageTimer
    from app.types import Detections, Frame, FrameResult

    source = Health()
    source.set("retrying", "cannot open video source rtsp://camera/stream")
    status = Status(["person"], "dev", StageTimer(), Parts(Health(), source), "r")
    frame = Frame(np.full((120, 160, 3), 90, np.uint8), 1.0, 0)
    status.on_result(FrameResult(0, 1.0, 1.0, (160, 120), Detections(), frame=frame))
    html = page_dom(create_app(status, ApiConfig()), tmp_path)
    img = re.search(r'<img id="frame"[^>]*>', html).group(0)
    assert 'data-loaded="1"' in img and 'data-stale="1"' in img, img
    note = re.search(r'<p id="frame-stale"[^>]*>(.*?)</p>', html)
    assert note and "hidden" not in note.group(0) and "source degraded" in note.group(1), note
    assert "cannot open video source" in note.group(1)
