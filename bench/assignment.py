"""Vigil's gated assignment against scipy's solver on the problems the trackers really solve.

    PYTHONPATH=. .venv/bin/python bench/assignment.py [--frames 1000] [--sizes 10 50 200]

Runs Vigil SORT and ByteTrack over the synthetic scenes of bench/trackers_common.py (N objects,
linear motion, noise, 10 % dropout, 1920x1080) and records every (cost, gate) they hand to
linear_assignment. Then, on those: whether Vigil's matching (lone pairs taken directly, clusters
of contested pairs solved one by one with its own solver) gives exactly the pairs of the scipy
version it replaced (lone pairs taken, the rest solved whole by scipy.optimize's
linear_sum_assignment), and the time of each per frame (best of 3). Last, the two solvers alone
on random dense matrices, for scale. scipy is a test/bench extra, not a runtime dependency.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from trackers_common import print_table, synthetic_scene, vigil_adapters  # noqa: E402

import app.tracking.bytetrack as bytetrack  # noqa: E402
import app.tracking.matching as matching  # noqa: E402
import app.tracking.sort as sort  # noqa: E402
from tests.scipy_reference import scipy_linear_assignment  # noqa: E402


def record(n: int, frames: int) -> dict[str, list[tuple[np.ndarray, float]]]:
    """The (cost, gate) each Vigil tracker passes to linear_assignment on an N-object scene."""
    out: dict[str, list[tuple[np.ndarray, float]]] = {}
    scene = synthetic_scene(n, frames=frames, seed=0)
    for adapter in vigil_adapters():
        seen: list[tuple[np.ndarray, float]] = []

        def spy(cost, thresh, seen=seen):
            seen.append((np.array(cost, dtype=np.float64), thresh))
            return matching.linear_assignment(cost, thresh)

        sort.linear_assignment = bytetrack.linear_assignment = spy
        try:
            tracker = adapter.make(scene.fps)
            for k, (b, s, c) in enumerate(zip(scene.det_boxes, scene.det_scores, scene.det_classes)):
                adapter.step(tracker, adapter.prepare(b, s, c), k / scene.fps)
        finally:
            sort.linear_assignment = bytetrack.linear_assignment = matching.linear_assignment
        out[adapter.name] = seen
    return out


def total_us(fn, calls) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for args in calls:
            fn(*args)
        best = min(best, (time.perf_counter() - t0) * 1e6)
    return best


def solver_us(fn, mats) -> float:
    return total_us(fn, [(m,) for m in mats]) / len(mats)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    args = ap.parse_args(argv)
    from scipy.optimize import linear_sum_assignment as scipy_lsa

    rows = []
    for n in args.sizes:
        for name, calls in record(n, args.frames).items():
            same = sum(all(np.array_equal(a, b) for a, b in zip(matching.linear_assignment(*x),
                                                                 scipy_linear_assignment(*x))) for x in calls)
            solved = [x for x in calls if ((x[0] <= x[1]).sum(0).max(initial=0) > 1
                                           or (x[0] <= x[1]).sum(1).max(initial=0) > 1)]
            t_scipy = total_us(scipy_linear_assignment, calls) / args.frames
            t_ours = total_us(matching.linear_assignment, calls) / args.frames
            rows.append([name, str(n), str(len(calls)), str(len(solved)), f"{same}/{len(calls)}",
                         f"{t_scipy:.1f}", f"{t_ours:.1f}"])
    print(f"linear_assignment over {args.frames} frames of synthetic scenes: calls, calls with contested pairs,"
          " identical pairs, us per frame")
    print_table(["tracker", "N", "calls", "contested", "same pairs as scipy", "scipy us/frame", "vigil us/frame"],
                rows)
    print()
    rng = np.random.default_rng(0)
    scale = []
    for size in (2, 4, 8, 16, 32, 64):
        mats = [rng.random((size, size)) for _ in range(20)]
        same = sum(all(np.array_equal(a, b) for a, b in zip(matching.linear_sum_assignment(m), scipy_lsa(m)))
                   for m in mats)
        scale.append([f"{size}x{size}", f"{same}/20", f"{solver_us(scipy_lsa, mats):.1f}",
                      f"{solver_us(matching.linear_sum_assignment, mats):.1f}"])
    print("The solvers alone on random dense matrices (uniform costs), us per call")
    print_table(["size", "same as scipy", "scipy", "vigil"], scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
