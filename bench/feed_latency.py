"""Capture-to-MQTT latency on the sample clip, measured by a subscriber.

The clip is played like a camera: decoded at its own rate (10 fps, looping), read as a live source
(frames stamped with the wall clock when they arrive, newest frame wins, one-frame queue), and every
frame is published on …/frame.
Latency = time the subscriber receives the frame message − the frame's capture time. Printed next
to the inference time per frame measured in the same run (target: p95 ≤ inference p95 + 10 ms).

    python bench/feed_latency.py [--frames 150] [--rate 10]   (the default detector: one model run per frame)
"""
import argparse
import tempfile
import time

import cv2
from datetime import datetime
from pathlib import Path

from _feed import ROOT, Broker, Subscriber, percentiles
from tqdm import tqdm

from app import pipeline
from app.config import load_config


REAL_CAPTURE = cv2.VideoCapture


class PacedCapture:
    """cv2.VideoCapture playing a file in real time, looping: what a camera looks like to the pipeline."""

    rate = 10.0

    def __init__(self, target, *args):
        self._cap = REAL_CAPTURE(target, *args)
        self._t0 = None
        self._n = 0

    def isOpened(self):
        return self._cap.isOpened()

    def get(self, prop):
        return self._cap.get(prop)

    def release(self):
        self._cap.release()

    def read(self):
        if self._t0 is None:
            self._t0 = time.monotonic()
        due = self._t0 + self._n / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # a camera delivers frames on its clock
        self._n += 1
        ok, img = self._cap.read()
        if not ok:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, img = self._cap.read()
        return ok, img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--rate", type=float, default=10.0, help="camera frame rate to emulate")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp)).start()
        sub = Subscriber(broker.port, "vigil/lat/frame")
        over = {
            "source.live": True, "source.queue_size": 1,
            "device_id": "lat", "source.uri": str(ROOT / "samples/vtest.mp4"),
            "mqtt": {"enabled": True, "port": broker.port, "frame": True, "stats_interval": 0},
        }
        cfg = load_config(None, over, env={})
        PacedCapture.rate = args.rate
        # the capture module imports cv2 when it opens a source: replace the class in cv2 itself
        cv2.VideoCapture = PacedCapture
        try:
            with tqdm(total=args.frames, unit="frame", desc="latency") as bar:
                summary = pipeline.run(cfg, max_frames=args.frames, progress=lambda *_: bar.update(1))
        finally:
            cv2.VideoCapture = REAL_CAPTURE
        sub.wait_for(lambda m: len(sub.messages) >= args.frames, 30, "all frame messages")
        sub.close()
        broker.stop()
    lat = []
    for m in sub.messages:
        ts = datetime.strptime(m.json()["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
        lat.append((m.wall - ts) * 1000)
    lat = lat[5:]  # the first frames include model warm-up
    p50, p95 = percentiles(lat)
    inf = summary.stages["detect"]
    print(f"frames published: {len(sub.messages)} of {summary.frames} processed; "
          f"{summary.model_runs_per_frame} model runs per frame; camera {args.rate:g} fps, "
          f"{summary.dropped} frames dropped (inference busy)")
    print(f"inference per frame       p50 {inf['p50']:7.1f} ms   p95 {inf['p95']:7.1f} ms")
    print(f"capture → MQTT subscriber p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    print(f"overhead beyond inference p50 {p50 - inf['p50']:+7.1f} ms   p95 {p95 - inf['p95']:+7.1f} ms   "
          f"(target p95 ≤ inference p95 + 10 ms: {'met' if p95 <= inf['p95'] + 10 else 'NOT met'})")
    for stage in ("capture", "track", "analytics", "output"):
        s = summary.stages.get(stage)
        if s:
            print(f"  {stage:<10} p50 {s['p50']:6.2f} ms  p95 {s['p95']:6.2f} ms")


if __name__ == "__main__":
    main()
