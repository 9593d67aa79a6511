"""Tracked output of the whole pipeline against the hand-labelled sample frames.

The default model runs once over samples/vtest.mp4 at a low decoder threshold (cached in bench/out/);
each tracker configuration then replays those detections in order, and at every labelled frame its
output boxes are matched to the labelled persons (IoU 0.5, ignore regions as in the detector test).
Prints recall, precision and the number of track ids over the clip.

    python bench/track_labelled.py [--refresh]
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import load_config  # noqa: E402
from app.metrics import Counts, match  # noqa: E402
from app.pipeline import Detector  # noqa: E402
from app.tracking import ByteTrackConfig, SortConfig, create_tracker  # noqa: E402
from app.types import Detections, Frame  # noqa: E402

CACHE = ROOT / "bench" / "out" / "vtest_dets_0.3.pkl"
LOW = 0.3


def detections(refresh: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(boxes, scores, classes) per frame of the sample clip at decoder threshold 0.3, cached."""
    if CACHE.exists() and not refresh:
        return pickle.loads(CACHE.read_bytes())
    det = Detector(load_config(ROOT / "config" / "default.yaml", {"decoder.score_threshold": LOW}, env={}))
    cap = cv2.VideoCapture(str(ROOT / "samples" / "vtest.mp4"))
    out, i = [], 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        d = det(Frame(img, i / 10, i))
        out.append((d.xyxy, d.scores, d.class_ids))
        i += 1
        print(f"\rdetecting frame {i}", end="", file=sys.stderr)
    print(file=sys.stderr)
    CACHE.parent.mkdir(exist_ok=True)
    CACHE.write_bytes(pickle.dumps(out))
    return out


def evaluate(dets, labels, tracker_cfg=None, threshold: float = LOW) -> tuple[Counts, int]:
    """Counts at the labelled frames and the number of ids; without a tracker, the raw detections."""
    tracker = create_tracker(tracker_cfg) if tracker_cfg else None
    total, ids = Counts(), set()
    for i, (xy, s, cl) in enumerate(dets):
        keep = s >= threshold
        d = Detections(xy[keep], s[keep], cl[keep])
        if tracker:
            d = tracker.update(d, i / 10)
            ids.update(d.track_ids.tolist())
        f = labels.get(i)
        if f is not None:
            total += match(d.xyxy, d.scores, np.array(f["persons"], float).reshape(-1, 4),
                           np.array(f["ignore"], float).reshape(-1, 4))
    return total, len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refresh", action="store_true", help="re-run the detector instead of using the cache")
    args = ap.parse_args()
    dets = detections(args.refresh)
    labels = {f["index"]: f for f in json.loads((ROOT / "tests" / "data" / "vtest_labels.json").read_text())["frames"]}
    rows = [
        ("detector only", None, 0.6),
        ("detector only", None, 0.5),
        ("SORT (defaults)", SortConfig(), 0.6),
        ("SORT min_hits 1", SortConfig(min_hits=1), 0.6),
        ("ByteTrack track 0.25 / new 0.35", ByteTrackConfig(track_thresh=0.25, new_track_thresh=None), 0.6),
        ("ByteTrack track 0.25 / new 0.35", ByteTrackConfig(track_thresh=0.25, new_track_thresh=None), LOW),
        ("ByteTrack track 0.5 / new 0.6", ByteTrackConfig(new_track_thresh=0.6), LOW),
        ("ByteTrack defaults (0.5 / 0.7)", ByteTrackConfig(), LOW),
    ]
    print(f"{len(labels)} labelled frames, {sum(len(f['persons']) for f in labels.values())} persons; IoU 0.5")
    print(f"| {'output':<34} | decoder thr | recall | precision | ids over clip |")
    print(f"|{'-' * 36}|-------------|--------|-----------|---------------|")
    for name, cfg, thr in rows:
        c, n = evaluate(dets, labels, cfg, thr)
        print(f"| {name:<34} | {thr:>11.2f} | {c.recall:6.3f} | {c.precision:9.3f} | {n if cfg else '-':>13} |")


if __name__ == "__main__":
    main()
