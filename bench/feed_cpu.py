"""CPU cost of the publishing path per frame at 20 tracked objects.

20 people walk across a 768x576 scene with two zones and a counting line (the test scene). The
tracker runs first (its time is the baseline printed alongside); then, for the same frames, the
analytics, the HTTP status update and the MQTT publisher (events, retained counts, and optionally
…/frame) to a local mosquitto. CPU time is process time, so it includes the MQTT sender and paho
network threads.

    python bench/feed_cpu.py [--frames 2000] [--objects 20]
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _feed import Broker, percentiles, wait_until
from tqdm import tqdm

from app.analytics import Analytics
from app.config import load_config
from app.publish.mqtt import MqttPublisher
from app.health import Health
from app.status import Parts, Status
from app.timing import StageTimer
from app.tracking import build_tracker
from app.types import Detections, Frame

W, H = 768, 576
SCENE = {
    "zones": {
        "walkway": {"polygon": [[0.4, 0.4], [1.0, 0.4], [1.0, 0.8], [0.4, 0.8]]},
        "west": {"polygon": [[0.0, 0.35], [0.45, 0.35], [0.45, 0.7], [0.0, 0.7]], "loitering_time": 2.0},
    },
    "lines": {"crossing": {"start": [0.7, 0.8], "end": [0.7, 0.25]}},
}


def scene(frames: int, n: int, fps: float = 10.0):
    """Detections of n people walking and bouncing off the frame edges, with a little box noise."""
    rng = np.random.default_rng(1)
    pos = rng.uniform([0.05, 0.3], [0.95, 0.9], (n, 2))
    vel = rng.uniform(-0.08, 0.08, (n, 2)) * [1, 0.4]
    size = np.array([30, 80])
    for _ in range(frames):
        pos += vel / fps
        bounce = (pos < [0.03, 0.2]) | (pos > [0.97, 0.95])
        vel[bounce] *= -1
        centre = pos * [W, H]
        xyxy = np.concatenate([centre - [size[0] / 2, size[1]], centre + [size[0] / 2, 0]], axis=1)
        xyxy += rng.normal(0, 1.0, xyxy.shape)
        yield Detections(xyxy.astype(np.float32), rng.uniform(0.6, 0.95, n).astype(np.float32), np.zeros(n, np.int32))


def run(frames, cfg, broker_port, frame_topic: bool):
    timer = StageTimer()
    image = np.zeros((H, W, 3), np.uint8)
    analytics = Analytics(["person"], cfg.zones, cfg.lines, cfg.filters, cfg.stationary, cfg.events,
                          epoch_offset=time.time(), keep_tracks_view=True)
    status = Status(["person"], "bench", timer, Parts(Health(), Health()), "bench", zones=cfg.zones, lines=cfg.lines)
    pub = MqttPublisher(cfg.mqtt.model_copy(update={"port": broker_port, "frame": frame_topic, "stats_interval": 0,
                                                    "queue_size": 100000}), "bench", ["person"])
    pub.start(analytics.current())
    wait_until(lambda: pub.connected, 10, what="connected")
    times = {"analytics": [], "status": [], "mqtt": []}
    events = 0
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for i, (tracked, ev) in enumerate(tqdm(frames, desc=f"feed (frame topic {'on' if frame_topic else 'off'})",
                                           unit="frame", leave=False)):
        f = Frame(image, i / 10, i)
        t0 = time.perf_counter()
        r = analytics.update(f, tracked, ev)
        t1 = time.perf_counter()
        status.on_result(r)
        t2 = time.perf_counter()
        pub.on_result(r)
        t3 = time.perf_counter()
        times["analytics"].append(t1 - t0)
        times["status"].append(t2 - t1)
        times["mqtt"].append(t3 - t2)
        events += len(r.events)
    pub.flush(60)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    sent = pub.snapshot().sent
    pub.close()
    return times, cpu / len(frames), wall / len(frames), sent / len(frames), events / len(frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--objects", type=int, default=20)
    args = ap.parse_args()
    cfg = load_config(None, {**SCENE, "mqtt.enabled": True, "events": {"update_interval": 1.0, "heartbeat": 10.0}},
                      env={})
    tracker = build_tracker(cfg.tracker)
    frames, track_t = [], []
    for i, d in enumerate(tqdm(scene(args.frames, args.objects), total=args.frames, desc="tracker", unit="frame",
                               leave=False)):
        t0 = time.perf_counter()
        tracked = tracker.update(d, i / 10)
        track_t.append(time.perf_counter() - t0)
        frames.append((tracked, tracker.pop_events()))
    tracked_n = np.mean([len(t) for t, _ in frames[10:]])
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp), extra=["max_queued_messages 0"]).start()
        results = {flag: run(frames, cfg, broker.port, flag) for flag in (False, True)}
        broker.stop()
    tp50, tp95 = (v * 1000 for v in percentiles(track_t))
    print(f"{args.frames} frames, {tracked_n:.1f} tracked objects per frame on average, 2 zones, 1 line")
    print(f"tracker update (baseline)       p50 {tp50:6.3f} ms  p95 {tp95:6.3f} ms")
    for flag, (times, cpu, wall, msgs, events) in results.items():
        print(f"-- …/frame {'on ' if flag else 'off'}: {msgs:.2f} MQTT messages and {events:.2f} events per frame")
        for part, vals in times.items():
            p50, p95 = (v * 1000 for v in percentiles(vals))
            print(f"   {part:<10} (caller's thread)  p50 {p50:6.3f} ms  p95 {p95:6.3f} ms")
        print(f"   CPU per frame, all threads (incl. sender and paho): {cpu * 1000:6.3f} ms "
              f"= {cpu / (tp50 / 1000):.2f}x the tracker's p50; wall {wall * 1000:.3f} ms")


if __name__ == "__main__":
    main()
