"""Tracked output of the whole pipeline against the labelled sample-clip frames of the evaluation set.

The default model runs once over samples/vtest.mp4 at a low decoder threshold (cached in bench/out/);
each tracker configuration then replays those detections in order (after the operating-point class
thresholds of config/default.yaml, or a lower floor where a row says so), and at every labelled
frame of the chosen split its output boxes are matched to the labelled persons and vehicles
(IoU 0.5, per class group, ignore regions as in tools/eval_detector.py). Prints recall, precision
and the number of track ids over the clip. Tracker settings are chosen on --split tune.

    python bench/track_labelled.py [--split tune|holdout] [--refresh]
"""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from app.config import load_config, resolve_labels  # noqa: E402
from app.decoders import ScoreFilter  # noqa: E402
from app.accuracy import Counts, match  # noqa: E402
from app.detector import Detector  # noqa: E402
from app.tracking import build_tracker  # noqa: E402
from app.tracking.bytetrack import Config as ByteTrackConfig  # noqa: E402
from app.tracking.sort import Config as SortConfig  # noqa: E402
from app.types import Detections, Frame  # noqa: E402
from eval_set import load_eval_set  # noqa: E402

LOW = 0.2
CACHE = ROOT / "bench" / "out" / f"vtest_nanodet_dets_{LOW}.pkl"


def detections(refresh: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(boxes, scores, classes) per frame of the sample clip at decoder threshold LOW, cached."""
    if CACHE.exists() and not refresh:
        return pickle.loads(CACHE.read_bytes())
    cfg = load_config(ROOT / "config" / "default.yaml", {"decoder.score_threshold": LOW}, env={})
    cfg.decoder.class_thresholds = {}
    det = Detector.load(cfg)
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


def evaluate(dets, items, group_of, keep_fn, tracker_cfg=None) -> tuple[Counts, int]:
    """Counts at the labelled frames (persons and vehicles, each group matched on its own) and the number of ids."""
    tracker = build_tracker(tracker_cfg) if tracker_cfg else None
    total, ids = Counts(), set()
    for i, (xy, s, cl) in enumerate(dets):
        keep = keep_fn(s, cl)
        d = Detections(xy[keep], s[keep], cl[keep])
        if tracker:
            d = tracker.update(d, i / 10)
            ids.update(d.track_ids.tolist())
        item = items.get(i)
        if item is None:
            continue
        truth_group = np.array([group_of(lab) for lab in item.labels], dtype=object)
        pred_group = np.array([group_of(int(c)) for c in d.class_ids], dtype=object)
        for g in ("person", "vehicle"):
            sel = pred_group == g
            total += match(d.xyxy[sel], d.scores[sel], item.boxes[truth_group == g], item.ignore)
    return total, len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "holdout"], default="tune")
    ap.add_argument("--refresh", action="store_true", help="re-run the detector instead of using the cache")
    args = ap.parse_args()
    cfg = load_config(ROOT / "config" / "default.yaml", env={})
    labels = resolve_labels(cfg.model.labels, cfg.model.path)
    groups = {"person": "person", **{m: "vehicle" for m in cfg.model.groups["vehicle"]}}
    label_arr = np.array(labels, dtype=object)

    def group_of(label: str | int) -> str:
        return groups.get(labels[label] if isinstance(label, int) else label, "")

    dets = detections(args.refresh)
    items = {int(it.id.split("-")[1]): it for it in load_eval_set(args.split) if it.source == "vtest"}
    operating = ScoreFilter(cfg.decoder, labels, len(labels)).keep
    floor = lambda t: (lambda s, c: (s >= t) & np.isin(label_arr[c], list(groups)))  # noqa: E731
    rows = [
        ("detector only (operating point)", None, operating),
        ("SORT (defaults)", SortConfig(per_class=True), operating),
        ("SORT min_hits 1", SortConfig(min_hits=1, per_class=True), operating),
        ("ByteTrack track 0.4 / new 0.5", ByteTrackConfig(track_thresh=0.4, new_track_thresh=0.5, per_class=True),
         floor(LOW)),
        ("ByteTrack track 0.4 / new 0.4", ByteTrackConfig(track_thresh=0.4, new_track_thresh=0.4, per_class=True),
         floor(LOW)),
        ("ByteTrack track 0.35 / new 0.45", ByteTrackConfig(track_thresh=0.35, new_track_thresh=0.45, per_class=True),
         floor(LOW)),
        ("ByteTrack track 0.5 / new 0.5", ByteTrackConfig(track_thresh=0.5, new_track_thresh=0.5, per_class=True),
         floor(LOW)),
        ("ByteTrack defaults", cfg.tracker, operating),
        ("ByteTrack defaults, floor 0.2", cfg.tracker, floor(LOW)),
    ]
    n_truth = sum(len(it.boxes) for it in items.values())
    print(f"{len(items)} labelled clip frames ({args.split}), {n_truth} persons and vehicles; IoU 0.5")
    print(f"| {'output':<34} | recall | precision | ids over clip |")
    print(f"|{'-' * 36}|--------|-----------|---------------|")
    for name, tcfg, keep in rows:
        c, n = evaluate(dets, items, group_of, keep, tcfg)
        print(f"| {name:<34} | {c.recall:6.3f} | {c.precision:9.3f} | {n if tcfg else '-':>13} |")


if __name__ == "__main__":
    main()
