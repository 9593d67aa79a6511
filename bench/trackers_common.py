"""Shared by bench/track_eval.py and bench/track_speed.py: tracker adapters and synthetic scenes.

Every tracker, Vigil's and the peers', is wrapped so that it takes pre-built input
for one frame and returns (xyxy, track_ids) of the boxes it reports. Peers are
bench-only dependencies (bench/requirements.txt); they are imported lazily and a
peer that is not installed is skipped with a note.
"""
from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from app.tracking import build_tracker
from app.tracking.bytetrack import Config as ByteTrackConfig
from app.tracking.sort import Config as SortConfig
from app.types import Detections

log = logging.getLogger("bench.trackers")


@dataclass
class Adapter:
    """A tracker behind one call: prepare(frame arrays) once, then step(prepared, timestamp)."""

    name: str
    make: Callable[[float], Any]  # fps -> fresh tracker object
    prepare: Callable[[np.ndarray, np.ndarray, np.ndarray], Any]  # (xyxy, scores, classes) -> input
    step: Callable[[Any, Any, float], tuple[np.ndarray, np.ndarray]]  # (tracker, input, ts) -> (xyxy, ids)
    version: str = ""


def _vigil_step(tracker, dets: Detections, ts: float) -> tuple[np.ndarray, np.ndarray]:
    out = tracker.update(dets, ts)
    tracker.pop_events()  # the pipeline drains events every frame; keep the queue empty
    return out.xyxy, out.track_ids


def _vigil(name: str, cfg) -> Adapter:
    return Adapter(
        name=name,
        make=lambda fps: build_tracker(cfg),
        prepare=lambda b, s, c: Detections(b, s, c),
        step=_vigil_step,
        version="this tree",
    )


def vigil_adapters() -> list[Adapter]:
    """Vigil's trackers at their defaults."""
    # ByteTrack with the thresholds tuned on separate TUD noise seeds (the app's defaults, 0.45/0.45 with
    # match_thresh 0.9, are tuned for the default model's scores): track_thresh 0.25, the paper's
    # det_thresh = +0.1 and match_thresh 0.8, as docs/tracking.md's tables were measured
    tud = ByteTrackConfig(track_thresh=0.25, new_track_thresh=None, match_thresh=0.8)
    return [_vigil("vigil SORT", SortConfig()), _vigil("vigil ByteTrack", tud)]


def _sv_detections(b: np.ndarray, s: np.ndarray, c: np.ndarray):
    import supervision as sv

    return sv.Detections(xyxy=b.astype(np.float32), confidence=s.astype(np.float32), class_id=c.astype(int))


def _peer_step(tracker, dets, ts: float) -> tuple[np.ndarray, np.ndarray]:
    out = tracker.update(dets, timestamp=ts)
    ids = out.tracker_id
    keep = ids >= 0  # trackers returns unconfirmed detections with id -1
    return out.xyxy[keep], ids[keep]


def _sv_step(tracker, dets, ts: float) -> tuple[np.ndarray, np.ndarray]:
    out = tracker.update_with_detections(dets)
    if out.tracker_id is None:
        return np.zeros((0, 4)), np.zeros(0, np.int64)
    return out.xyxy, out.tracker_id


def peer_adapters() -> list[Adapter]:
    """Roboflow trackers (SORT, ByteTrack) and supervision's ByteTrack, where installed, at library defaults."""
    found: list[Adapter] = []
    try:
        import trackers

        ver = importlib.metadata.version("trackers")
        found.append(
            Adapter(
                "trackers SORT",
                lambda fps: trackers.SORTTracker(frame_rate=fps),
                _sv_detections,
                _peer_step,
                ver,
            )
        )
        found.append(
            Adapter(
                "trackers ByteTrack",
                lambda fps: trackers.ByteTrackTracker(frame_rate=fps),
                _sv_detections,
                _peer_step,
                ver,
            )
        )
    except ImportError:
        log.warning("trackers is not installed: skipping its SORT and ByteTrack")
    try:
        import supervision as sv

        if hasattr(sv, "ByteTrack"):
            ver = importlib.metadata.version("supervision")
            found.append(
                Adapter("sv.ByteTrack", lambda fps: sv.ByteTrack(frame_rate=int(round(fps))), _sv_detections, _sv_step, ver)
            )
        else:
            log.warning("supervision %s has no ByteTrack (removed in 0.31): skipping it", sv.__version__)
    except ImportError:
        log.warning("supervision is not installed: skipping sv.ByteTrack")
    return found


def all_adapters() -> list[Adapter]:
    return vigil_adapters() + peer_adapters()


# ---- synthetic scene -------------------------------------------------------------------


@dataclass
class Scene:
    """Ground truth and detections of a synthetic scene, one entry per frame."""

    gt_boxes: list[np.ndarray]  # (n, 4) xyxy
    gt_ids: list[np.ndarray]
    det_boxes: list[np.ndarray]
    det_scores: list[np.ndarray]
    det_classes: list[np.ndarray]
    fps: float
    width: int
    height: int


def synthetic_scene(
    n_objects: int,
    frames: int = 1000,
    seed: int = 0,
    width: int = 1920,
    height: int = 1080,
    fps: float = 30.0,
    dropout: float = 0.10,
) -> Scene:
    """Objects in linear motion bouncing off the borders, detected with noise and i.i.d. dropout.

    Same recipe as the peer measurements in shared/reference/tracking.md 5.3: w ~ U(20, 80),
    h = w * U(1.5, 3), velocity ~ U(-4, 4) px/frame reflecting at the borders; detections
    jitter centre and size with sigma 3 % of w/h, drop 10 % of boxes at random, and score
    U(0.6, 0.95) with p = 0.85, else U(0.15, 0.5). No false positives.
    """
    rng = np.random.default_rng(seed)
    w = rng.uniform(20, 80, n_objects)
    h = w * rng.uniform(1.5, 3.0, n_objects)
    cx = rng.uniform(w / 2, width - w / 2)
    cy = rng.uniform(h / 2, height - h / 2)
    vx = rng.uniform(-4, 4, n_objects)
    vy = rng.uniform(-4, 4, n_objects)
    ids = np.arange(1, n_objects + 1)
    scene = Scene([], [], [], [], [], fps, width, height)
    for _ in range(frames):
        gt = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        scene.gt_boxes.append(gt)
        scene.gt_ids.append(ids.copy())
        keep = rng.random(n_objects) >= dropout
        k = int(keep.sum())
        jc = rng.normal(0, 0.03, (k, 2)) * np.stack([w[keep], h[keep]], 1)
        js = 1 + rng.normal(0, 0.03, (k, 2))
        dcx, dcy = cx[keep] + jc[:, 0], cy[keep] + jc[:, 1]
        dw, dh = w[keep] * js[:, 0], h[keep] * js[:, 1]
        det = np.stack([dcx - dw / 2, dcy - dh / 2, dcx + dw / 2, dcy + dh / 2], axis=1)
        hard = rng.random(k) >= 0.85
        scores = np.where(hard, rng.uniform(0.15, 0.5, k), rng.uniform(0.6, 0.95, k))
        scene.det_boxes.append(det.astype(np.float32))
        scene.det_scores.append(scores.astype(np.float32))
        scene.det_classes.append(np.zeros(k, np.int32))
        # move and reflect
        cx, cy = cx + vx, cy + vy
        for pos, vel, half, limit in ((cx, vx, w / 2, width), (cy, vy, h / 2, height)):
            low, high = pos < half, pos > limit - half
            vel[low | high] *= -1
            pos[low] = 2 * half[low] - pos[low]
            pos[high] = 2 * (limit - half[high]) - pos[high]
    return scene


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table with aligned columns."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
