#!/usr/bin/env python3
"""Loader for the labelled people-and-vehicles evaluation set (tests/data/eval/).

    from tools.eval_set import load_eval_set
    for item in load_eval_set("tune"):
        item.image, item.boxes, item.labels, item.ignore

    python tools/eval_set.py                    # items, persons and vehicles per source and split
    python tools/eval_set.py --render DIR       # every item with its boxes drawn, for checking by eye

The set mixes frames of samples/vtest.mp4 (indices 400-794 only; 0-399 are kept for
calibration) with still images that packages ship, committed under
tests/data/eval/images/. README.md beside labels.json says where each comes from,
how the split was made and how the boxes were drawn.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = ROOT / "tests" / "data" / "eval"
LABELS = EVAL_DIR / "labels.json"

CLASSES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
VEHICLES = frozenset({"bicycle", "car", "motorcycle", "bus", "truck"})
SPLITS = ("tune", "holdout")


@dataclass(frozen=True, eq=False)
class EvalItem:
    """One labelled image: boxes are xyxy in its pixels (x2, y2 exclusive)."""

    id: str
    source: str
    split: str
    image: np.ndarray  # BGR, uint8, (h, w, 3)
    boxes: np.ndarray  # (n, 4) float
    labels: list[str]  # COCO class name per box, length n
    ignore: np.ndarray  # (m, 4) float; detections inside count neither way
    alt_labels: list[str | None] = field(default_factory=list)  # an accepted second class (a van: car or truck)
    status: str = ""  # how far the labels of this item were checked

    @property
    def vehicle_mask(self) -> np.ndarray:
        """Boolean (n,) mask of the vehicle boxes."""
        return np.array([c in VEHICLES for c in self.labels], bool)


def load_spec(path: Path = LABELS) -> dict:
    """The parsed labels.json."""
    return json.loads(Path(path).read_text())


def _boxes(rows) -> np.ndarray:
    return np.array(rows, float).reshape(-1, 4)


def _clip_frames(clip: Path, indices: set[int]) -> dict[int, np.ndarray]:
    """Frames `indices` of `clip`, decoded sequentially from frame 0 (no seeking, exact)."""
    cap = cv2.VideoCapture(str(clip))
    if not cap.isOpened():
        raise FileNotFoundError(clip)
    out: dict[int, np.ndarray] = {}
    try:
        index = 0
        while len(out) < len(indices):
            ok, img = cap.read()
            if not ok:
                raise RuntimeError(f"{clip}: ended before frames {sorted(indices - out.keys())}")
            if index in indices:
                out[index] = img
            index += 1
    finally:
        cap.release()
    return out


def load_eval_set(split: str | None = None, sources: set[str] | None = None,
                  labels_path: Path = LABELS) -> Iterator[EvalItem]:
    """Yield the items of one split ("tune", "holdout") or of both (None), in labels.json order."""
    if split not in (None, *SPLITS):
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    spec = load_spec(labels_path)
    root = ROOT  # image paths in labels.json are relative to the repository root
    items = [it for it in spec["items"]
             if (split is None or it["split"] == split) and (sources is None or it["source"] in sources)]
    wanted: dict[str, set[int]] = {}
    for it in items:
        if isinstance(it["image"], dict):
            wanted.setdefault(it["image"]["clip"], set()).add(it["image"]["index"])
    frames = {clip: _clip_frames(root / clip, idx) for clip, idx in wanted.items()}
    for it in items:
        ref = it["image"]
        if isinstance(ref, dict):
            img = frames[ref["clip"]][ref["index"]]
        else:
            img = cv2.imread(str(root / ref), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(root / ref)
        objs = it["objects"]
        yield EvalItem(
            id=it["id"], source=it["source"], split=it["split"], image=img,
            boxes=_boxes([o["box"] for o in objs]), labels=[o["class"] for o in objs],
            ignore=_boxes(it.get("ignore", [])), alt_labels=[o.get("alt") for o in objs],
            status=it.get("status", ""))


def summary(spec: dict) -> list[tuple[str, str, int, int, int, int]]:
    """(source, split, items, persons, vehicles, ignore regions) rows, plus per-split and overall totals."""
    rows: dict[tuple[str, str], Counter] = {}
    for it in spec["items"]:
        for key in ((it["source"], it["split"]), (it["source"], "all"), ("ALL", it["split"]), ("ALL", "all")):
            c = rows.setdefault(key, Counter())
            c["items"] += 1
            c["persons"] += sum(o["class"] == "person" for o in it["objects"])
            c["vehicles"] += sum(o["class"] in VEHICLES for o in it["objects"])
            c["ignore"] += len(it.get("ignore", []))
    return [(s, sp, c["items"], c["persons"], c["vehicles"], c["ignore"]) for (s, sp), c in rows.items()]


def class_counts(spec: dict) -> dict[str, Counter]:
    """Boxes per class for each split."""
    out: dict[str, Counter] = {s: Counter() for s in SPLITS}
    for it in spec["items"]:
        out[it["split"]].update(o["class"] for o in it["objects"])
    return out


_COLOURS = {"person": (0, 200, 0), "bicycle": (255, 255, 0), "car": (255, 0, 0),
            "motorcycle": (0, 0, 255), "bus": (0, 255, 255), "truck": (255, 0, 255)}


def render(item: EvalItem) -> np.ndarray:
    """The item's image with its boxes (coloured by class) and ignore regions (thin orange)."""
    img = item.image.copy()
    for (x1, y1, x2, y2), c in zip(item.boxes.astype(int), item.labels):
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), _COLOURS[c], 2)
        cv2.putText(img, c, (x1 + 2, y1 + 14), cv2.FONT_HERSHEY_PLAIN, 1, _COLOURS[c], 1, cv2.LINE_AA)
    for x1, y1, x2, y2 in item.ignore.astype(int):
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), (0, 140, 255), 1)
    return img


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--render", type=Path, metavar="DIR", help="write ID.png with the boxes drawn")
    a = ap.parse_args(argv)
    spec = load_spec(a.labels)
    if a.render:
        a.render.mkdir(parents=True, exist_ok=True)
        for item in load_eval_set(labels_path=a.labels):
            cv2.imwrite(str(a.render / f"{item.id}.png"), render(item))

    order = {s: k for k, s in enumerate(dict.fromkeys(it["source"] for it in spec["items"]))}
    order["ALL"] = len(order)
    rows = sorted(summary(spec), key=lambda r: (order[r[0]], ("tune", "holdout", "all").index(r[1])))
    print(f"{'source':14s} {'split':8s} {'items':>5s} {'persons':>7s} {'vehicles':>8s} {'ignore':>6s}")
    for s, sp, n, p, v, ig in rows:
        print(f"{s:14s} {sp:8s} {n:5d} {p:7d} {v:8d} {ig:6d}")
    print()
    cc = class_counts(spec)
    print(f"{'class':12s} " + " ".join(f"{s:>8s}" for s in SPLITS))
    for c in CLASSES:
        print(f"{c:12s} " + " ".join(f"{cc[s][c]:8d}" for s in SPLITS))


if __name__ == "__main__":
    main()
