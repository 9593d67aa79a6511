"""A site broker bridged to a central one: no new/end lost across a central restart and a link outage.

cameras (Vigil's MqttPublisher, replaying the sample clip's results) -> site mosquitto (persistence)
-> QoS 1 bridge, clean session off -> a TCP link that can be cut -> central mosquitto (persistence)
-> a subscriber with a persistent session (clean session off, QoS 1) on vigil/+/events.

    python bench/bridge.py [--outage 60] [--cameras 10]

Used by bench/fleet.py and tests/test_fleet_bridge.py. Loopback only.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


class Link:
    """A TCP link to 127.0.0.1:<port> that can be cut (open connections reset, new ones refused)."""

    def __init__(self, port: int) -> None:
        self.port_to = port
        self.up = True
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if not self.up:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.port_to), timeout=5)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.conns.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.sock.close()


def bridge_run(tmp: Path, outage: float, cameras: int = 10, say=print) -> dict:
    """Run the whole scenario; {"handed", "received", "lost", "duplicates", ...} of new/end events."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from app.publish.config import MqttConfig
    from app.publish.mqtt import MqttPublisher
    from fleet import record
    from tests.mqtt_util import Broker, wait_until

    results = record()
    # the central's queue per consumer must hold the backlog a restored link delivers at once (default 1000:
    # with 10 cameras a 60 s outage's events are more, and the excess was dropped: 48 of 1000 new/end lost)
    central = Broker(tmp / "central", persistent=True, extra=["max_queued_messages 0"]).start()
    link = Link(central.port)
    site = Broker(tmp / "site", persistent=True, extra=[
        "max_queued_messages 0",  # the bridge's queue must hold the whole outage (default 1000 messages)
        "connection central", f"address 127.0.0.1:{link.port}", "topic vigil/# out 1",
        "cleansession false", "restart_timeout 1 5", "keepalive_interval 10",
        "bridge_protocol_version mqttv311", "try_private true"]).start()
    received: set[tuple[str, int]] = set()
    dupes = [0]
    lock = threading.Lock()

    def on_message(client, userdata, msg) -> None:
        try:
            if not msg.topic.endswith("/events"):
                return
            e = json.loads(msg.payload)
            if e["type"] in ("new", "end"):
                key = (msg.topic.split("/")[1], e["seq"])
                with lock:
                    dupes[0] += key in received
                    received.add(key)
        except Exception:  # noqa: BLE001 - a callback given to paho keeps its thread alive
            pass

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="central-consumer", clean_session=False)
    sub.on_message = on_message
    sub.on_connect = lambda c, *a: c.subscribe("vigil/+/events", qos=1)
    sub.reconnect_delay_set(0.2, 2)
    sub.connect("127.0.0.1", central.port)
    sub.loop_start()
    pubs = [MqttPublisher(MqttConfig(enabled=True, port=site.port, stats_interval=0, queue_size=100000),
                          f"site{i:02d}", ["person"]) for i in range(cameras)]
    for p in pubs:
        p.start()
    handed: set[tuple[str, int]] = set()
    seq = [0] * cameras
    stop = threading.Event()

    def feed() -> None:
        tick = 0
        t0 = time.monotonic()
        while not stop.is_set():
            r = results[tick % len(results)]
            for i, p in enumerate(pubs):
                events = []
                for e in r.events:
                    seq[i] += 1
                    events.append(e.model_copy(update={"seq": seq[i]}))
                    if e.type in ("new", "end"):
                        handed.add((p.device_id, seq[i]))
                p.on_result(replace(r, events=tuple(events)) if events else r)
            tick += 1
            stop.wait(max(0.0, t0 + tick / 10 - time.monotonic()))  # pacing at 10 results/s

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        wait_until(lambda: len(received) >= 5, 60, 0.1, "events through the bridge")
        say(f"bridge: {cameras} cameras -> site broker -> bridge -> central: events arriving")
        central.stop()
        time.sleep(3)  # the central broker is down for a while: the outage being measured
        central.start()
        say("bridge: central broker restarted (persistence on)")
        mark = len(received)
        wait_until(lambda: len(received) > mark + 5, 120, 0.1, "events after the central restart")
        link.cut()
        say(f"bridge: link cut for {outage:g} s")
        time.sleep(outage)  # the outage itself
        link.restore()
        mark = len(received)
        wait_until(lambda: len(received) > mark + 5, 120, 0.1, "events after the outage")
        say("bridge: link restored")
        stop.set()
        feeder.join(10)
        for p in pubs:
            p.flush(20)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not handed <= received:
            time.sleep(0.2)
    finally:
        stop.set()
        for p in pubs:
            p.close(2)
        sub.loop_stop()
        sub.disconnect()
        site.stop()
        link.close()
        central.stop()
    lost = handed - received
    out = {"handed": len(handed), "received": len(received & handed), "lost": len(lost), "duplicates": dupes[0],
           "outage": outage}
    say(f"bridge: new/end handed {out['handed']}, received {out['received']}, lost {out['lost']}, "
        f"duplicates {out['duplicates']} (QoS 1: at least once), across a central restart and a {outage:g} s outage")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--outage", type=float, default=60.0)
    ap.add_argument("--cameras", type=int, default=10)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        sys.exit(1 if bridge_run(Path(d), a.outage, a.cameras)["lost"] else 0)
