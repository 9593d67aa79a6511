"""Vigil's assignment solver against scipy's on the sub-problems the trackers really solve.

    PYTHONPATH=. .venv/bin/python bench/assignment.py [--frames 1000] [--sizes 10 50 200]

Runs Vigil SORT and ByteTrack over the synthetic scenes of bench/trackers_common.py (N objects,
linear motion, noise, 10 % dropout) and records every matrix linear_assignment hands to the
solver (pairs that are each other's only candidate never reach it). Then, on those matrices:
whether Vigil's solver gives scipy's exact (rows, cols) on every one, the time per call of
each (best of 3), and the solver's share of a frame. Also random square matrices, for scale.
scipy is the test/bench extra, not a runtime dependency: this needs it installed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from trackers_common import print_table, synthetic_scene, vigil_adapters  # noqa: E402

import app.tracking.matching as matching  # noqa: E402


def record(n: int, frames: int) -> dict[str, list[np.ndarray]]:
    """Matrices each Vigil tracker passes to the solver on an N-object scene."""
    solver = matching.linear_sum_assignment
    out: dict[str, list[np.ndarray]] = {}
    scene = synthetic_scene(n, frames=frames, seed=0)
    for adapter in vigil_adapters():
        seen: list[np.ndarray] = []

        def spy(cost, seen=seen):
            seen.append(np.array(cost, dtype=np.float64))
            return solver(cost)

        matching.linear_sum_assignment = spy
        try:
            tracker = adapter.make(scene.fps)
            for k, (b, s, c) in enumerate(zip(scene.det_boxes, scene.det_scores, scene.det_classes)):
                adapter.step(tracker, adapter.prepare(b, s, c), k / scene.fps)
        finally:
            matching.linear_sum_assignment = solver
        out[adapter.name] = seen
    return out


def per_call_us(fn, mats: list[np.ndarray]) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for m in mats:
            fn(m)
        best = min(best, (time.perf_counter() - t0) / len(mats) * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    args = ap.parse_args(argv)
    from scipy.optimize import linear_sum_assignment as scipy_lsa

    ours = matching.linear_sum_assignment
    rows = []
    for n in args.sizes:
        for name, mats in record(n, args.frames).items():
            if not mats:
                rows.append([name, str(n), "0", "-", "-", "-", "-", "-", "-"])
                continue
            same = sum(all(np.array_equal(a, b) for a, b in zip(ours(m), scipy_lsa(m))) for m in mats)
            t_ours, t_scipy = per_call_us(ours, mats), per_call_us(scipy_lsa, mats)
            cells = sorted(m.size for m in mats)
            per_frame = lambda t: t * len(mats) / args.frames  # noqa: E731
            rows.append([name, str(n), str(len(mats)), f"{cells[len(cells) // 2]} / {cells[-1]}",
                         f"{same}/{len(mats)}", f"{t_scipy:.1f}", f"{t_ours:.1f}",
                         f"{per_frame(t_scipy):.1f}", f"{per_frame(t_ours):.1f}"])
    print(f"Sub-problems the trackers hand the solver over {args.frames} frames (synthetic scenes)")
    print_table(["tracker", "N", "solver calls", "cells median / max", "same as scipy", "scipy us/call",
                 "vigil us/call", "scipy us/frame", "vigil us/frame"], rows)
    print()
    rng = np.random.default_rng(0)
    scale = []
    for size in (2, 4, 8, 16, 32, 64):
        mats = [rng.random((size, size)) for _ in range(20)]
        same = sum(all(np.array_equal(a, b) for a, b in zip(ours(m), scipy_lsa(m))) for m in mats)
        scale.append([f"{size}x{size}", f"{same}/20", f"{per_call_us(scipy_lsa, mats):.1f}",
                      f"{per_call_us(ours, mats):.1f}"])
    print("Random dense matrices (uniform costs), us per call")
    print_table(["size", "same as scipy", "scipy", "vigil"], scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
