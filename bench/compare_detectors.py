"""Is detector B better than detector A on the labelled set? A paired comparison.

Both configurations run over the same items of tests/data/eval; the items (pictures and clip frames)
are then resampled with replacement, the same resamples for both, and the differences A - B of
recall and precision at each one's operating point and of AP50 are read off per class group, with
95 % intervals. A difference whose interval holds 0 is not shown by this set. Choose B's thresholds
on the tuning half first (tools/eval_detector.py --split tune --sweep with the same --set).

    python bench/compare_detectors.py --b-set model.path=other.tflite [--b-set KEY=VALUE ...]
        [--a-config config/default.yaml] [--a-set KEY=VALUE ...] [--b-config PATH]
        [--split tune|holdout|all] [--resamples 2000]

A and B default to config/default.yaml; --a-set/--b-set override keys as vigil's --set does, e.g.
for Axis's model-zoo YOLOv5: --b-set model.color=rgb --b-set model.input_range=[0,1]
--b-set decoder.type=yolov5.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from app.config import load_config  # noqa: E402
from eval_detector import GROUPS, METRICS, by_group, evaluate_items, interval, overrides, resampled  # noqa: E402
from eval_set import load_eval_set  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a-config", type=Path, default=ROOT / "config" / "default.yaml")
    ap.add_argument("--b-config", type=Path, default=ROOT / "config" / "default.yaml")
    ap.add_argument("--a-set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--b-set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--split", choices=["tune", "holdout", "all"], default="all",
                    help="all: each half, then the whole set")
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args()
    configs = {"A": load_config(args.a_config, overrides(args.a_set), env={}),
               "B": load_config(args.b_config, overrides(args.b_set), env={})}
    items = {s: list(load_eval_set(s)) for s in ("tune", "holdout")}
    splits = {"tune": items["tune"], "holdout": items["holdout"], "whole": items["tune"] + items["holdout"]}
    if args.split != "all":
        splits = {args.split: splits[args.split]}
    # each model runs once over every item; the halves and the whole set are cut from that
    per_item = {name: evaluate_items(cfg, splits.get("whole", next(iter(splits.values()))))
                for name, cfg in configs.items()}
    print(f"{'split':<9}{'group':<9}{'':<12}{'truth':>6}{'TP':>5}{'FP':>5}{'recall':>17}{'precision':>17}"
          f"{'AP50':>17}")
    for split, its in splits.items():
        ids = {it.id for it in its}
        runs = {name: {k: p for k, p in pools.items() if k[1] in ids} for name, pools in per_item.items()}
        for g in GROUPS:
            values = {name: resampled(pools, g, args.resamples) for name, pools in runs.items()}
            for name, pools in runs.items():
                r = by_group(pools)[g].result()
                if not r["truth"]:
                    break
                cells = "".join(f"{r[m]:>7.3f} {'%.2f-%.2f' % interval(values[name][m]):>9}" for m in METRICS)
                print(f"{split:<9}{g:<9}{name:<12}{r['truth']:>6}{r['tp']:>5}{r['fp']:>5}{cells}")
            else:
                ra, rb = (by_group(runs[n])[g].result() for n in "AB")
                cells = "".join(f"{ra[m] - rb[m]:>+7.3f} {'%+.2f..%+.2f' % interval(values['A'][m] - values['B'][m]):>9}"
                                for m in METRICS)
                print(f"{split:<9}{g:<9}{'A - B':<12}{'':>16}{cells}")
    print(f"(values with 95 % intervals from {args.resamples} paired resamples of the items)")


if __name__ == "__main__":
    main()
