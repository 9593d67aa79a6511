"""Tracker accuracy against ground truth: HOTA, IDF1, MOTA, ID switches (TrackEval, IoU 0.5).

    PYTHONPATH=. /work/benchvenv/bin/python bench/track_eval.py            # golden check + noise levels
    PYTHONPATH=. /work/benchvenv/bin/python bench/track_eval.py golden     # evaluator self-test only
    PYTHONPATH=. /work/benchvenv/bin/python bench/track_eval.py noise --seeds 20
    PYTHONPATH=. /work/benchvenv/bin/python bench/track_eval.py dets FILE [--fps 10] [--min-score 0.6]

Ground truth is the motmetrics wheel's MOT15 TUD-Campus and TUD-Stadtmitte (real
pedestrian sequences, 640x480 at 25 fps). `golden` first proves the evaluator is wired
right: the wheel's own test.txt must score the published values. `noise` degrades the
ground truth with the seeded detector-noise model below and runs every tracker on the
same detections. `dets` runs the trackers on a detections file without ground truth
(MOT det.txt, or Vigil JSON Lines) and reports ID counts and fragmentation.

Detector-noise model (seeded; one draw per sequence and seed):
- difficulty d in [0, 1] per GT box: the larger of its occlusion (fraction of its
  area covered by a GT box whose bottom edge is lower, i.e. nearer the camera) and
  its smallness ((120 - height) / 80 px, clipped);
- misses: half of the dropout rate comes from bursts (per object, a burst starts with
  probability rate/2/mean_burst and lasts Geometric(mean_burst = 5) frames), half is
  i.i.d. with probability proportional to 0.5 + d (hard boxes are missed more);
- jitter: centre and size noise with sigma = jitter x box width/height;
- scores: Beta with concentration 10 and mean 0.85 - 0.55 d, so occluded and small
  boxes get low scores, as a real detector gives them;
- false positives: Poisson(fp_rate) boxes per frame at random places with GT-like
  sizes, score mean 0.25; plus `clutter` fixed places (a poster, a reflection) that
  fire in 25 % of frames with score mean 0.45.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trackers_common import Adapter, all_adapters, print_table

try:
    from tqdm import tqdm
except ImportError:  # progress bar is optional
    def tqdm(it, **_):
        return it

log = logging.getLogger("bench.track_eval")

SEQUENCES = {"TUD-Campus": 71, "TUD-Stadtmitte": 179}  # frames
SEQ_FPS = 25.0
SEQ_SIZE = (640, 480)
# The motmetrics README's values for its bundled test.txt (IDF1, MOTA, in %).
GOLDEN = {"TUD-Campus": (55.8, 52.6), "TUD-Stadtmitte": (64.5, 56.4)}


@dataclass(frozen=True)
class NoiseLevel:
    name: str
    dropout: float  # target fraction of GT boxes missed
    jitter: float  # sigma of centre/size noise as a fraction of box size
    fp_rate: float  # random false positives per frame (Poisson mean)
    clutter: int  # fixed false-positive places
    mean_burst: float = 5.0  # frames


LEVELS = {
    "10%": NoiseLevel("10%", dropout=0.10, jitter=0.04, fp_rate=0.3, clutter=1),
    "30%": NoiseLevel("30%", dropout=0.30, jitter=0.06, fp_rate=1.0, clutter=2),
}


# ---- MOT text files --------------------------------------------------------------------


def motmetrics_data() -> Path:
    """Folder of the data files the motmetrics wheel ships."""
    import importlib.util

    spec = importlib.util.find_spec("motmetrics")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("motmetrics is not installed: pip install -r bench/requirements.txt")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_mot(path: Path) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Frame -> (ids, xyxy boxes, confidences) from a MOT-format text file."""
    data = np.loadtxt(path, delimiter=",", ndmin=2)
    frames: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for f in np.unique(data[:, 0]).astype(int):
        rows = data[data[:, 0] == f]
        boxes = rows[:, 2:6].copy()
        boxes[:, 2:] += boxes[:, :2]
        frames[int(f)] = (rows[:, 1].astype(int), boxes, rows[:, 6])
    return frames


def write_mot(path: Path, frames: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
    """Write (frame, ids, xyxy boxes) rows as MOT text (frame, id, x, y, w, h, 1, -1, -1, -1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for frame, ids, boxes in frames:
            for tid, (x1, y1, x2, y2) in zip(ids.tolist(), np.asarray(boxes, float).tolist()):
                f.write(f"{frame},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,-1,-1,-1\n")


# ---- TrackEval ----------------------------------------------------------------------------


def trackeval_scores(gt_root: Path, trk_root: Path, seq_info: dict[str, int], names: list[str]) -> dict:
    """Run TrackEval (MOT15 mode, IoU 0.5) and return {tracker: {seq or 'COMBINED_SEQ': metrics}}."""
    import trackeval

    eval_cfg = trackeval.Evaluator.get_default_eval_config()
    eval_cfg.update(
        USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False, TIME_PROGRESS=False,
        OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False, PLOT_CURVES=False, LOG_ON_ERROR=None,
    )
    ds_cfg = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    ds_cfg.update(
        GT_FOLDER=str(gt_root), TRACKERS_FOLDER=str(trk_root), BENCHMARK="MOT15", SPLIT_TO_EVAL="train",
        SEQ_INFO=seq_info, TRACKERS_TO_EVAL=names, PRINT_CONFIG=False,
    )
    evaluator = trackeval.Evaluator(eval_cfg)
    dataset = trackeval.datasets.MotChallenge2DBox(ds_cfg)
    quiet = {"PRINT_CONFIG": False}
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(quiet), trackeval.metrics.Identity(quiet)]
    with open(os.devnull, "w") as null, _redirect_stdout(null), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res, _ = evaluator.evaluate([dataset], metrics)
    out = {}
    for name in names:
        per_seq = res["MotChallenge2DBox"][name]
        out[name] = {seq: _summarise(v["pedestrian"]) for seq, v in per_seq.items()}
    return out


class _redirect_stdout:
    """TrackEval prints progress to stdout; the tables are this script's output."""

    def __init__(self, target) -> None:
        self.target = target

    def __enter__(self):
        self.saved = sys.stdout
        sys.stdout = self.target

    def __exit__(self, *exc):
        sys.stdout = self.saved


def _summarise(m: dict) -> dict:
    return {
        "HOTA": 100 * float(np.mean(m["HOTA"]["HOTA"])),
        "DetA": 100 * float(np.mean(m["HOTA"]["DetA"])),
        "AssA": 100 * float(np.mean(m["HOTA"]["AssA"])),
        "IDF1": 100 * float(m["Identity"]["IDF1"]),
        "MOTA": 100 * float(m["CLEAR"]["MOTA"]),
        "IDSW": int(m["CLEAR"]["IDSW"]),
        "Frag": int(m["CLEAR"]["Frag"]),
        "FP": int(m["CLEAR"]["CLR_FP"]),
        "FN": int(m["CLEAR"]["CLR_FN"]),
    }


def _layout_gt(gt_root: Path, seq: str, src: Path) -> None:
    dst = gt_root / "MOT15-train" / seq / "gt" / "gt.txt"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(src.read_text())


# ---- golden self-test --------------------------------------------------------------------


def golden() -> bool:
    """Score motmetrics' bundled test.txt; True if TrackEval (and motmetrics) give the published values."""
    data = motmetrics_data()
    with tempfile.TemporaryDirectory() as tmp:
        gt_root, trk_root = Path(tmp, "gt"), Path(tmp, "trk")
        for seq in SEQUENCES:
            _layout_gt(gt_root, seq, data / seq / "gt.txt")
            dst = trk_root / "MOT15-train" / "motmetrics-test" / "data" / f"{seq}.txt"
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text((data / seq / "test.txt").read_text())
        res = trackeval_scores(gt_root, trk_root, dict(SEQUENCES), ["motmetrics-test"])["motmetrics-test"]
    mm = _motmetrics_scores(data)
    print("Evaluator self-test: motmetrics' bundled test.txt against gt.txt (IoU 0.5)")
    rows, ok = [], True
    for seq, (idf1, mota) in GOLDEN.items():
        r = res[seq]
        good = round(r["IDF1"], 1) == idf1 and round(r["MOTA"], 1) == mota
        ok &= good
        mm_idf1, mm_mota = mm.get(seq, (float("nan"), float("nan")))
        rows.append([
            seq, f"{idf1:.1f} / {mota:.1f}", f"{r['IDF1']:.1f} / {r['MOTA']:.1f}",
            f"{mm_idf1:.1f} / {mm_mota:.1f}", f"{r['HOTA']:.2f}", str(r["IDSW"]), "ok" if good else "MISMATCH",
        ])
    print_table(["sequence", "published IDF1 / MOTA", "TrackEval", "motmetrics", "HOTA", "IDSW", "check"], rows)
    return ok


def _motmetrics_scores(data: Path) -> dict[str, tuple[float, float]]:
    """IDF1 and MOTA from motmetrics itself, as a cross-check (needs its numpy 2 shim)."""
    try:
        if not hasattr(np, "asfarray"):  # motmetrics 1.4.0 calls np.asfarray, removed in numpy 2
            np.asfarray = lambda a, dtype=float: np.asarray(a, dtype=dtype)  # type: ignore[attr-defined]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import motmetrics as mm

            out = {}
            for seq in SEQUENCES:
                gt = mm.io.loadtxt(data / seq / "gt.txt", fmt="mot15-2D", min_confidence=1)
                ts = mm.io.loadtxt(data / seq / "test.txt", fmt="mot15-2D")
                acc = mm.utils.compare_to_groundtruth(gt, ts, "iou", distth=0.5)
                s = mm.metrics.create().compute(acc, metrics=["idf1", "mota"], name=seq)
                out[seq] = (100 * float(s["idf1"].iloc[0]), 100 * float(s["mota"].iloc[0]))
            return out
    except Exception as e:  # the cross-check is optional; TrackEval is the evaluator
        log.warning("motmetrics cross-check unavailable: %s", e)
        return {}


# ---- detector-noise model ----------------------------------------------------------------


def difficulty(boxes: np.ndarray) -> np.ndarray:
    """Per-box difficulty in [0, 1]: occlusion by nearer boxes, or small size."""
    n = len(boxes)
    occl = np.zeros(n)
    if n > 1:
        x1, y1, x2, y2 = boxes.T
        iw = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]), 0, None)
        ih = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]), 0, None)
        cover = iw * ih / ((x2 - x1) * (y2 - y1))[:, None]  # fraction of row box covered by column box
        nearer = y2[None, :] > y2[:, None]  # the column box's feet are lower: it is in front
        occl = np.where(nearer, cover, 0).max(axis=1)
    small = np.clip((120 - (boxes[:, 3] - boxes[:, 1])) / 80, 0, 1)
    return np.clip(np.maximum(occl, small), 0, 1)


def degrade(gt: dict[int, tuple], n_frames: int, level: NoiseLevel, seed: int) -> tuple[list, dict]:
    """Detections per frame (xyxy, scores, classes) from GT under the noise model; plus realised stats."""
    rng = np.random.default_rng(seed)
    width, height = SEQ_SIZE
    all_boxes = np.concatenate([b for _, b, _ in gt.values()])
    sizes = all_boxes[:, 2:] - all_boxes[:, :2]
    diff = {f: difficulty(b) for f, (_, b, _) in gt.items()}
    weight_mean = float(np.mean(np.concatenate([0.5 + d for d in diff.values()])))
    p_iid = level.dropout / 2
    p_burst_start = level.dropout / 2 / level.mean_burst
    burst_left: dict[int, int] = {}
    clutter = []
    for _ in range(level.clutter):
        w, h = sizes[rng.integers(len(sizes))]
        clutter.append(np.array([rng.uniform(0, width - w), rng.uniform(0, height - h), w, h]))
    frames, n_gt, n_hit, n_fp = [], 0, 0, 0
    for f in range(1, n_frames + 1):
        ids, boxes, _ = gt.get(f, (np.zeros(0, int), np.zeros((0, 4)), np.zeros(0)))
        d = diff.get(f, np.zeros(0))
        keep = np.ones(len(ids), bool)
        for k, tid in enumerate(ids.tolist()):
            left = burst_left.get(tid, 0)
            if left == 0 and rng.random() < p_burst_start:
                left = int(rng.geometric(1 / level.mean_burst))
            if left > 0:
                keep[k] = False
                burst_left[tid] = left - 1
        keep &= rng.random(len(ids)) >= p_iid * (0.5 + d) / weight_mean
        b, dk = boxes[keep], d[keep]
        wh = b[:, 2:] - b[:, :2]
        centre = (b[:, :2] + b[:, 2:]) / 2 + rng.normal(0, level.jitter, wh.shape) * wh
        wh = wh * np.exp(rng.normal(0, level.jitter, wh.shape))
        det = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
        scores = _beta(rng, 0.85 - 0.55 * dk)
        # false positives: random places, GT-like sizes, low scores
        k_fp = rng.poisson(level.fp_rate)
        fp_wh = sizes[rng.integers(len(sizes), size=k_fp)]
        fp_xy = rng.uniform(0, 1, (k_fp, 2)) * (np.array([width, height]) - fp_wh)
        fp = np.concatenate([fp_xy, fp_xy + fp_wh], axis=1)
        fp_scores = _beta(rng, np.full(k_fp, 0.25))
        for site in clutter:
            if rng.random() < 0.25:
                x, y, w, h = site + rng.normal(0, 0.02, 4) * np.array([site[2], site[3], site[2], site[3]])
                fp = np.concatenate([fp, [[x, y, x + w, y + h]]])
                fp_scores = np.concatenate([fp_scores, _beta(rng, np.array([0.45]))])
        boxes_f = np.concatenate([det, fp]).astype(np.float32)
        scores_f = np.concatenate([scores, fp_scores]).astype(np.float32)
        order = rng.permutation(len(boxes_f))  # a decoder gives no useful order
        frames.append((boxes_f[order], scores_f[order], np.zeros(len(boxes_f), np.int32)))
        n_gt += len(ids)
        n_hit += int(keep.sum())
        n_fp += len(fp)
    return frames, {"recall": n_hit / max(n_gt, 1), "fp_per_frame": n_fp / n_frames}


def _beta(rng: np.random.Generator, mean: np.ndarray, concentration: float = 10.0) -> np.ndarray:
    mean = np.clip(mean, 0.02, 0.98)
    return rng.beta(concentration * mean, concentration * (1 - mean))


# ---- running trackers --------------------------------------------------------------------


def run_tracker(adapter: Adapter, frames: list, fps: float) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Run one tracker over per-frame (xyxy, scores, classes); return (frame, ids, boxes) rows, 1-based."""
    tracker = adapter.make(fps)
    out = []
    for k, (b, s, c) in enumerate(frames):
        boxes, ids = adapter.step(tracker, adapter.prepare(b, s, c), k / fps)
        out.append((k + 1, np.asarray(ids, np.int64), np.asarray(boxes, float)))
    return out


def noise(seeds: int, levels: list[str], adapters: list[Adapter]) -> dict:
    """Every tracker on GT-degraded detections, per noise level, combined over sequences and seeds."""
    data = motmetrics_data()
    gts = {seq: load_mot(data / seq / "gt.txt") for seq in SEQUENCES}
    results = {}
    for lvl in levels:
        level = LEVELS[lvl]
        realised = []
        with tempfile.TemporaryDirectory() as tmp:
            gt_root, trk_root = Path(tmp, "gt"), Path(tmp, "trk")
            seq_info = {}
            jobs = [(seq, seed) for seed in range(seeds) for seq in SEQUENCES]
            for seq, seed in tqdm(jobs, desc=f"noise {lvl}", unit="seq", file=sys.stderr):
                name = f"{seq}-s{seed}"
                seq_info[name] = SEQUENCES[seq]
                _layout_gt(gt_root, name, data / seq / "gt.txt")
                frames, stats = degrade(gts[seq], SEQUENCES[seq], level, seed=1000 * seed + len(seq))
                realised.append(stats)
                for a in adapters:
                    rows = run_tracker(a, frames, SEQ_FPS)
                    write_mot(trk_root / "MOT15-train" / _slug(a.name) / "data" / f"{name}.txt", rows)
            names = [_slug(a.name) for a in adapters]
            scores = trackeval_scores(gt_root, trk_root, seq_info, names)
        results[lvl] = {
            "realised": {
                "recall": float(np.mean([r["recall"] for r in realised])),
                "fp_per_frame": float(np.mean([r["fp_per_frame"] for r in realised])),
            },
            "trackers": {a.name: scores[_slug(a.name)]["COMBINED_SEQ"] for a in adapters},
        }
    return results


def _slug(name: str) -> str:
    return name.replace(" ", "_").replace(".", "_")


def print_noise_table(results: dict, seeds: int) -> None:
    print(
        f"Accuracy on TUD-Campus + TUD-Stadtmitte GT degraded by the detector-noise model "
        f"({seeds} seeds each, combined; TrackEval, IoU 0.5; library defaults)"
    )
    header = ["noise", "tracker", "HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW", "Frag", "FP", "FN"]
    rows = []
    for lvl, res in results.items():
        real = res["realised"]
        label = f"{lvl} (recall {100 * real['recall']:.0f}%, {real['fp_per_frame']:.1f} FP/frame)"
        for name, m in res["trackers"].items():
            rows.append([
                label, name, f"{m['HOTA']:.2f}", f"{m['DetA']:.2f}", f"{m['AssA']:.2f}", f"{m['IDF1']:.2f}",
                f"{m['MOTA']:.2f}", str(m["IDSW"]), str(m["Frag"]), str(m["FP"]), str(m["FN"]),
            ])
    print_table(header, rows)


# ---- detections without ground truth ----------------------------------------------------


def load_detections(path: Path, fps: float | None) -> tuple[list, float]:
    """Per-frame (xyxy, scores, classes) from a MOT det.txt or Vigil JSON Lines file; and the fps."""
    if path.suffix in (".jsonl", ".json"):
        frames, stamps = [], []
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                rec = json.loads(line)
                objs = rec.get("objects", [])
                boxes = np.array([o["box"] for o in objs], np.float32).reshape(-1, 4)
                scores = np.array([o.get("score", 1.0) for o in objs], np.float32)
                classes = np.array([o.get("class_id", 0) for o in objs], np.int32)
                frames.append((boxes, scores, classes))
                stamps.append(float(rec.get("timestamp", len(stamps) / (fps or 10.0))))
        if fps is None and len(stamps) > 1:
            fps = 1.0 / float(np.median(np.diff(stamps)))
        return frames, fps or 10.0
    data = np.loadtxt(path, delimiter=",", ndmin=2)
    n = int(data[:, 0].max())
    frames = []
    for f in range(1, n + 1):
        rows = data[data[:, 0] == f]
        boxes = rows[:, 2:6].copy()
        boxes[:, 2:] += boxes[:, :2]
        cls = rows[:, 7].astype(np.int32) if rows.shape[1] > 7 else np.zeros(len(rows), np.int32)
        frames.append((boxes.astype(np.float32), rows[:, 6].astype(np.float32), np.maximum(cls, 0)))
    return frames, fps or 30.0


def dets_report(path: Path, fps: float | None, adapters: list[Adapter], min_score: float = 0.0) -> None:
    """ID count and fragmentation of every tracker on a detections file (no ground truth)."""
    frames, fps = load_detections(path, fps)
    frames = [(b[s >= min_score], s[s >= min_score], c[s >= min_score]) for b, s, c in frames]
    n_det = sum(len(b) for b, _, _ in frames)
    print(
        f"{path}: {len(frames)} frames at {fps:.1f} fps, {n_det} detections with score >= {min_score:g} "
        "(no ground truth)"
    )
    header = ["tracker", "IDs", "tracked boxes", "mean track length (frames)", "tracks < 1 s", "gaps", "median gap (frames)"]
    rows = []
    for a in adapters:
        out = run_tracker(a, frames, fps)
        seen: dict[int, list[int]] = {}
        for frame, ids, _ in out:
            for tid in ids.tolist():
                seen.setdefault(tid, []).append(frame)
        lengths = [len(v) for v in seen.values()]
        gaps = [g for v in seen.values() for g in np.diff(v).tolist() if g > 1]
        rows.append([
            a.name, str(len(seen)), str(sum(lengths)), f"{np.mean(lengths) if lengths else 0:.1f}",
            str(sum(1 for v in seen.values() if v[-1] - v[0] + 1 < fps)), str(len(gaps)),
            f"{np.median(gaps) - 1 if gaps else 0:.0f}",
        ])
    print_table(header, rows)


# ---- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", choices=["all", "golden", "noise", "dets"], default="all")
    ap.add_argument("file", nargs="?", type=Path, help="detections file for `dets`")
    ap.add_argument("--seeds", type=int, default=20, help="noise draws per sequence and level")
    ap.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    ap.add_argument("--fps", type=float, help="frame rate of the detections file (default: from timestamps)")
    ap.add_argument("--min-score", type=float, default=0.0, help="for `dets`: drop detections below this score first")
    ap.add_argument("--only", nargs="*", help="substrings of tracker names to run")
    ap.add_argument("--json", type=Path, help="also write the noise results as JSON")
    args = ap.parse_args(argv)

    adapters = all_adapters()
    if args.only:
        adapters = [a for a in adapters if any(s.lower() in a.name.lower() for s in args.only)]
    if args.mode == "dets":
        if not args.file:
            ap.error("dets needs a detections file")
        dets_report(args.file, args.fps, adapters, args.min_score)
        return 0
    if args.mode in ("all", "golden"):
        if not golden():
            print("evaluator self-test FAILED: scores below are not trustworthy")
            return 1
        print()
    if args.mode in ("all", "noise"):
        results = noise(args.seeds, args.levels, adapters)
        print_noise_table(results, args.seeds)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
