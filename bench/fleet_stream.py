"""Many cameras' feeds without a thread pair per camera: the messages Vigil's MqttPublisher sent for the
sample clip (recorded once from the real publisher: topics, payloads, QoS, retain flags, timing), replayed
by light paho clients made by Vigil's own `make_client` (same will, same in-flight window), all clients
of a process driven by one thread. Used by bench/fleet.py for N where one process cannot hold N real
publishers (each has a paho network thread and a sender thread)."""
from __future__ import annotations

import json
import pickle
import select
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STREAM = Path(tempfile.gettempdir()) / "vigil-bench-fleet-stream.pkl"
RESULTS = Path(tempfile.gettempdir()) / "vigil-bench-fleet-results.pkl"  # bench/fleet.py's record()
PREFIX = "vigil/rec/"


def record_stream(results: list, rate: float = 10.0) -> list[tuple[float, str, bytes, int, bool]]:
    """What one real MqttPublisher sends for `results` fed at `rate`/s: (seconds, topic, payload, qos, retain)."""
    if STREAM.exists() and STREAM.stat().st_mtime >= RESULTS.stat().st_mtime:
        return pickle.loads(STREAM.read_bytes())
    from app.publish.config import MqttConfig
    from app.publish.mqtt import MqttPublisher
    from tests.mqtt_util import Broker, wait_until

    out: list = []
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp)).start()
        try:
            pub = MqttPublisher(MqttConfig(enabled=True, port=broker.port, stats_interval=0), "rec", ["person"])
            t0 = [time.monotonic()]
            real = pub._client.publish

            def recording(topic, payload=None, qos=0, retain=False, properties=None):
                out.append((time.monotonic() - t0[0], topic, bytes(payload or b""), qos, retain))
                return real(topic, payload, qos, retain)

            pub._client.publish = recording  # the sender thread's one call to paho (app/publish/mqtt.py)
            pub.start()
            wait_until(lambda: pub.connected, 20, what="the recording publisher connected")
            out.clear()  # the start-up's retained messages are sent once per camera, not per loop
            t0[0] = time.monotonic()
            for i, r in enumerate(results):
                pub.on_result(r)
                time.sleep(max(0.0, t0[0] + (i + 1) / rate - time.monotonic()))  # pacing the recording
            pub.flush(10)
            pub.close(2)
        finally:
            broker.stop()
    STREAM.write_bytes(pickle.dumps(out))
    return out


def light_worker(port: int, first: int, count: int, speed: float, start_at: float, seconds: float) -> None:
    """`count` cameras from `first` replaying the stream at `speed` times its rate; prints a JSON summary."""
    from app.publish.config import MqttConfig
    from app.publish.connection import make_client

    stream = pickle.loads(STREAM.read_bytes())
    period = len(pickle.loads(RESULTS.read_bytes())) / 10.0  # seconds of the recording, one loop
    cfg = MqttConfig(enabled=True, port=port)
    clients, acked = [], [0]
    for i in range(first, first + count):
        c = make_client(cfg, f"sim{i:04d}-light", f"vigil/sim{i:04d}/available")
        c.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
        c.connect("127.0.0.1", port, 60)
        clients.append(c)
    names = [f"vigil/sim{i:04d}/" for i in range(first, first + count)]
    for name, c in zip(names, clients):
        c.publish(name + "available", b"online", 1, True)
    handed = {"new": 0, "update": 0, "end": 0}
    phase = [(k / max(count, 1)) / (10.0 * speed) for k in range(count)]  # spread within one result period
    nxt = [0] * count
    while time.time() < start_at:
        service(clients, 0.01)
    t0 = time.monotonic()
    while (now := time.monotonic() - t0) < seconds:
        for k, c in enumerate(clients):
            while True:
                j = nxt[k]
                at = (j // len(stream)) * period + stream[j % len(stream)][0]
                if at / speed + phase[k] > now:
                    break
                _, topic, payload, qos, retain = stream[j % len(stream)]
                if topic.endswith("/events"):
                    e = json.loads(payload)
                    e["after"]["frame_time"] = time.time()
                    handed[e["type"]] += 1
                    payload = json.dumps(e, separators=(",", ":")).encode()
                c.publish(names[k] + topic[len(PREFIX):], payload, qos, retain)
                nxt[k] = j + 1
        service(clients, 0.002)
    fed = time.monotonic() - t0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(c._out_messages for c in clients):
        service(clients, 0.01)  # the last acknowledgements
    for c in clients:
        c.disconnect()
    # how far the replay kept up: messages published against what the asked rate would have published
    expected = len(stream) / period * speed * fed * count
    kept = min(1.0, sum(nxt) / expected) if expected else 1.0
    print(json.dumps({"handed": handed, "sent": acked[0], "dropped": 0, "ticks": int(fed * 10 * speed * kept),
                      "fed": fed, "behind": 0.0}), flush=True)


def service(clients: list, timeout: float) -> None:
    """One round of network work for every client: read what arrived (acks), write what is pending."""
    by_sock = {c.socket(): c for c in clients if c.socket() is not None}
    want = [s for s, c in by_sock.items() if c.want_write()]
    r, w, _ = select.select(list(by_sock), want, [], timeout)
    for s in r:
        by_sock[s].loop_read()
    for s in w:
        by_sock[s].loop_write()
    for c in clients:
        c.loop_misc()


if __name__ == "__main__":
    a = sys.argv[1:]
    light_worker(int(a[0]), int(a[1]), int(a[2]), float(a[3]), float(a[4]), float(a[5]))
