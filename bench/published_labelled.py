"""What Vigil publishes, scored at the labelled sample-clip frames: `vigil run` on samples/vtest.mp4
(detector, tracker and the publication filters, as a user runs it), its JSON Lines matched to the
labelled persons and vehicles of the chosen half (IoU 0.5, per class group, ignore regions as in
tools/eval_detector.py), for a few values of one config key. Also counts the person tracks that never
moved (a static object taken for a person, e.g. the clip's traffic cone). Choose on --split tune.

    python bench/published_labelled.py [--split tune|holdout] [--key filters.labels.person.min_score]
        [--values 0 0.5 0.55 0.6]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from app.accuracy import Counts, match  # noqa: E402
from app.config import load_config  # noqa: E402
from eval_set import load_eval_set  # noqa: E402

STILL_PX = 10  # a track whose box's left and top edges stay within this many pixels never moved


def published(key: str, value: str, out: Path) -> list[dict]:
    """One vigil run over the clip with key=value; its JSON Lines records."""
    subprocess.run([sys.executable, "-m", "app", "run", "--source", str(ROOT / "samples" / "vtest.mp4"),
                    "--config", str(ROOT / "config" / "default.yaml"), "--set", f"{key}={value}",
                    "--jsonl", str(out)], check=True, cwd=ROOT, capture_output=True)
    return [json.loads(line) for line in out.read_text().splitlines()]


def score(records: list[dict], items: dict, group_of) -> tuple[Counts, int, int]:
    """Counts at the labelled frames, person tracks, and person tracks that never moved."""
    total, boxes = Counts(), {}
    for r in records:
        for o in r["objects"]:
            if o["label"] == "person":
                boxes.setdefault(o["track_id"], []).append(o["box"])
        item = items.get(r["seq"])
        if item is None:
            continue
        objs = r["objects"]
        xyxy = np.array([o["box"] for o in objs], float).reshape(-1, 4)
        scores = np.array([o["score"] for o in objs], float)
        pred = np.array([group_of(o["label"]) for o in objs], dtype=object)
        truth = np.array([group_of(lab) for lab in item.labels], dtype=object)
        for g in ("person", "vehicle"):
            total += match(xyxy[pred == g], scores[pred == g], item.boxes[truth == g], item.ignore)
    still = sum(1 for b in boxes.values() if np.ptp(np.array(b)[:, :2], axis=0).max() < STILL_PX)
    return total, len(boxes), still


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "holdout"], default="tune")
    ap.add_argument("--key", default="filters.labels.person.min_score")
    ap.add_argument("--values", nargs="+", default=["0", "0.5", "0.55", "0.6"])
    args = ap.parse_args()
    cfg = load_config(ROOT / "config" / "default.yaml", env={})
    groups = {"person": "person", **{m: "vehicle" for m in cfg.model.groups["vehicle"]}, "vehicle": "vehicle"}
    items = {int(it.id.split("-")[1]): it for it in load_eval_set(args.split) if it.source == "vtest"}
    print(f"{len(items)} labelled clip frames ({args.split}); IoU 0.5; person tracks that never moved "
          f"(box corner within {STILL_PX} px)")
    print(f"| {args.key} | recall | precision | person tracks | never moved |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for value in args.values:
            c, tracks, still = score(published(args.key, value, Path(tmp) / "out.jsonl"), items,
                                     lambda lab: groups.get(lab, ""))
            print(f"| {value} | {c.recall:.3f} | {c.precision:.3f} | {tracks} | {still} |")


if __name__ == "__main__":
    main()
