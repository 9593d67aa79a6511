"""Events lost by subscribers across broker restarts, with and without mqtt.resume_delay.

One series of mosquitto restarts is shared by several Vigil publishers (one per resume delay,
each on its own topic prefix), so every delay sees exactly the same outages. Each publisher
emits synthetic events (a `new` and an `end` per tick, every one numbered) all the time, also
while the broker is away. Two brokers restart together:

- without persistence (most home set-ups), watched by default paho subscribers (clean session,
  paho's default reconnect back-off, resubscribe in on_connect): the case of the issue;
- with persistence, watched by a persistent-session subscriber (fixed client id, clean_session
  false, QoS 1): what docs/mqtt.md recommends.

It prints, per broker and delay, how many new/end events each subscriber missed, and how long
after the broker came back Vigil reconnected and the subscribers had resubscribed.

    .venv/bin/python bench/feed_restarts.py [--restarts 6] [--outages 2,8,17] [--delays 0,1,3,5]
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from _feed import Broker, percentiles

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from app.types import Detections, FrameResult
from app.publish.config import MqttConfig
from app.publish.mqtt import MqttPublisher


class Watcher:
    """A paho subscriber that records the seq of every new/end event and when it (re)subscribed."""

    def __init__(self, port: int, topic: str, persistent: bool, name: str) -> None:
        self.seqs: set[int] = set()
        self.subscribed_at: list[float] = []
        self._topic = topic
        if persistent:
            self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)
        else:
            self.c = mqtt.Client(CallbackAPIVersion.VERSION2)  # everything as paho ships it
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(self._topic, qos=1)
        self.c.on_subscribe = lambda *a: self.subscribed_at.append(time.monotonic())
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        import json

        e = json.loads(msg.payload)
        if e["type"] != "update":
            self.seqs.add(e["seq"])

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class Source:
    """A publisher fed a new and an end event every tick (synthetic tracks), numbered 1, 2, …"""

    def __init__(self, port: int, prefix: str, delay: float, reconnect_max: int) -> None:
        cfg = MqttConfig(enabled=True, port=port, topic_prefix=prefix, resume_delay=delay, queue_size=100000,
                         stats_interval=0, reconnect_max_delay=reconnect_max)
        self.pub = MqttPublisher(cfg, prefix.replace("/", "_"), ["person"])
        self.seq = 0
        self.critical: set[int] = set()
        self.cycle: dict[int, int] = {}  # seq -> the restart (1, 2, …) it was made before; 0 before the first
        self.now_cycle = 0
        self.reconnected_at: list[float] = []
        self._was = False

    def tick(self, track: int) -> None:
        events = []
        for kind in ("new", "end"):
            self.seq += 1
            self.critical.add(self.seq)
            self.cycle[self.seq] = self.now_cycle
            obj = {"id": f"bench-{track}", "track_id": track}
            events.append({"type": kind, "seq": self.seq, "run_id": "bench", "before": obj, "after": obj,
                           "changes": []})
        r = FrameResult(seq=track, timestamp=0.0, epoch=time.time(), size=(1, 1), objects=Detections(),
                        events=events, counts={"all": 0})
        self.pub.on_result(r)

    def watch(self) -> None:
        """Note when the publisher connects (called often from the monitor thread)."""
        now = self.pub.connected
        if now and not self._was:
            self.reconnected_at.append(time.monotonic())
        self._was = now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--restarts", type=int, default=6)
    ap.add_argument("--outages", default="2,8,17", help="seconds the broker is down, used in turn")
    ap.add_argument("--delays", default="0,1,3,5", help="mqtt.resume_delay values to compare")
    ap.add_argument("--rate", type=float, default=5.0, help="ticks per second (2 new/end events each)")
    ap.add_argument("--reconnect-max", type=int, default=60,
                    help="Vigil's mqtt.reconnect_max_delay; 1 puts Vigil out of phase with paho's back-off")
    args = ap.parse_args()
    outages = [float(x) for x in args.outages.split(",")]
    delays = [float(x) for x in args.delays.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="vigil-restarts-"))
    brokers = {"volatile": Broker(tmp / "volatile").start(), "persistent": Broker(tmp / "persistent", persistent=True).start()}
    sources, watchers = {}, {}
    for kind, b in brokers.items():
        for d in delays:
            prefix = f"bench/{kind}/d{d:g}"
            sources[kind, d] = Source(b.port, prefix, d, args.reconnect_max)
            persistent = kind == "persistent"
            watchers[kind, d] = Watcher(b.port, f"{prefix}/events", persistent, f"bench-{kind}-{d:g}")
    for s in sources.values():
        s.pub.start()
    time.sleep(1.0)  # bench only: let every client connect before the first tick

    stop = threading.Event()

    def feed() -> None:
        track = 0
        while not stop.is_set():
            track += 1
            for s in sources.values():
                s.tick(track)
            time.sleep(1.0 / args.rate)

    def monitor() -> None:
        while not stop.is_set():
            for s in sources.values():
                s.watch()
            time.sleep(0.01)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    threading.Thread(target=monitor, daemon=True).start()
    back_at: list[float] = []
    for i in range(args.restarts):
        time.sleep(2.0)
        for s in sources.values():
            s.now_cycle = i + 1  # events from now until the next restart are this outage's
        for b in brokers.values():
            b.stop()
        time.sleep(outages[i % len(outages)])
        for b in brokers.values():
            b.start()
        back_at.append(time.monotonic())
        print(f"restart {i + 1}/{args.restarts}: broker down {outages[i % len(outages)]:g} s", flush=True)
        # wait until everything queued went out (plus the longest delay)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(
                s.pub.connected and not s.pub.snapshot().queued for s in sources.values()):
            time.sleep(0.2)
    time.sleep(max(delays) + 3)
    stop.set()
    t.join()
    for s in sources.values():
        s.pub.flush(30)
    time.sleep(2)  # let the last messages arrive

    def lags(times: list[float]) -> str:
        after = []
        for b in back_at:
            later = [x - b for x in times if x >= b]
            if later:
                after.append(min(later))
        p50, p95 = percentiles(after, (50, 100))
        return f"{p50:5.2f} / {p95:5.2f}"

    print(f"\n{args.restarts} broker restarts (down {args.outages} s in turn), {args.rate * 2:g} new/end events/s per publisher, "
          f"Vigil's reconnect back-off 1..{args.reconnect_max} s, paho's 1..120 s")
    per = " ".join(f"{f'{outages[i % len(outages)]:g}s':>5}" for i in range(args.restarts))
    print(f"{'broker':<11} {'subscriber':<26} {'resume_delay':>12} {'new/end sent':>12} {'lost':>6}  "
          f"lost per outage: {per}  {'Vigil back p50/max s':>21} {'subscriber back p50/max s':>26}")
    for (kind, d), s in sources.items():
        w = watchers[kind, d]
        missing = sorted(s.critical - w.seqs)
        lost = len(missing)
        who = "persistent session, QoS 1" if kind == "persistent" else "paho defaults"
        by = [sum(1 for q in missing if s.cycle[q] == i + 1) for i in range(args.restarts)]
        print(f"{kind:<11} {who:<26} {d:>12g} {len(s.critical):>12} {lost:>6}  "
              f"{'':>17}{' '.join(f'{n:>5}' for n in by)}  {lags(s.reconnected_at):>21} {lags(w.subscribed_at):>26}")
    for s in sources.values():
        s.pub.close(2)
    for w in watchers.values():
        w.close()
    for b in brokers.values():
        b.stop()


if __name__ == "__main__":
    main()
