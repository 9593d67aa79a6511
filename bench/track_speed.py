"""Per-frame update() time of Vigil's trackers and the peers on the same synthetic scenes.

    PYTHONPATH=. /work/benchvenv/bin/python bench/track_speed.py [--frames 1000] [--repeats 3] [--sizes 10 50 200]

Scene: shared/reference/tracking.md 5.3 (linear motion with noise, 10 % dropout), built
once per N and fed to every tracker; only the update call is timed (inputs pre-built,
events drained outside the timed region). Frames 1-10 are warm-up. Repeats run the
trackers interleaved; the table gives the median of the run medians and of the run
p99s, and each tracker's median relative to `trackers` ByteTrack.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time

import numpy as np

from trackers_common import Adapter, all_adapters, print_table, synthetic_scene

try:
    from tqdm import tqdm
except ImportError:  # progress bar is optional
    def tqdm(it, **_):
        return it

WARMUP = 10
REFERENCE = "trackers ByteTrack"


def time_run(adapter: Adapter, inputs: list, fps: float) -> tuple[np.ndarray, np.ndarray, list]:
    """Run one tracker over pre-built inputs; return wall and CPU ms per frame and its outputs."""
    tracker = adapter.make(fps)
    wall = np.empty(len(inputs))
    cpu = np.empty(len(inputs))
    outputs = []
    clock, tclock = time.perf_counter_ns, time.thread_time_ns
    gc.disable()  # a collection landing in one tracker's frame is noise, not its cost
    try:
        for k, item in enumerate(inputs):
            ts = k / fps
            c0, t0 = tclock(), clock()
            out = adapter.step(tracker, item, ts)
            t1, c1 = clock(), tclock()
            wall[k] = (t1 - t0) / 1e6
            cpu[k] = (c1 - c0) / 1e6
            outputs.append(out)
    finally:
        gc.enable()
    return wall[WARMUP:], cpu[WARMUP:], outputs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--only", nargs="*", help="substrings of tracker names to run")
    args = ap.parse_args(argv)

    adapters = all_adapters()
    if args.only:
        adapters = [a for a in adapters if any(s.lower() in a.name.lower() for s in args.only)]
    # name -> N -> list of (median, p99, cpu median)
    results: dict[str, dict[int, list[tuple[float, float, float]]]] = {a.name: {} for a in adapters}
    sanity: dict[str, dict[int, tuple[float, float]]] = {a.name: {} for a in adapters}
    for n in args.sizes:
        scene = synthetic_scene(n, frames=args.frames, seed=0)
        prepared = {
            a.name: [a.prepare(b, s, c) for b, s, c in zip(scene.det_boxes, scene.det_scores, scene.det_classes)]
            for a in adapters
        }
        bar = tqdm(total=args.repeats * len(adapters), desc=f"N={n}", unit="run", file=sys.stderr)
        for rep in range(args.repeats):
            order = adapters if rep % 2 == 0 else adapters[::-1]  # interleave so drift hits everyone
            for a in order:
                wall, cpu, outputs = time_run(a, prepared[a.name], scene.fps)
                if rep == 0:
                    sanity[a.name][n] = sanity_check(scene, outputs)
                results[a.name].setdefault(n, []).append(
                    (float(np.median(wall)), float(np.percentile(wall, 99)), float(np.median(cpu)))
                )
                bar.update(1)
        bar.close()

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"update() time per frame, ms (wall; median of {args.repeats} run medians, median of run p99s); "
        f"{args.frames} frames, warm-up {WARMUP}; ratio = median / {REFERENCE} median"
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()} x{os.cpu_count()}, "
        f"load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    header = ["tracker", "version"]
    for n in args.sizes:
        header += [f"N={n} med", f"N={n} p99", f"N={n} ratio"]
    rows = []
    for a in adapters:
        row = [a.name, a.version]
        for n in args.sizes:
            runs = np.array(results[a.name][n])
            med, p99 = np.median(runs[:, 0]), np.median(runs[:, 1])
            ref = results.get(REFERENCE, {}).get(n)
            ratio = med / np.median(np.array(ref)[:, 0]) if ref else float("nan")
            row += [f"{med:.3f}", f"{p99:.3f}", f"{ratio:.2f}"]
        rows.append(row)
    print_table(header, rows)
    print()
    print("Sanity (so a fast but broken tracker cannot win): recall of GT boxes by tracked boxes at IoU 0.5 / "
          "distinct track IDs per GT object")
    print_table(
        ["tracker", *[f"N={n}" for n in args.sizes]],
        [[a.name, *[f"{100 * sanity[a.name][n][0]:.1f}% / {sanity[a.name][n][1]:.2f}" for n in args.sizes]] for a in adapters],
    )
    if not args.only or any("vigil" in s.lower() for s in args.only):
        print()
        solver_table(args.sizes, args.frames)
    return 0


def solver_table(sizes: list[int], frames: int) -> None:
    """Time Vigil's solver, scipy's and lap's on the assignment sub-problems Vigil ByteTrack actually solves."""
    from scipy.optimize import linear_sum_assignment as scipy_lsa

    import app.tracking.matching as matching
    from trackers_common import vigil_adapters

    try:
        import lap
    except ImportError:
        lap = None
    recorded: list[np.ndarray] = []
    own = matching._lsap

    def spy(cost):
        recorded.append(np.array(cost, dtype=np.float64))
        return own(cost)

    adapter = vigil_adapters()[1]
    rows = []
    matching._lsap = spy
    try:
        for n in sizes:
            recorded.clear()
            scene = synthetic_scene(n, frames=frames, seed=0)
            tracker = adapter.make(scene.fps)
            for k, (b, s, c) in enumerate(zip(scene.det_boxes, scene.det_scores, scene.det_classes)):
                adapter.step(tracker, adapter.prepare(b, s, c), k / scene.fps)
            subs = list(recorded)
            if not subs:
                rows.append([str(n), "0", "-", "-", "-", "-"])
                continue
            t_scipy = _per_call(scipy_lsa, subs)
            t_own = _per_call(matching.linear_sum_assignment, subs)
            t_lap = _per_call(lambda m: lap.lapjv(m, extend_cost=True), subs) if lap else float("nan")
            sizes_ = sorted(m.size for m in subs)
            rows.append([
                str(n), str(len(subs)), f"{sizes_[len(sizes_) // 2]} / {sizes_[-1]}", f"{t_own:.1f}",
                f"{t_scipy:.1f}", f"{t_lap:.1f}",
            ])
    finally:
        matching._lsap = own
    print(
        f"Assignment solver on the sub-problems vigil ByteTrack passes to it over {frames} frames "
        "(clusters of contested pairs of at least 2x2; the rest is matched without a solver), us per call"
    )
    print_table(["N", "solver calls", "cells median / max", "vigil", "scipy LSA", "lap.lapjv"], rows)


def _per_call(fn, mats: list[np.ndarray]) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for m in mats:
            fn(m)
        best = min(best, (time.perf_counter() - t0) / len(mats) * 1e6)
    return best


def sanity_check(scene, outputs) -> tuple[float, float]:
    """(recall of GT boxes at IoU 0.5, distinct predicted IDs per GT object) of one run."""
    from scipy.optimize import linear_sum_assignment

    from app.tracking.matching import iou_matrix

    hits = total = 0
    ids_per_gt: dict[int, set[int]] = {}
    for gt, gt_ids, (boxes, ids) in zip(scene.gt_boxes, scene.gt_ids, outputs):
        total += len(gt)
        if len(boxes) == 0:
            continue
        iou = iou_matrix(gt, np.asarray(boxes, float))
        r, c = linear_sum_assignment(-iou)
        ok = iou[r, c] >= 0.5
        hits += int(ok.sum())
        for g, t in zip(gt_ids[r[ok]].tolist(), np.asarray(ids)[c[ok]].tolist()):
            ids_per_gt.setdefault(g, set()).add(t)
    per_obj = float(np.mean([len(v) for v in ids_per_gt.values()])) if ids_per_gt else float("nan")
    return hits / max(total, 1), per_obj


if __name__ == "__main__":
    sys.exit(main())
