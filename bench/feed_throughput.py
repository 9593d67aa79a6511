"""Sustained QoS 1 publish rate through Vigil's MQTT publisher to a local mosquitto, without loss.

Event messages (a realistic ~1 kB `update` payload) are handed to the publisher in batches the way
the publish worker does; a QoS 1 subscriber counts what arrives. Printed next to a baseline in the
same run: a bare paho client publishing the same messages at QoS 1 with the same in-flight window.

    python bench/feed_throughput.py [--messages 20000] [--inflight 100]
"""
import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from _feed import Broker, Subscriber, wait_until
from tqdm import tqdm

from app.types import Detections, FrameResult
from app.publish.config import MqttConfig
from app.publish.mqtt import MqttPublisher

OBJ = {"id": "a1b2c3-17", "track_id": 17, "camera": "bench", "label": "person", "score": 0.91, "top_score": 0.93,
       "box": [499, 155, 532, 234], "box_norm": [0.6497, 0.2691, 0.6927, 0.4063], "area": 2607, "ratio": 0.418,
       "velocity": [12.5, -3.1], "start_time": 1795290000.123, "end_time": None, "frame_time": 1795290003.523,
       "current_zones": ["walkway"], "entered_zones": ["west", "walkway"], "dwell": {"west": 2.4, "walkway": 1.2},
       "loitering_zones": [], "lines_crossed": [{"line": "crossing", "direction": "in", "time": 1795290002.9}],
       "stationary": False, "motionless_count": 0}


def received_rate(port: int, topic: str, n: int, send) -> tuple[float, int]:
    """(messages per second from the first send to the last arrival, messages received)."""
    sub = Subscriber(port, topic)
    t0 = time.perf_counter()
    send()
    with tqdm(total=n, unit="msg", desc=topic.rsplit("/", 2)[-2], leave=False) as bar:
        def done():
            bar.update(len(sub.messages) - bar.n)
            return len(sub.messages) >= n
        try:
            wait_until(done, 120, 0.01, f"{n} messages")
        except AssertionError:
            pass
    last = max((m.at for m in sub.messages), default=time.monotonic())
    got = len(sub.messages)
    elapsed = last - (time.monotonic() - (time.perf_counter() - t0))
    sub.close()
    return got / elapsed if elapsed > 0 else float("nan"), got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--batch", type=int, default=50, help="events per on_result call")
    args = ap.parse_args()
    n = args.messages
    event = {"type": "update", "before": OBJ, "after": OBJ, "changes": ["entered_zone"]}
    size = len(json.dumps(event, separators=(",", ":")))
    with tempfile.TemporaryDirectory() as tmp:
        # mosquitto holds at most 1000 QoS 1 messages for a slow subscriber by default; lift that so the
        # subscriber's own speed, not the broker's limit, decides what arrives
        broker = Broker(Path(tmp), extra=["max_queued_messages 0"]).start()

        # baseline: bare paho, QoS 1, same in-flight window
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        raw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw")
        raw.max_inflight_messages_set(args.inflight)
        raw.connect("127.0.0.1", broker.port)
        raw.loop_start()
        payload = json.dumps(event, separators=(",", ":")).encode()

        def send_raw():
            for _ in range(n):
                raw.publish("bench/raw/events", payload, qos=1)

        raw_rate, raw_got = received_rate(broker.port, "bench/raw/events", n, send_raw)
        raw.disconnect()
        raw.loop_stop()

        cfg = MqttConfig(enabled=True, port=broker.port, topic_prefix="bench/vigil", queue_size=n + 10,
                         max_inflight=args.inflight, stats_interval=0)
        pub = MqttPublisher(cfg, "bench", ["person"])
        pub.start()
        wait_until(lambda: pub.connected, 10, what="publisher connected")
        batch = [event] * args.batch

        def send_vigil():
            def produce():
                for _ in range(n // args.batch):
                    pub.on_result(FrameResult(
                        seq=0, timestamp=0.0, epoch=0.0, size=(768, 576), objects=Detections(), events=batch))
            threading.Thread(target=produce, daemon=True).start()

        rate, got = received_rate(broker.port, "bench/vigil/events", n // args.batch * args.batch, send_vigil)
        stats = pub.snapshot().model_dump()
        pub.close()
        broker.stop()
    sent = n // args.batch * args.batch
    print(f"{sent} event messages of {size} bytes, QoS 1, in-flight window {args.inflight}, local mosquitto")
    print(f"bare paho (baseline):   {raw_rate:8.0f} msg/s  received {raw_got}/{n}")
    print(f"Vigil publisher:        {rate:8.0f} msg/s  received {got}/{sent}, dropped {sum(stats['dropped'].values())}"
          f"  ({rate / raw_rate:.2f}x baseline; target ≥ 2000 msg/s without loss: "
          f"{'met' if rate >= 2000 and got == sent else 'NOT met'})")


if __name__ == "__main__":
    main()
