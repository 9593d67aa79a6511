"""Whole frame or tiles on a high-resolution stream with small objects: the labelled sample-clip
frames at their native size inside a 1920x1080 frame (the rest filled by reflecting the image and
marked as an ignore region), so people are 55-150 px tall in a frame the model sees at 416 px.

Prints recall and precision per class group and model runs per frame for the whole frame and for
tile plans, on the chosen half of the evaluation set (decide on --split tune).

    python bench/tiling_highres.py [--split tune|holdout] [--size 1920x1080]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from app.config import load_config  # noqa: E402
from app.detector import Detector  # noqa: E402
from eval_detector import GROUPS, by_group, evaluate  # noqa: E402
from eval_set import load_eval_set  # noqa: E402

PLANS = {
    "whole frame": {"preprocess.tiling.enabled": False},
    "tiles 416 + whole": {"preprocess.tiling.enabled": True, "preprocess.tiling.tile_size": 416},
    "tiles 640 + whole": {"preprocess.tiling.enabled": True, "preprocess.tiling.tile_size": 640},
    "tiles 832 + whole": {"preprocess.tiling.enabled": True, "preprocess.tiling.tile_size": 832},
}


def embed(item, width: int, height: int):
    """The item's image at native size in the middle of a width x height frame; outside it is ignored."""
    h, w = item.image.shape[:2]
    x0, y0 = (width - w) // 2, (height - h) // 2
    big = cv2.copyMakeBorder(item.image, y0, height - h - y0, x0, width - w - x0, cv2.BORDER_REFLECT)
    shift = np.array([x0, y0, x0, y0], float)
    outside = np.array([[0, 0, width, y0], [0, y0 + h, width, height], [0, y0, x0, y0 + h],
                        [x0 + w, y0, width, y0 + h]], float)
    return dataclasses.replace(item, image=big, boxes=item.boxes + shift,
                               ignore=np.concatenate([item.ignore.reshape(-1, 4) + shift, outside]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "holdout"], default="tune")
    ap.add_argument("--size", default="1920x1080")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    items = [embed(it, width, height) for it in load_eval_set(args.split) if it.source == "vtest"]
    print(f"{len(items)} clip frames ({args.split}) inside {width}x{height}")
    print(f"{'plan':<20}{'runs/frame':>11}" + "".join(f"{g + ' recall/precision':>28}" for g in GROUPS))
    for name, over in PLANS.items():
        cfg = load_config(ROOT / "config" / "default.yaml", over, env={})
        runs = len(Detector.load(cfg).views((width, height)))
        pools = evaluate(cfg, items)
        row = f"{name:<20}{runs:>11}"
        for total in by_group(pools).values():
            r = total.result()
            row += f"{r['recall']:>18.3f} / {r['precision']:.3f}"
        print(row)


if __name__ == "__main__":
    main()
