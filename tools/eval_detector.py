"""Detector accuracy on the labelled evaluation set (tests/data/eval): recall and precision at IoU 0.5
at each configuration's operating point, and AP50, per class group, per source and split — one table.

    python tools/eval_detector.py [--split tune|holdout|all] [--only NAME ...] [--float-model PATH] [--ci N]

Rows: BlazePose per-tensor with config/blazepose.yaml at threshold 0.6 (the default before NanoDet), and NanoDet float,
per-channel and per-tensor, each with config/default.yaml. The float model is not bundled (it is
21 MB): tools/make_nanodet.py leaves it in ~/.cache/vigil/nanodet_float.tflite.

Matching is per class group (person; vehicle = the members of model.groups.vehicle): a vehicle box of
any vehicle class matches a labelled vehicle of any vehicle class. Boxes of other classes are not
scored (nothing else is labelled). Unmatched boxes mostly inside an ignore region do not count.

--ci N adds 95 % intervals from N resamples of the items (the picture or clip frame is the unit, since
people in one picture are not independent): with 24-27 items per half, one person is about 1.2 points
of recall and the intervals are wide; read differences between rows against them.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from app.config import Config, load_config  # noqa: E402
from app.decoders import ScoreFilter  # noqa: E402
from app.accuracy import FP, TP, average_precision, match_flags  # noqa: E402
from app.detector import Detector  # noqa: E402
from app.types import Frame  # noqa: E402
from eval_set import load_eval_set  # noqa: E402

GROUPS = ("person", "vehicle")
FLOAT_MODEL = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vigil" / "nanodet_float.tflite"
# the lowest score kept for the precision-recall curve (AP50); operating points are applied afterwards
AP_FLOOR = 0.05


def configurations(float_model: Path) -> dict[str, tuple[Path, dict]]:
    """name -> (config file, overrides) of every row."""
    return {
        # its decoder threshold (0.3) only feeds the tracker's low boxes; 0.6 was its operating point
        "blazepose-pertensor": (ROOT / "config" / "blazepose.yaml", {"decoder.class_thresholds": {"person": 0.6}}),
        "nanodet-float": (ROOT / "config" / "default.yaml",
                          {"model.path": str(float_model), "model.input_range": [0, 255]}),
        "nanodet-perchannel": (ROOT / "config" / "default.yaml",
                               {"model.path": str(ROOT / "models" / "nanodet_int8_perchannel.tflite")}),
        "nanodet-pertensor": (ROOT / "config" / "default.yaml", {}),
    }


def group_of_label(cfg: Config) -> dict[str, str]:
    """Label -> class group for the scored groups."""
    out = {"person": "person"}
    for member in cfg.model.groups.get("vehicle", []):
        out[member] = "vehicle"
    return out


@dataclass
class Pool:
    """Pooled predictions of one (source, group): scores, match flags and the number of true boxes."""

    scores: list[np.ndarray] = field(default_factory=list)
    flags: list[np.ndarray] = field(default_factory=list)
    operating: list[np.ndarray] = field(default_factory=list)  # kept at the operating point
    truth: int = 0

    def add(self, other: "Pool") -> None:
        self.scores += other.scores
        self.flags += other.flags
        self.operating += other.operating
        self.truth += other.truth

    def result(self) -> dict[str, float]:
        s = np.concatenate(self.scores) if self.scores else np.zeros(0)
        f = np.concatenate(self.flags) if self.flags else np.zeros(0, np.int8)
        op = np.concatenate(self.operating) if self.operating else np.zeros(0, bool)
        tp, fp = int(((f == TP) & op).sum()), int(((f == FP) & op).sum())
        return {
            "truth": self.truth, "tp": tp, "fp": fp,
            "recall": tp / self.truth if self.truth else float("nan"),
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "ap50": average_precision(s, f, self.truth),
        }


def evaluate(cfg: Config, items) -> dict[tuple[str, str], Pool]:
    """(source, group) -> Pool for one configuration over the items."""
    return by_source(evaluate_items(cfg, items))


def by_source(per_item: dict[tuple[str, str, str], Pool]) -> dict[tuple[str, str], Pool]:
    """Per-item pools summed per (source, group)."""
    pools: dict[tuple[str, str], Pool] = {}
    for (source, _, g), p in per_item.items():
        pools.setdefault((source, g), Pool()).add(p)
    return pools


def evaluate_items(cfg: Config, items) -> dict[tuple[str, str, str], Pool]:
    """(source, item id, group) -> Pool for one configuration: every item on its own, for resampling."""
    run_cfg = cfg.model_copy(deep=True)
    run_cfg.decoder.score_threshold = AP_FLOOR
    run_cfg.decoder.class_thresholds = {}
    run_cfg.decoder.max_detections = 300
    det = Detector.load(run_cfg)
    # the configured operating point: the configured thresholds over the same (greedy) NMS output
    op_filter = ScoreFilter(cfg.decoder, det.labels, len(det.labels))
    groups = group_of_label(cfg)
    label_group = np.array([groups.get(lab, "") for lab in det.labels] + [""], dtype=object)
    pools: dict[tuple[str, str, str], Pool] = {}
    for item in items:
        d = det(Frame(item.image, 0.0, 0))
        g_pred = label_group[np.clip(d.class_ids, 0, len(det.labels))]
        truth_groups = np.array([groups.get(lab, "") for lab in item.labels], dtype=object)
        for g in GROUPS:
            sel = g_pred == g
            truth = item.boxes[truth_groups == g] if len(item.boxes) else np.zeros((0, 4))
            # labelled boxes of classes outside the groups (e.g. a dog) neither help nor hurt
            others = item.boxes[truth_groups == ""] if len(item.boxes) else np.zeros((0, 4))
            ignore = np.concatenate([item.ignore.reshape(-1, 4), others.reshape(-1, 4)])
            flags = match_flags(d.xyxy[sel], d.scores[sel], truth, ignore)
            p = pools.setdefault((item.source, item.id, g), Pool())
            p.scores.append(d.scores[sel])
            p.flags.append(flags)
            p.operating.append(op_filter.keep(d.scores[sel], d.class_ids[sel]))
            p.truth += len(truth)
    if hasattr(det.model, "close"):
        det.model.close()
    return pools


def by_group(pools: dict[tuple, Pool]) -> dict[str, Pool]:
    """Every source's (or item's) pool summed per class group (the group is the key's last part)."""
    out = {g: Pool() for g in GROUPS}
    for key, p in pools.items():
        out[key[-1]].add(p)
    return out


METRICS = ("recall", "precision", "ap50")


def resampled(per_item: dict[tuple[str, str, str], Pool], group: str, resamples: int = 1000,
              seed: int = 0) -> dict[str, np.ndarray]:
    """Recall, precision and AP50 of one class group on each of `resamples` resamples of the items
    (drawn with replacement, as many as there are): people in one picture are not independent, so the
    picture (or clip frame) is the unit. The same seed and item ids give the same resamples, so two
    configurations' values are paired, resample by resample."""
    ids = sorted({key[1] for key in per_item})
    of_group = {key[1]: p for key, p in per_item.items() if key[2] == group}
    pools = [of_group.get(i, Pool()) for i in ids]
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(resamples, len(ids)))
    values: dict[str, list[float]] = {name: [] for name in METRICS}
    for draw in draws:
        total = Pool()
        for i in draw:
            total.add(pools[i])
        r = total.result()
        for name in METRICS:
            values[name].append(r[name])
    return {name: np.asarray(v, dtype=float) for name, v in values.items()}


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval, leaving out resamples where the value is undefined (no labelled box)."""
    v = values[~np.isnan(values)]
    if not len(v):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    return float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))


def bootstrap(per_item: dict[tuple[str, str, str], Pool], group: str, resamples: int = 1000,
              seed: int = 0, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """95 % (level) intervals of recall, precision and AP50 of one class group (see resampled)."""
    return {name: interval(v, level) for name, v in resampled(per_item, group, resamples, seed).items()}


def overrides(pairs: list[str]) -> dict:
    """--set KEY=VALUE strings as config overrides (each value read as YAML: 0.5, [0, 1], rgb)."""
    import yaml

    return {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in pairs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["tune", "holdout", "all"], default="all",
                    help="which half (all: both, each reported on its own)")
    ap.add_argument("--only", nargs="*", help="configuration names to run (default: all)")
    ap.add_argument("--float-model", type=Path, default=FLOAT_MODEL)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override for every configuration, e.g. decoder.class_thresholds.person=0.5")
    ap.add_argument("--ci", type=int, default=0, metavar="N",
                    help="also print 95%% intervals of each split's 'all' rows from N resamples of its items "
                         "(pictures and clip frames, with replacement; the same resamples for every configuration)")
    ap.add_argument("--sweep", metavar="NAME",
                    help="instead of the table: recall, precision and F1 of one configuration at thresholds "
                         "0.20-0.70 per group, on --split (how the default thresholds were chosen, on tune)")
    args = ap.parse_args()
    extra = overrides(args.set)
    splits = ["tune", "holdout"] if args.split == "all" else [args.split]
    items = {s: list(load_eval_set(s)) for s in splits}
    print(f"evaluation set: " + ", ".join(f"{s} {len(v)} items" for s, v in items.items()))
    if args.sweep:
        path, over = configurations(args.float_model)[args.sweep]
        cfg = load_config(path, {**over, **extra}, env={})
        for split in splits:
            pools = evaluate(cfg, items[split])
            print(f"{args.sweep} on {split}: threshold, then recall/precision/F1 per group")
            for t in np.arange(0.20, 0.71, 0.025):
                row = f"  {t:.3f}"
                for g, total in by_group(pools).items():
                    total.operating = [s >= t for s in total.scores]
                    r = total.result()
                    f1 = 2 * r["recall"] * r["precision"] / (r["recall"] + r["precision"]) if r["tp"] else 0.0
                    row += f"   {g} {r['recall']:.3f}/{r['precision']:.3f}/{f1:.3f}"
                print(row)
        return
    print(f"{'configuration':<22}{'split':<9}{'source':<16}{'group':<9}{'truth':>6}{'TP':>5}{'FP':>5}"
          f"{'recall':>8}{'prec.':>7}{'AP50':>7}")
    for name, (path, over) in configurations(args.float_model).items():
        if args.only and name not in args.only:
            continue
        if name == "nanodet-float" and not args.float_model.exists():
            print(f"{name:<22}(not run: {args.float_model} missing; tools/make_nanodet.py writes it)")
            continue
        cfg = load_config(path, {**over, **extra}, env={})
        for split in splits:
            per_item = evaluate_items(cfg, items[split])
            pools = by_source(per_item)
            sources = sorted({s for s, _ in pools})
            for g in GROUPS:
                total = Pool()
                for src in sources + ["all"]:
                    p = total if src == "all" else pools.get((src, g), Pool())
                    if src != "all":
                        total.add(p)
                    if p.truth == 0 and not any(len(x) for x in p.scores):
                        continue
                    r = p.result()
                    print(f"{name:<22}{split:<9}{src:<16}{g:<9}{r['truth']:>6}{r['tp']:>5}{r['fp']:>5}"
                          f"{r['recall']:>8.3f}{r['precision']:>7.3f}{r['ap50']:>7.3f}")
                if args.ci and total.truth:
                    ci = bootstrap(per_item, g, args.ci)
                    print(f"{name:<22}{split:<9}{'95% interval':<16}{g:<9}"
                          + "  ".join(f"{k} {lo:.3f}-{hi:.3f}" for k, (lo, hi) in ci.items())
                          + f"  ({args.ci} resamples of {len({k[1] for k in per_item})} items)")


if __name__ == "__main__":
    main()
