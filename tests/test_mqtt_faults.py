"""The feed when the network does not work: broker restart, crash (SIGKILL), broker absent at start,
wrong credentials. Real mosquitto, real pipeline on the sample clip."""
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

import httpx
import pytest

from app import pipeline
from app.config import load_config
from tests.conftest import ROOT
from tests.mqtt_util import Gate, Subscriber, free_port, retained_state, validate, wait_until
from tests.test_mqtt import FAST, SCENE
from app.health import mqtt_component
from tests.consumers import OnFrame
from tests.event_util import event


def looping_config(mqtt: dict, device: str, **extra):
    return load_config(None, {
        **FAST, **SCENE, "source.loop": True, "device_id": device,
        "mqtt": {"enabled": True, "reconnect_min_delay": 1, "reconnect_max_delay": 1, **mqtt}, **extra,
    }, env={})


class Background:
    """pipeline.run in a thread until stop(); counts processed frames."""

    def __init__(self, cfg):
        self.frames = 0
        self.error = None
        self.summary = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(cfg,), daemon=True)
        self._thread.start()

    def _run(self, cfg):
        def count(frame, tracked):
            self.frames += 1
        try:
            self.summary = pipeline.run(cfg, stop=self._stop, consumers=[OnFrame(count)])
        except BaseException as e:
            self.error = e

    def wait_frames(self, n: int, timeout: float = 60) -> None:
        def check():
            if self.error:
                raise self.error
            return self.frames >= n
        wait_until(check, timeout, what=f"{n} processed frames")

    def stop(self):
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "pipeline did not stop"
        if self.error:
            raise self.error
        return self.summary


def lifecycles(messages, prefix):
    """id -> list of distinct event payloads in arrival order (QoS 1 may deliver a message twice)."""
    per = defaultdict(list)
    for m in messages:
        if m.topic == f"{prefix}/events":
            e = m.json()
            if e not in per[e["after"]["id"]]:
                per[e["after"]["id"]].append(e)
    return per


def test_broker_restart_loses_no_new_or_end_and_state_is_republished(broker_factory):
    prefix = "vigil/restart"
    broker = broker_factory().start()
    gate = Gate(broker.port)
    gate.open()
    old = Subscriber(broker.port, f"{prefix}/#")
    run = Background(looping_config({"port": gate.port, "client_id": "vigil-restart-test"}, "restart"))
    try:
        old.wait_for(lambda m: m.topic == f"{prefix}/available" and m.payload == b"online", what="online")
        wait_until(lambda: sum(1 for m in old.on("/events") if m.json()["type"] == "new") >= 3, 60,
                   what="three tracks")
        # the broker goes away: first the app's connection, then the broker itself (no persistence)
        gate.close()
        # the last will reaches subscribers once the broker has processed all the app had sent
        old.wait_for(lambda m: m.topic == f"{prefix}/available" and m.payload == b"offline", what="last will")
        old.close()
        broker.stop()
        n0 = run.frames
        run.wait_frames(n0 + 40)  # the pipeline keeps processing while the broker is away
        broker.start()
        new = Subscriber(broker.port, f"{prefix}/#")  # subscribed before the app may reconnect
        gate.open()
        expect = {f"{prefix}/{t}" for t in ("available", "counts/all", "counts/person", "zones/walkway/all",
                                             "zones/west/person", "lines/crossing")}
        new.wait_for(lambda m: m.topic == f"{prefix}/available" and m.payload == b"online", what="online again")
        got = {m.topic for m in new.messages}
        assert expect <= got, expect - got  # the whole state was published again, before 'online'
        # a subscriber arriving now gets that state from the restarted broker at once
        state = retained_state(broker.port, prefix, expect)
        assert state[f"{prefix}/available"].payload == b"online"
        wait_until(lambda: any(m.json()["type"] == "end" for m in new.on("/events")), 60, what="an end event")
    finally:
        summary = run.stop()
        gate.close()
    new.wait_for(lambda m: m.topic == f"{prefix}/available" and m.payload == b"offline", what="offline at stop")
    new.close()
    assert summary.feed["mqtt"]["reconnects"] >= 1
    assert summary.feed["mqtt"]["dropped"]["critical"] == 0 and summary.feed["mqtt"]["dropped"]["update"] == 0
    per = lifecycles(old.messages + new.messages, prefix)
    assert len(per) == summary.feed["events"]["new"]
    for oid, evs in per.items():
        types = [e["type"] for e in evs]
        assert types.count("new") == 1 and types.count("end") == 1, (oid, types)
        assert types[0] == "new" and types[-1] == "end", (oid, types)
    # some tracks started before the outage and ended after it: their end was queued or sent later
    before = {e["after"]["id"] for m in old.on("/events") for e in [m.json()] if e["type"] == "new"}
    after = {e["after"]["id"] for m in new.on("/events") for e in [m.json()] if e["type"] == "end"}
    assert before & after


def test_sigkill_publishes_offline_from_the_last_will_and_restart_goes_online(mosquitto):
    prefix = "vigil/killed"
    sub = Subscriber(mosquitto.port, f"{prefix}/available")
    cmd = [sys.executable, "-m", "app", "run", "--loop", "--fps", "5", "--no-progress",
           "--mqtt", f"127.0.0.1:{mosquitto.port}", "--set", "device_id=killed",
           "--set", "preprocess.tiling.tile_size=256", "--set", "preprocess.tiling.full_frame=false"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}

    def start():
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def payloads():
        return [m.payload for m in sub.messages]

    proc = start()
    try:
        sub.wait_for(lambda m: m.payload == b"online", 60, "online")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        n = len(sub.messages)
        sub.wait_for(lambda m: m.payload == b"offline" and sub.messages.index(m) >= n - 1, 30, "offline (will)")
        state = retained_state(mosquitto.port, prefix, {f"{prefix}/available"})
        assert state[f"{prefix}/available"].payload == b"offline"  # retained: late subscribers know too
        n = len(sub.messages)
        proc = start()
        wait_until(lambda: b"online" in payloads()[n:], 60, what="online after restart")
        # a clean stop (docker stop: SIGTERM) ends the run and says offline itself
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        assert payloads()[-1] == b"offline" and "Traceback" not in err
        assert "vigil: events:" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        sub.close()


def test_broker_unreachable_at_start_the_app_runs_and_connects_when_it_appears(broker_factory, caplog):
    caplog.set_level(logging.INFO, logger="app.publish.mqtt")
    port = free_port()
    api_port = free_port()
    prefix = "vigil/late"
    run = Background(looping_config({"port": port}, "late", api={"enabled": True, "port": api_port}))
    try:
        run.wait_frames(20)
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10)
        wait_until(lambda: api.get("/api/health").json()["components"]["mqtt"]["status"] == "degraded", 30,
                   what="mqtt degraded")
        h = api.get("/api/health").json()
        assert h["status"] == "degraded" and h["components"]["source"]["status"] == "ok"
        assert api.get("/api/stats").json()["mqtt"]["state"] == "unreachable"
        broker = broker_factory(port=port).start()
        sub = Subscriber(broker.port, f"{prefix}/#")
        sub.wait_for(lambda m: m.topic == f"{prefix}/available" and m.payload == b"online", 30, "online")
        wait_until(lambda: api.get("/api/health").json()["status"] == "ok", 30, what="health ok once connected")
        api.close()
    finally:
        run.stop()
    sub.close()
    warnings = [r for r in caplog.records if "cannot reach broker" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # one line, not one per retry


def test_wrong_credentials_one_clear_line_health_degraded_and_no_crash(broker_factory, caplog):
    caplog.set_level(logging.INFO)
    broker = broker_factory(users={"vigil": "right-password"}).start()
    api_port = free_port()
    run = Background(looping_config({"port": broker.port, "username": "vigil", "password": "wrong-password"},
                                    "creds", api={"enabled": True, "port": api_port}))
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10)
        run.wait_frames(5)
        wait_until(lambda: api.get("/api/stats").json()["mqtt"]["state"] == "auth_failed", 30, what="auth failure")
        n = run.frames
        # keeps retrying (capped back-off) without stopping the pipeline
        wait_until(lambda: broker.log_text().count("not authorised") >= 2, 30, what="a second attempt")
        run.wait_frames(n + 20)
        h = api.get("/api/health").json()
        assert h["status"] == "degraded"
        assert h["components"]["mqtt"] == {"status": "degraded",
                                           "detail": f"broker 127.0.0.1:{broker.port} refused the credentials; retrying"}
        api.close()
    finally:
        run.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    msg = errors[0].getMessage()
    assert "refused the credentials of user 'vigil'" in msg and "mqtt.password" in msg
    assert all("wrong-password" not in r.getMessage() for r in caplog.records)


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA (openssl CLI)."""
    import shutil

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make test certificates: sudo apt-get install openssl", pytrace=False)

    def run(*args):
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    for ca in ("ca", "other"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=vigil-test-{ca}",
            "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, ext in (("server", ["-extfile", "san.ext"]), ("client", [])):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", f"{name}.pem", *ext)
    return d


def test_tls_with_a_client_certificate_connects_and_an_unknown_ca_is_refused(broker_factory, tmp_path):
    from app.publish.config import MqttConfig
    from app.publish.mqtt import MqttPublisher

    certs = make_certs(tmp_path)
    broker = broker_factory(extra=[f"cafile {certs / 'ca.pem'}", f"certfile {certs / 'server.pem'}",
                                   f"keyfile {certs / 'server.key'}", "require_certificate true"]).start()
    sub_ok = MqttPublisher(MqttConfig(enabled=True, port=broker.port, tls={
        "enabled": True, "ca_file": str(certs / "ca.pem"), "cert_file": str(certs / "client.pem"),
        "key_file": str(certs / "client.key")}), "tls", ["person"])
    wrong = MqttPublisher(MqttConfig(enabled=True, port=broker.port, tls={
        "enabled": True, "ca_file": str(certs / "other.pem")}), "tls2", ["person"])
    try:
        sub_ok.start()
        wrong.start()
        wait_until(lambda: sub_ok.connected, 20, what="a TLS connection with the client certificate")
        assert sub_ok.flush(10)  # 'online' and the state went out over TLS and were acknowledged
        wait_until(lambda: wrong.link().state == "tls_failed", 20, what="the untrusted broker to be refused")
        assert "certificate was refused" in wrong.link().last_error
        assert not wrong.connected and mqtt_component(wrong.link()).status == "degraded"
    finally:
        sub_ok.close()
        wrong.close()


def test_missing_tls_files_are_a_config_error_naming_the_key(tmp_path):
    from app.errors import ConfigError
    from app.publish.config import MqttConfig
    from app.publish.mqtt import MqttPublisher

    with pytest.raises(ConfigError, match="mqtt.tls: cannot load certificates"):
        MqttPublisher(MqttConfig(enabled=True, tls={"enabled": True, "ca_file": str(tmp_path / "nope.pem")}),
                      "x", [])


def test_tls_against_a_plain_broker_is_named_a_tls_handshake_failure_not_unreachable(mosquitto, caplog):
    from app.publish.config import MqttConfig
    from app.publish.mqtt import MqttPublisher

    caplog.set_level(logging.INFO, logger="app.publish.mqtt")
    pub = MqttPublisher(MqttConfig(enabled=True, port=mosquitto.port, tls={"enabled": True}, reconnect_min_delay=1,
                                   reconnect_max_delay=1), "tlsplain", ["person"])
    try:
        pub.start()
        wait_until(lambda: pub.link().last_error is not None, 20, what="the failed handshake")
        link = pub.link()
        assert link.state == "tls_failed" and "TLS handshake" in link.last_error, link
        assert "plain (non-TLS) MQTT listener" in mqtt_component(link).detail
    finally:
        pub.close()
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "not delivered" not in r.getMessage()]
    assert len(said) == 1 and "TLS handshake with" in said[0] and "cannot reach" not in said[0], said


def test_a_tls_key_without_its_certificate_is_a_config_error():
    from app.errors import ConfigError

    with pytest.raises(ConfigError, match="mqtt.tls: key_file is set without cert_file"):
        load_config(None, {"mqtt.tls.enabled": True, "mqtt.tls.key_file": "client.key"}, env={})


class FakePeer:
    """A TCP server on a free port that is not an MQTT broker: silent, HTTP, or closing at once."""

    def __init__(self, kind: str) -> None:
        import socket

        self.kind = kind
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._held = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.kind == "silent":
                self._held.append(conn)  # reads nothing, answers nothing, keeps it open
            elif self.kind == "http":
                try:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass
                conn.close()
            else:
                conn.close()

    def close(self):
        self.sock.close()
        for c in self._held:
            c.close()


@pytest.mark.parametrize("kind", ["silent", "http", "closes"])
def test_a_peer_that_never_answers_connect_gives_a_logged_reason_within_the_connect_timeout(kind, caplog):
    from app.publish.config import MqttConfig
    from app.publish.mqtt import MqttPublisher

    caplog.set_level(logging.INFO, logger="app.publish.mqtt")
    peer = FakePeer(kind)
    pub = MqttPublisher(MqttConfig(enabled=True, port=peer.port, connect_timeout=1, reconnect_min_delay=1,
                                   reconnect_max_delay=1), "fake", ["person"])
    h = mqtt_component(pub.link())
    assert h.status == "degraded" and "not connected yet" in h.detail
    try:
        pub.start()
        # the connect timeout is 1 s; allow generous slack for a loaded machine
        wait_until(lambda: pub.link().last_error is not None, 15, what="a reason for the failed handshake")
        link = pub.link()
        assert link.state == "no_handshake" and not pub.connected
        assert "CONNACK" in link.last_error or "before answering the MQTT handshake" in link.last_error
        assert link.last_error in mqtt_component(pub.link()).detail
        wait_until(lambda: peer.accepted >= 2, 15, what="a retry")  # keeps trying with its back-off
    finally:
        pub.close()
        peer.close()
    warned = [r.getMessage() for r in caplog.records if "is it an MQTT broker" in r.getMessage()]
    assert len(warned) == 1, warned  # one line per outage, not one per attempt


def test_while_starting_up_health_says_mqtt_is_not_connected_yet_not_disabled():
    from app.pipeline import Run

    cfg = load_config(None, {"device_id": "early", "mqtt": {"enabled": True, "port": free_port()}}, env={})
    run = Run(cfg, None, [])
    run.serve()  # what the pipeline does before the model loads
    try:
        h = run.status.health().components["mqtt"]
        assert h.status == "degraded" and h.detail.startswith("not connected yet"), h
        m = run.status.stats().mqtt
        assert m.enabled is True and m.state == "starting"
    finally:
        run.close(owns_detector=True)


def test_messages_still_queued_at_exit_are_counted_undelivered_never_sent(broker_factory, capsys):
    from app.cli import print_summary

    prefix = "vigil/exit"
    broker = broker_factory().start()
    gate = Gate(broker.port)
    gate.open()
    sub = Subscriber(broker.port, f"{prefix}/#")
    run = Background(looping_config({"port": gate.port}, "exit"))
    try:
        wait_until(lambda: any(m.json()["type"] == "new" for m in sub.on("/events")), 60, what="a first event")
        gate.close()  # the broker stays up for the subscriber; Vigil cannot reach it any more
        n = run.frames
        run.wait_frames(n + 30)
    finally:
        summary = run.stop()  # the end events of the stop are queued, and the broker is out of reach
    sub.close()
    m = summary.feed["mqtt"]
    got = {e["seq"] for msg in sub.on("/events") for e in [msg.json()] if e["type"] != "update"}
    made = summary.feed["events"]["new"] + summary.feed["events"]["end"]
    assert m["undelivered"]["critical"] >= 1
    # every new/end the subscriber lacks is counted; so may be the few the broker got but never acknowledged
    assert made - len(got) <= m["undelivered"]["critical"] <= made
    assert m["queued"] + m["inflight"] == sum(m["undelivered"].values())
    print_summary(summary)
    err = capsys.readouterr().err
    left = sum(m["undelivered"].values())
    assert f"{left} undelivered at exit ({m['undelivered']['critical']} new/end)" in err


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent-broker", "volatile-broker"])
def test_ten_broker_restarts_lose_nothing_for_a_persistent_session_and_every_gap_shows_and_backfills(
        persistent, broker_factory):
    prefix = f"vigil/restarts{int(persistent)}"
    broker = broker_factory(persistent=persistent).start()
    api_port = free_port()
    # resume_delay 0: the persistent case relies on the broker's session alone, and the volatile
    # case loses what it can, to show that every loss is visible and recoverable
    cfg = looping_config({"port": broker.port, "resume_delay": 0}, f"restarts{int(persistent)}",
                         api={"enabled": True, "port": api_port}, events={"history": 100000, "update_interval": 0.5,
                                                                          "heartbeat": 5.0})
    if persistent:  # what docs/mqtt.md recommends: fixed client id, persistent session, QoS 1
        sub = Subscriber(broker.port, f"{prefix}/#", client_id="restarts-persistent", clean_session=False)
    else:  # paho as it ships: clean session, its default reconnect back-off, resubscribes in on_connect
        sub = Subscriber(broker.port, f"{prefix}/#")
    api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10)
    run = Background(cfg)

    def mqtt_stats():
        try:
            return api.get("/api/stats").json()["mqtt"]
        except httpx.TransportError:
            return {}

    try:
        for _ in range(10):
            wait_until(lambda: mqtt_stats().get("connected") and not mqtt_stats()["queued"], 60,
                       what="Vigil connected with nothing queued")
            run.wait_frames(run.frames + 10)
            sub.subscribed.clear()
            broker.stop()
            wait_until(lambda: mqtt_stats().get("connected") is False, 30, what="Vigil to see the broker gone")
            run.wait_frames(run.frames + 10)  # events queue up meanwhile
            broker.start()
            assert sub.subscribed.wait(30), "the subscriber did not resubscribe"
        wait_until(lambda: mqtt_stats().get("connected") and not mqtt_stats()["queued"], 60, what="queue sent")
        assert mqtt_stats()["reconnects"] == 10
        held = api.get("/api/events", params={"after": 0, "limit": 100000}).json()
    finally:
        summary = run.stop()
    # 'offline' comes after everything the stop sent
    sub.wait_for(lambda m: m.topic == f"{prefix}/available" and m.payload == b"offline", 30, what="offline")
    sub.close()
    api.close()
    got = {}
    for m in sub.on("/events"):
        e = m.json()
        assert got.setdefault(e["seq"], e) == e  # a duplicate (QoS 1) is identical
    total = sum(summary.feed["events"].values())
    assert summary.feed["mqtt"]["dropped"] == {"frame": 0, "update": 0, "stats": 0, "critical": 0}
    if persistent:
        assert set(got) == set(range(1, total + 1))  # nothing lost: not one new or end, not even an update
        return
    # every gap is visible: seq counts every event of the run, so what is missing is known exactly
    lost = set(range(1, total + 1)) - set(got)
    # and recoverable: the ring buffer held all of it while Vigil ran (the stop's own events came after)
    by_seq = {e["seq"]: e for e in held}
    assert lost <= set(by_seq), sorted(lost - set(by_seq))[:10]
    assert all(by_seq[s] == got[s] for s in set(got) & set(by_seq))  # the same events, not look-alikes
    assert all(by_seq[s]["run_id"] == got[min(got)]["run_id"] for s in lost)
    crit = sum(1 for q in lost if by_seq[q]["type"] != "update")
    print(f"volatile broker, default paho subscriber, resume_delay 0: {len(lost)} of {total} events lost "
          f"({crit} new/end), all recovered from /api/events")


def test_after_sigkill_the_next_start_ends_the_tracks_that_were_open(mosquitto, tmp_path):
    prefix = "vigil/crashed"
    state = tmp_path / "state.json"
    journal = tmp_path / "state.tracks.json"
    sub = Subscriber(mosquitto.port, f"{prefix}/#")
    cmd = [sys.executable, "-m", "app", "run", "--loop", "--fps", "5", "--no-progress",
           "--mqtt", f"127.0.0.1:{mosquitto.port}", "--set", "device_id=crashed", "--set", f"state.file={state}",
           "--set", "preprocess.tiling.tile_size=256", "--set", "preprocess.tiling.full_frame=false"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}

    def start():
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def events():
        return [m.json() for m in sub.on("/events")]

    def still_open(evs):
        opened = [e["after"]["id"] for e in evs if e["type"] == "new"]
        ended = {e["after"]["id"] for e in evs if e["type"] == "end"}
        return [i for i in opened if i not in ended]

    proc = start()
    try:
        wait_until(lambda: len(still_open(events())) >= 2, 90, what="two open tracks")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        n = len(sub.messages)
        sub.wait_for(lambda m: m.payload == b"offline" and sub.messages.index(m) >= n - 1, 30, "offline (will)")
        first = events()
        left_open = set(still_open(first))
        assert left_open and journal.exists()
        kept = {o["id"] for o in json.loads(journal.read_text())["open"]}
        assert left_open <= kept  # every track a subscriber saw start and not end is on disk
        old_run = first[0]["run_id"]
        proc = start()
        wait_until(lambda: left_open <= {e["after"]["id"] for e in events()[len(first):]
                                         if e["type"] == "end"}, 90, what="the end of every track left open")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        sub.close()
    second = events()[len(first):]
    restart = [e for e in second if e.get("reason") == "restart"]
    assert {e["after"]["id"] for e in restart} <= kept and left_open <= {e["after"]["id"] for e in restart}
    # they come first in the new run, numbered by it, with the object as it was last published
    assert [e["seq"] for e in second[:len(restart)]] == list(range(1, len(restart) + 1))
    assert all(e["run_id"] != old_run and e["after"]["id"].startswith(old_run + "-") for e in restart)
    last_seen = {e["after"]["id"]: e["after"] for e in first}
    for e in restart:
        validate("event", e)
        assert e["before"] == last_seen.get(e["after"]["id"], e["before"])
        assert e["after"]["end_time"] == e["after"]["frame_time"]
    assert not journal.exists()  # the clean stop ended everything, and the broker acknowledged it


def test_after_a_reconnect_queued_events_wait_for_subscribers_that_come_back_after_vigil(broker_factory):
    from app.types import FrameResult
    from app.publish.config import MqttConfig
    from app.publish.mqtt import MqttPublisher
    from app.types import Detections

    broker = broker_factory().start()
    gate = Gate(broker.port)
    gate.open()
    pub = MqttPublisher(MqttConfig(enabled=True, port=gate.port, topic_prefix="vigil/hold", resume_delay=3,
                                   reconnect_min_delay=1, reconnect_max_delay=1), "hold", ["person"])
    sub = None
    try:
        pub.start()
        wait_until(lambda: pub.connected, 30, what="connected")
        gate.close()
        wait_until(lambda: not pub.connected, 30, what="the connection cut")
        events = tuple(event(t, "r-1", i + 1, changes=["heartbeat"] if t == "update" else [])
                       for i, t in enumerate(["new", "update", "end"]))
        pub.on_result(FrameResult(seq=0, timestamp=0.0, epoch=0.0, size=(1, 1),
                                                      objects=Detections(), events=events, counts={"all": 0}))
        gate.open()
        wait_until(lambda: pub.connected, 30, what="reconnected")
        # a subscriber of a restarted broker is back a moment after Vigil; before the fix the queue
        # had gone out at once, to nobody
        sub = Subscriber(broker.port, "vigil/hold/#")
        sub.wait_for(lambda m: len(sub.on("/events")) == 3, 30, what="the three queued events")
        assert [m.json()["seq"] for m in sub.on("/events")] == [1, 2, 3]
        assert pub.flush(10) and pub.snapshot().queued == 0
    finally:
        pub.close()
        gate.close()
        if sub is not None:
            sub.close()


def test_health_goes_out_at_once_when_the_camera_goes_silent(mosquitto, tmp_path):
    """…/health is retained state for Home Assistant's Health sensor: it goes out once connected and
    again as soon as a status in it changes, not only with the stats (here: stats off), so a camera
    stream gone silent shows as degraded within seconds and its recovery too."""
    from tests.conftest import sample_clip_part, stalling_server
    from tests.consumers import BackgroundRun

    release = threading.Event()
    server = stalling_server(sample_clip_part(tmp_path / "people.avi", 20).read_bytes(), release)
    cfg = load_config(None, {
        "output.progress": False, "device_id": "quiet", "source.stall_timeout": 60,
        "source.uri": f"http://127.0.0.1:{server.server_address[1]}/people.avi",
        "mqtt": {"enabled": True, "port": mosquitto.port, "stats_interval": 0},
    }, env={})
    sub = Subscriber(mosquitto.port, "vigil/quiet/#")
    run = BackgroundRun(cfg)

    def source_states():
        return [m.json()["components"]["source"]["status"] for m in sub.on("/health")]

    try:
        wait_until(lambda: "degraded" in source_states(), 60, 0.1, "health saying the source is degraded")
        states = source_states()
        assert states[0] == "ok" and states.index("degraded") > 0  # first as it was, then the change
        assert not sub.on("/stats")
        late = retained_state(mosquitto.port, "vigil/quiet", {"vigil/quiet/health"})["vigil/quiet/health"]
        assert late.json()["components"]["source"]["status"] == "degraded"  # retained, for who comes later
        sent = len(states)
        time.sleep(3)  # looked at every second meanwhile
        assert len(source_states()) == sent  # nothing changed since: no more health messages
    finally:
        run.stop()
        release.set()
        server.shutdown()
        sub.close()
    assert not run.errors
