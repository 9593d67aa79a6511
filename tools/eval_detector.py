"""Recall and precision at IoU 0.5 of a detector config on the hand-labelled frames of the sample clip.

    python tools/eval_detector.py [--model M] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from app.config import load_config
from app.metrics import Counts, match
from app.pipeline import Detector
from app.types import Frame

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "tests" / "data" / "vtest_labels.json"


def labelled_frames(labels_path: Path = LABELS):
    """(frame index, BGR image, persons (n,4), ignore (m,4)) for every labelled frame, in clip order."""
    spec = json.loads(labels_path.read_text())
    wanted = {f["index"]: f for f in spec["frames"]}
    cap = cv2.VideoCapture(str(ROOT / spec["clip"]))
    index = 0
    while wanted:
        ok, img = cap.read()
        if not ok:
            raise RuntimeError(f"clip ended before frames {sorted(wanted)}")
        f = wanted.pop(index, None)
        if f is not None:
            yield index, img, np.array(f["persons"], float).reshape(-1, 4), np.array(f["ignore"], float).reshape(-1, 4)
        index += 1
    cap.release()


def evaluate(cfg, frames=None) -> Counts:
    """Summed TP/FP/FN of the configured detector over the labelled frames."""
    det = Detector(cfg)
    total = Counts()
    for index, img, persons, ignore in frames if frames is not None else labelled_frames():
        d = det(Frame(img, index / 10.0, index))
        total += match(d.xyxy, d.scores, persons, ignore)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config")
    ap.add_argument("--model")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    overrides = {k: __import__("yaml").safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    if args.model:
        overrides["model.path"] = args.model
    cfg = load_config(args.config, overrides, env={})
    c = evaluate(cfg)
    print(f"{cfg.model.path}: recall {c.recall:.3f}  precision {c.precision:.3f}  (TP {c.tp}, FP {c.fp}, FN {c.fn})")


if __name__ == "__main__":
    main()
