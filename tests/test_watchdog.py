"""A thread that dies is never silent (issue 23 §1): health turns failing at once (/api/health and
/api/live 503), and the watchdog restarts it in-process so the feed comes back by itself. Threads are
killed the hard way (an asynchronous SystemExit raised in them), with real mosquitto, real paho, real
uvicorn and the real pipeline on the sample clip."""
import ctypes
import logging
import threading
import time

import httpx
import pytest

from app import watchdog as wd
from app.config import load_config
from app.health import mqtt_component
from app.publish.config import MqttConfig
from app.publish.mqtt import MqttPublisher
from app.watchdog import Watchdog
from app.worker import Worker
from tests.consumers import BackgroundRun, OnFrame
from tests.mqtt_util import Subscriber, free_port, wait_until
from tests.test_callbacks import command
from tests.test_mqtt import FAST, SCENE

# the threads these tests kill end with the SystemExit raised in them: that is the point, not a warning
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def kill(thread: threading.Thread, timeout: float = 10) -> None:
    """End `thread` with an exception it cannot catch in time (delivered at its next Python instruction). One
    that lands inside a request handler is caught there as an error of that request (the server lives on,
    as it should): so it is sent again until the thread has ended."""
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        if not ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit)):
            break  # it ended meanwhile
        # long enough for a dying thread to finish its excepthook: a second exception sent into the
        # hook itself would break pytest's report of the first
        thread.join(2.0)
    assert not thread.is_alive(), f"{thread.name} did not die"


def paho_thread(client_id: str) -> threading.Thread:
    return next(t for t in threading.enumerate() if t.name == f"paho-mqtt-client-{client_id}" and t.is_alive())


class Collect:
    def __init__(self, block: threading.Event | None = None) -> None:
        self.items, self.block = [], block

    def on_result(self, item):
        if self.block is not None:
            self.block.wait(30)
        self.items.append(item)

    def close(self):
        pass


def test_a_killed_mqtt_network_thread_fails_health_and_the_watchdog_brings_the_feed_back(mosquitto):
    prefix = "vigil/killed"
    sub = Subscriber(mosquitto.port, f"{prefix}/#")
    pub = MqttPublisher(MqttConfig(enabled=True, port=mosquitto.port, topic_prefix=prefix, resume_delay=0,
                                   reconnect_min_delay=1, reconnect_max_delay=1), "killed", ["person"])
    dog = Watchdog(lambda: [pub])
    try:
        pub.start()
        wait_until(lambda: pub.connected and pub.flush(1), 20, what="the first connection")
        assert mqtt_component(pub.link()).status == "ok" and pub.thread_problem() is None
        kill(paho_thread(pub.client_id))
        # what the issue saw: `connected` still true, and health said ok
        link = pub.link()
        h = mqtt_component(link)
        assert h.status == "failing" and "network thread has ended" in h.detail, h
        dog.check()  # seen dead once: reported, not yet restarted (health shows it failing meanwhile)
        assert mqtt_component(pub.link()).status == "failing"
        dog.check()
        assert [r.what for r in dog.recent()] == ["the network thread"]
        wait_until(lambda: pub.connected, 20, what="the reconnection by the new network thread")
        assert mqtt_component(pub.link()).status == "ok" and pub.thread_problem() is None
        n = len(sub.messages)
        pub.retain_snapshot("person", b"\xff\xd8after")  # the feed goes on
        sub.wait_for(lambda m: m.payload == b"\xff\xd8after", 20, "a message sent after the restart")
        assert len(sub.messages) > n
    finally:
        pub.close()
        sub.close()


def test_a_killed_sender_thread_is_restarted_too(mosquitto):
    pub = MqttPublisher(MqttConfig(enabled=True, port=mosquitto.port, topic_prefix="vigil/sender"), "sender", ["p"])
    dog = Watchdog(lambda: [pub])
    try:
        pub.start()
        wait_until(lambda: pub.connected and pub.flush(1), 20, what="the first connection")
        sender = pub._sender
        with pub._cv:
            pub._cv.notify_all()  # wake it so the exception is delivered
        kill_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
        kill_async(ctypes.c_ulong(sender.ident), ctypes.py_object(SystemExit))
        with pub._cv:
            pub._cv.notify_all()
        sender.join(10)
        assert not sender.is_alive()
        assert "sender thread has ended" in mqtt_component(pub.link()).detail
        dog.check()
        dog.check()
        assert pub._sender.is_alive() and mqtt_component(pub.link()).status == "ok"
        pub.retain_snapshot("p", b"x")
        assert pub.flush(10)  # sent and acknowledged by the new sender
    finally:
        pub.close()


def test_a_dead_outputs_thread_is_restarted_on_the_same_queue_and_a_stuck_one_is_reported(monkeypatch):
    out = Collect()
    w = Worker([out], name="outputs")
    dog = Watchdog(lambda: [w])
    w.put(1, wait=5)
    kill_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    thread = w._thread
    kill_async(ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit))
    w.put(2)  # wakes it: the exception arrives, item 2 is lost with the thread
    thread.join(10)
    assert not thread.is_alive() and "outputs thread has ended" in w.thread_problem()
    dog.check()
    dog.check()
    w.put(3, wait=5)
    assert out.items[0] == 1 and out.items[-1] == 3 and w.thread_problem() is None
    w.close()
    assert w.thread_problem() is None  # closed on purpose: no problem

    monkeypatch.setattr("app.worker.STUCK_AFTER", 0.2)
    release = threading.Event()
    w = Worker([Collect(release)], name="outputs")
    w.put(1)
    wait_until(lambda: w.thread_problem() is not None, 10, what="the stuck consumer to be noticed")
    assert "has been in Collect for" in w.thread_problem() and "stuck" in w.thread_problem()
    assert w.revive() is None  # a stuck thread cannot be restarted: it stays failing
    release.set()
    wait_until(lambda: w.thread_problem() is None, 10, what="the consumer to finish")
    w.close()


def test_a_part_that_keeps_dying_is_given_up_on(caplog):
    out = Collect()
    w = Worker([out], name="outputs")
    dog = Watchdog(lambda: [w])
    caplog.set_level(logging.WARNING)
    for i in range(wd.MAX_RESTARTS + 1):
        thread = w._thread
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit))
        w.put(i)
        thread.join(10)
        dog.check()
        dog.check()
    assert not w._thread.is_alive() and dog.restarts == wd.MAX_RESTARTS
    assert any("not again: restart Vigil" in r.getMessage() for r in caplog.records)
    w.close()


def test_a_poisoned_command_and_a_killed_mqtt_thread_in_a_running_vigil(mosquitto, monkeypatch, caplog):
    """The issue's 'done when': health turns failing, /api/live 503, and the feed comes back by itself."""
    monkeypatch.setattr(wd, "INTERVAL", 1.5)
    caplog.set_level(logging.INFO)
    port = free_port()
    prefix = "vigil/watched"
    cfg = load_config(None, {
        **FAST, **SCENE, "source.loop": True, "device_id": "watched",
        "api": {"enabled": True, "port": port},
        "mqtt": {"enabled": True, "port": mosquitto.port, "topic_prefix": prefix, "resume_delay": 0,
                 "reconnect_min_delay": 1, "reconnect_max_delay": 1},
    }, env={})
    sub = Subscriber(mosquitto.port, f"{prefix}/#")
    frames = []
    run = BackgroundRun(cfg, [OnFrame(lambda f, d: frames.append(f.seq))])
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    timeline = []

    def health():
        h = api.get("/api/health")
        live = api.get("/api/live").status_code
        timeline.append((round(time.monotonic(), 2), h.status_code, live, h.json()["components"]["mqtt"]["detail"]))
        return h.status_code, live, h.json()

    try:
        wait_until(lambda: len(frames) > 10 and health()[2]["components"]["mqtt"]["status"] == "ok", 60,
                   what="a running, connected Vigil")
        # 1. a poisoned command: one warning, nothing dies, health stays ok, the feed goes on
        command(mosquitto.port, f"{prefix}/counts/reset/set", b"[" * 100_000 + b"]" * 100_000)
        wait_until(lambda: any("reset on" in r.getMessage() and "ignored" in r.getMessage()
                               for r in caplog.records), 20, what="the warning")
        assert health()[0] == 200 and health()[2]["components"]["mqtt"]["status"] == "ok"
        # 2. the network thread killed
        client_id = run_client_id(caplog)
        kill(paho_thread(client_id))
        wait_until(lambda: health()[:2] == (503, 503), 10, what="/api/health and /api/live to say failing")
        killed_at = time.monotonic()
        wait_until(lambda: health()[0] == 200 and health()[2]["components"]["mqtt"]["status"] == "ok", 30,
                   what="the watchdog to restart it and MQTT to reconnect")
        doc = health()[2]
        assert "restarted the network thread" in doc["components"]["threads"]["detail"], doc
        n = len(sub.on("/events"))
        wait_until(lambda: len(sub.on("/events")) > n, 30, what="events flowing again")
        assert time.monotonic() - killed_at < 60
        print("\n".join(str(t) for t in dedupe(timeline)))
    finally:
        api.close()
        run.stop()
        sub.close()
    assert not run.errors, run.errors
    assert any("watchdog: mqtt: restarted the network thread" in r.getMessage() for r in caplog.records)


def run_client_id(caplog) -> str:
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("mqtt: publishing to"))
    return line.rsplit(" as ", 1)[1]


def dedupe(timeline):
    out = []
    for t in timeline:
        if not out or out[-1][1:] != t[1:]:
            out.append(t)
    return out


def test_a_killed_api_server_thread_is_restarted_on_the_same_port():
    from app.api.config import ApiConfig
    from app.api.server import ApiServer, create_app
    from app.health import Health
    from app.status import Parts, Status
    from app.timing import StageTimer

    parts = Parts(Health(), Health())
    status = Status(["person"], "dev", StageTimer(), parts, "r")
    server = ApiServer(create_app(status, ApiConfig(), {}, {}), "127.0.0.1", 0)
    parts.api = server
    dog = parts.watchdog = Watchdog(parts.watched)
    server.start()
    url = f"http://127.0.0.1:{server.port}/api/live"
    try:
        wait_until(lambda: httpx.get(url).status_code == 200, 20, what="the API")
        kill(server._thread)
        assert "API server thread has ended" in status.health().components["threads"].detail
        assert status.health().status == "failing"
        dog.check()
        dog.check()
        wait_until(lambda: httpx.get(url).status_code == 200, 20, what="the restarted API")
        assert status.health().components["threads"].status == "degraded"  # restarted lately
    finally:
        server.close()
