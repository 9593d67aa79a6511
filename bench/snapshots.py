"""Per-frame cost of object snapshots on the outputs thread, on the sample clip.

The pipeline runs the clip (10 fps, every frame, the test scene) with a snapshot output of its own
wrapped in a timer: per frame, the time that output took (scoring views, copying a pending one,
JPEG encodes of crop and full frame, writing finished ones to disk). Once with the default
`snapshots.interval` (1 s) and once with 0 (every better view encoded at once), to show what the
interval buys. The frame period is the budget the whole outputs thread has.

    python bench/snapshots.py [--frames 300]
"""
import argparse
import tempfile
import time

import numpy as np

from app import pipeline
from app.config import load_config, resolve_labels
from app.snapshots import SnapshotsConfig, SnapshotStore
from app.snapshots.consumer import Snapshots

SCENE = {
    "zones": {
        "walkway": {"polygon": [[0.4, 0.4], [1.0, 0.4], [1.0, 0.8], [0.4, 0.8]]},
        "west": {"polygon": [[0.0, 0.35], [0.45, 0.35], [0.45, 0.7], [0.0, 0.7]]},
    },
    "lines": {"crossing": {"start": [0.7, 0.8], "end": [0.7, 0.25]}},
}


class Timed:
    """Times the snapshot keeper per frame (it takes each result before the outputs get it)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.ms: list[float] = []
        self.tracks: set[int] = set()

    def on_result(self, result) -> None:
        t0 = time.perf_counter()
        self.inner.take(result)
        self.ms.append((time.perf_counter() - t0) * 1000)
        self.tracks.update(result.objects.track_ids.tolist())

    def close(self) -> None:
        self.inner.close()


def run(frames: int, interval: float) -> dict:
    cfg = load_config(None, {**SCENE, "preprocess.planner.tile_size": 256, "preprocess.planner.full_frame": False,
                             "output.progress": False}, env={})
    with tempfile.TemporaryDirectory() as d:
        sc = SnapshotsConfig(enabled=True, interval=interval)
        store = SnapshotStore(d, sc.max_count, sc.max_bytes, sc.memory_count, sc.memory_bytes, sc.quality)
        snaps = Snapshots(sc, resolve_labels(cfg.model.labels, cfg.model.path), store, "bench")
        timed = Timed(snaps)
        summary = pipeline.run(cfg, max_frames=frames, consumers=[timed])
        usage = store.usage()
    ms = np.array(timed.ms)
    return {"interval": interval, "frames": summary.frames, "tracks": len(timed.tracks), "encodes": snaps.encodes,
            "per_encode": 1000 * snaps.encode_seconds / max(snaps.encodes, 1),
            "p50": np.percentile(ms, 50), "p95": np.percentile(ms, 95), "max": ms.max(), "mean": ms.mean(),
            "disk": usage["disk_count"], "mb": usage["disk_bytes"] / 1e6, "fps": summary.fps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    args = ap.parse_args()
    rows = [run(args.frames, 1.0), run(args.frames, 0.0)]
    print(f"sample clip, 768x576 at 10 fps: frame period 100 ms; {args.frames} frames")
    print(f"{'interval s':>10} {'tracks':>6} {'encodes':>7} {'ms/encode':>9} {'frame p50':>9} {'p95':>6} {'max':>6} "
          f"{'mean':>6} {'on disk':>8}")
    for r in rows:
        print(f"{r['interval']:>10g} {r['tracks']:>6} {r['encodes']:>7} {r['per_encode']:>9.2f} {r['p50']:>9.3f} "
              f"{r['p95']:>6.2f} {r['max']:>6.2f} {r['mean']:>6.3f} {r['disk']:>4} {r['mb']:>4.1f}MB")


if __name__ == "__main__":
    main()
