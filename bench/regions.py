"""Fixed views against motion- and track-guided regions (issue 12), with the real model and tracker.

Three scenes, each run through the default model (config/default.yaml: NanoDet INT8) and the default
tracker (ByteTrack) frame by frame at 10 fps, once per plan:

- clip: samples/vtest.mp4 (768x576);
- static: one labelled clip frame repeated (the first labelled frame of the split; 0.1 s apart);
- hires (synthetic): each clip frame at native size in the middle of a 1920x1080 mid-grey frame, so
  people are 55-150 px tall in a frame the whole-frame plan sees at 416 px.

Plans: `whole` (fixed, whole frame), `grid` (fixed, tiling enabled: tile_size 832 on hires, 416 on the
clip where 832 is larger than the frame), `regions` (app.regions, the defaults of RegionsPlannerConfig
unless --set). Printed per scene and plan: model runs per frame (mean, p95, and mean between sweeps),
ms per frame (planning + model + tracking), the planner's own ms per frame (motion detection
included), tracked recall and precision at the labelled frames of the chosen split (IoU 0.5, persons
and vehicles each matched on their own, ignore regions as in bench/track_labelled.py; boxes shifted
into the synthetic frame), track ids over the run, and `agree`: the share of the reference plan's
tracked boxes, over every frame, that the plan also output (IoU 0.5; no labels, so it may guide tuning
on all frames; the reference is `grid` on hires, where the whole frame misses most people, `whole`
elsewhere, and must run earlier in --plans). Choose parameters on --split tune.

    python bench/regions.py [--split tune|holdout] [--scenes clip,static,hires] [--plans whole,grid,regions]
                            [--start N] [--frames N] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from app.config import load_config, resolve_labels  # noqa: E402
from app.accuracy import Counts, match  # noqa: E402
from app.detector import Detector  # noqa: E402
from app.regions import build_planner  # noqa: E402
from app.regions.fixed import Config as FixedPlannerConfig  # noqa: E402
from app.regions.guided import Config as RegionsPlannerConfig  # noqa: E402
from app.tracking import build_tracker  # noqa: E402
from app.types import Frame  # noqa: E402
from eval_set import load_eval_set  # noqa: E402

FPS = 10.0
REFERENCE = {"hires": "grid"}  # the plan `agree` compares with (default: whole)
HIRES = (1920, 1080)
GREY = 114
STATIC_FRAMES = 300


def clip_frames(start: int, count: int | None):
    """(index, image) of the sample clip from frame `start`."""
    cap = cv2.VideoCapture(str(ROOT / "samples" / "vtest.mp4"))
    i = 0
    try:
        while count is None or i < start + count:
            ok, img = cap.read()
            if not ok:
                return
            if i >= start:
                yield i, img
            i += 1
    finally:
        cap.release()


def place(img: np.ndarray, size=HIRES) -> tuple[np.ndarray, np.ndarray]:
    """The image in the middle of a grey frame of `size`, and the shift of its boxes."""
    h, w = img.shape[:2]
    x0, y0 = (size[0] - w) // 2, (size[1] - h) // 2
    big = np.full((size[1], size[0], 3), GREY, np.uint8)
    big[y0 : y0 + h, x0 : x0 + w] = img
    return big, np.array([x0, y0, x0, y0], float)


def scene(name: str, items: dict, start: int, count: int | None):
    """(index into the clip's labels or None, image) per frame of a scene."""
    if name == "clip":
        for i, img in clip_frames(start, count):
            yield i, img, np.zeros(4)
    elif name == "static":
        first = min(items)
        img = next(img for i, img in clip_frames(first, 1))
        for _ in range(count or STATIC_FRAMES):
            yield first, img, np.zeros(4)
    elif name == "hires":
        for i, img in clip_frames(start, count):
            big, shift = place(img)
            yield i, big, shift
    else:
        raise SystemExit(f"unknown scene {name!r}")


def planner_config(plan: str, scene_name: str, overrides: dict):
    if plan == "whole":
        return FixedPlannerConfig(enabled=False)
    if plan == "grid":
        return FixedPlannerConfig(enabled=True, tile_size=832 if scene_name == "hires" else 416)
    if plan == "regions":
        data: dict = {}
        for key, value in overrides.items():
            node = data
            *path, last = key.split(".")
            for p in path:
                node = node.setdefault(p, {})
            node[last] = yaml.safe_load(value)
        return RegionsPlannerConfig(**data)
    raise SystemExit(f"unknown plan {plan!r}")


def run(det: Detector, cfg, plan: str, scene_name: str, items: dict, group_of, args) -> dict:
    """One scene through one plan: per-frame runs and times, counts at the labelled frames, ids."""
    pcfg = planner_config(plan, scene_name, args.set)
    planner = build_planner(pcfg, det.converter.size, cfg.preprocess.resize)
    tracker = build_tracker(cfg.tracker, det.merge_ids)
    cfg.preprocess.planner = FixedPlannerConfig(merge_threshold=pcfg.merge_threshold, merge_metric=pcfg.merge_metric)
    runs, sweeps, frame_ms, plan_ms, motion_ms = [], [], [], [], []
    total, ids, reasons, boxes = Counts(), set(), {}, []
    for n, (index, img, shift) in enumerate(scene(scene_name, items, args.start, args.frames)):
        now = n / FPS
        t0 = time.perf_counter()
        tracks = tracker.predicted(now, getattr(pcfg, "stationary_speed", 0.0)) if planner.needs_tracks else None
        p = planner.plan(img, now, tracks)
        t1 = time.perf_counter()
        frame = Frame(img, now, n)
        # this plan's views through the Detector's own path (render, model, decode, map back, merge, carry)
        dets = det.infer(frame, det.prepare(frame, p), p)
        tracked = tracker.update(dets, now)
        t2 = time.perf_counter()
        runs.append(p.runs)
        if p.runs:
            reasons[p.reason] = reasons.get(p.reason, 0) + 1
        sweeps.append(p.sweep)
        frame_ms.append((t2 - t0) * 1000)
        plan_ms.append((t1 - t0) * 1000)
        ids.update(tracked.track_ids.tolist())
        boxes.append(tracked.xyxy)
        item = items.get(index)
        if item is not None:
            pred_group = np.array([group_of(int(c)) for c in tracked.class_ids], dtype=object)
            truth_group = np.array([group_of(lab) for lab in item.labels], dtype=object)
            here = Counts()
            for g in ("person", "vehicle"):
                sel = pred_group == g
                here += match(tracked.xyxy[sel], tracked.scores[sel], item.boxes[truth_group == g] + shift,
                              item.ignore + shift if len(item.ignore) else item.ignore)
            total += here
            if args.verbose:
                print(f"  frame {index}: runs {p.runs} carried {len(p.carry)} tp {here.tp} fn {here.fn} fp {here.fp}")
    if planner.needs_tracks:  # the motion detector alone, over the same frames
        m = planner.motion
        m.reset()
        for _, img, _ in scene(scene_name, items, args.start, min(args.frames or 200, 200)):
            t = time.perf_counter()
            m(img)
            motion_ms.append((time.perf_counter() - t) * 1000)
    if args.verbose:
        print("  frames run, by reason:", dict(sorted(reasons.items(), key=lambda kv: -kv[1])))
    runs_a, sweeps_a = np.array(runs), np.array(sweeps)
    between = runs_a[~sweeps_a] if (~sweeps_a).any() else np.zeros(1)
    return {
        "runs": runs_a.mean(), "p95": float(np.percentile(runs_a, 95)), "between": between.mean(),
        "ms": float(np.mean(frame_ms)), "plan_ms": float(np.mean(plan_ms)),
        "motion_ms": float(np.mean(motion_ms)) if motion_ms else float("nan"),
        "recall": total.recall, "precision": total.precision, "truth": total.tp + total.fn,
        "ids": len(ids - {-1}), "frames": len(runs), "boxes": boxes,
    }


def agreement(boxes: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Share of the reference plan's tracked boxes, over every frame, that this plan also output (IoU 0.5)."""
    hit = Counts()
    for b, ref in zip(boxes, reference):
        hit += match(b, np.ones(len(b)), ref)
    return hit.recall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "holdout"], default="tune")
    ap.add_argument("--scenes", default="clip,static,hires")
    ap.add_argument("--plans", default="whole,grid,regions")
    ap.add_argument("--start", type=int, default=0, help="first clip frame (clip and hires)")
    ap.add_argument("--frames", type=int, default=None, help="frames per scene (default: all; static 300)")
    ap.add_argument("--verbose", action="store_true", help="counts at every labelled frame")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="regions planner keys, e.g. motion.threshold=25")
    args = ap.parse_args()
    args.set = dict(kv.split("=", 1) for kv in args.set)
    cfg = load_config(ROOT / "config" / "default.yaml", env={})
    labels = resolve_labels(cfg.model.labels, cfg.model.path)
    groups = {"person": "person", **{m: "vehicle" for m in cfg.model.groups["vehicle"]}}

    def group_of(label: str | int) -> str:
        return groups.get(labels[label] if isinstance(label, int) else label, "")

    items = {int(it.id.split("-")[1]): it for it in load_eval_set(args.split) if it.source == "vtest"}
    det = Detector.load(cfg)
    print(f"split {args.split}: {len(items)} labelled clip frames; regions keys {args.set or 'defaults'}")
    print("| scene | plan | runs/frame mean | p95 | between sweeps | ms/frame | planner ms | motion ms "
          "| recall | precision | ids | agree | frames |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in args.scenes.split(","):
        reference = None
        for plan in args.plans.split(","):
            r = run(det, cfg, plan, s, items, group_of, args)
            if plan == REFERENCE.get(s, "whole"):
                reference = r["boxes"]
            agree = agreement(r["boxes"], reference) if reference is not None else float("nan")
            print(f"| {s} | {plan} | {r['runs']:.2f} | {r['p95']:.0f} | "
                  f"{r['between'] if plan == 'regions' else float('nan'):.2f} | {r['ms']:.1f} | {r['plan_ms']:.2f} | "
                  f"{r['motion_ms']:.2f} | {r['recall']:.3f} | {r['precision']:.3f} | {r['ids']} | {agree:.3f} | "
                  f"{r['frames']} |", flush=True)


if __name__ == "__main__":
    main()
