"""View planners: which parts of a frame the model looks at, and at what scale.

`FixedPlanner` is today's plan (whole frame, or tiles + whole frame, every frame). `RegionPlanner`
looks only where something is: square crops around clusters of motion and of tracked objects,
stationary objects now and then, a full sweep every `full_sweep` seconds, and no model run at all
when nothing moved and nothing is due. Tracks the model does not look at in a frame are carried
(returned as detections at their last or predicted box) so the tracker keeps them.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from app.preprocess import ResizeMode, View, make_view, plan_views
from app.regions.config import GridPlan, RegionsKeys
from app.regions.motion import Motion, MotionDetector
from app.tracking.predicted import TrackPredictions
from app.types import Detections, Overlay

log = logging.getLogger(__name__)

SLACK = 1e-3  # seconds: an interval is due this much early, so 0.1 s frame steps add up to 0.3 s
COVERED = 0.9  # a track counts as looked at when this much of its box lies inside one view


@dataclass(slots=True)
class Plan:
    """One frame's views and the tracks carried past them."""

    views: list[View]
    carry: Detections = field(default_factory=Detections)
    sweep: bool = False  # a scheduled full sweep (the fixed plan) ran
    motion: Motion | None = None
    coverage: float = 0.0  # share of the frame inside at least one view
    reason: str = ""  # why the model runs: sweep, refresh, motion, new track, stationary (comma-separated)

    @property
    def runs(self) -> int:
        return len(self.views)

    def overlay(self) -> Overlay:
        """The views, why they ran and the motion mask, for drawing over the frame."""
        return Overlay(tuple((v.x0, v.y0, v.w, v.h) for v in self.views), self.reason,
                       self.motion.mask if self.motion is not None else None)


def grid_views(plan: GridPlan, size: tuple[int, int], model_size: tuple[int, int], mode: ResizeMode) -> list[View]:
    """The views of a fixed plan for one frame size (today's Detector.views)."""
    mw, mh = model_size
    return plan_views(size[0], size[1], mw, mh, mode, plan.tile_size if plan.tiles(size, model_size) else None,
                      plan.overlap, plan.full_frame)


def coverage(views: list[View], size: tuple[int, int], cell: int = 8) -> float:
    """Share of a frame of `size` inside at least one view (on a grid of cell-pixel squares)."""
    if not views:
        return 0.0
    w, h = size
    grid = np.zeros((math.ceil(h / cell), math.ceil(w / cell)), bool)
    for v in views:
        grid[v.y0 // cell : math.ceil((v.y0 + v.h) / cell), v.x0 // cell : math.ceil((v.x0 + v.w) / cell)] = True
    return float(grid.mean())


def inside_fraction(boxes: np.ndarray, rects: np.ndarray) -> np.ndarray:
    """(n, m) share of each box's area inside each rectangle (both xyxy)."""
    lt = np.maximum(boxes[:, None, :2], rects[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], rects[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 1e-9, None), axis=1)
    return inter / area[:, None]


def grow(boxes: np.ndarray, margin: float, size: tuple[int, int]) -> np.ndarray:
    """Boxes enlarged by `margin` of their size on every side, clipped to the frame."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    wh = b[:, 2:] - b[:, :2]
    out = np.concatenate((b[:, :2] - margin * wh, b[:, 2:] + margin * wh), axis=1)
    w, h = size
    return np.clip(out, 0, [w, h, w, h])


def cluster(boxes: np.ndarray, need: np.ndarray, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge boxes into as few square crops as possible.

    Each box needs a crop of side at least `need`; a crop must contain its boxes. Two clusters merge
    when one square holding both is no larger than `cap` or than what one of them needs anyway.
    Returns (union boxes (k, 4), crop sides (k,)).
    """
    u = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    s = np.maximum(np.asarray(need, np.float64), np.max(u[:, 2:] - u[:, :2], axis=1))
    while len(u) > 1:
        lo = np.minimum(u[:, None, :2], u[None, :, :2])
        hi = np.maximum(u[:, None, 2:], u[None, :, 2:])
        side = np.maximum(np.max(hi - lo, axis=2), np.maximum(s[:, None], s[None, :]))
        limit = np.maximum(cap, np.maximum(s[:, None], s[None, :]))
        # the cheapest merge first: the one that grows the larger crop least
        cost = np.where(side <= limit + 1e-6, side - np.maximum(s[:, None], s[None, :]), np.inf)
        np.fill_diagonal(cost, np.inf)
        k = int(np.argmin(cost))
        i, j = divmod(k, len(u))
        if not math.isfinite(cost[i, j]):
            break
        u[i] = np.concatenate((lo[i, j], hi[i, j]))
        s[i] = side[i, j]
        u, s = np.delete(u, j, axis=0), np.delete(s, j)
    return u, s


def crops(unions: np.ndarray, sides: np.ndarray, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """(x0, y0, w, h) squares of the given sides centred on each union, shifted (and cut) to the frame."""
    fw, fh = size
    out = []
    for (x1, y1, x2, y2), s in zip(unions, sides):
        w, h = min(fw, math.ceil(s)), min(fh, math.ceil(s))
        x0 = min(max(round((x1 + x2 - w) / 2), 0), fw - w)
        y0 = min(max(round((y1 + y2 - h) / 2), 0), fh - h)
        out.append((int(x0), int(y0), int(w), int(h)))
    return out


class FixedPlanner:
    """The same views on every frame."""

    needs_tracks = False
    stationary_speed = 0.0

    def __init__(self, cfg: GridPlan, model_size: tuple[int, int], mode: ResizeMode = "letterbox") -> None:
        self.cfg = cfg
        self.model_size = model_size
        self.mode = mode
        self._views: dict[tuple[int, int], list[View]] = {}

    def views(self, size: tuple[int, int]) -> list[View]:
        """The views for a frame size, planned once per size."""
        v = self._views.get(size)
        if v is None:
            v = self._views[size] = grid_views(self.cfg, size, self.model_size, self.mode)
            log.info("%d model run%s per %dx%d frame", len(v), "" if len(v) == 1 else "s", *size)
        return v

    def plan(self, image: np.ndarray, now: float, tracks: TrackPredictions | None = None) -> Plan:
        size = (image.shape[1], image.shape[0])
        views = self.views(size)
        return Plan(views, sweep=True, coverage=1.0 if views else 0.0, reason="fixed")


class RegionPlanner:
    """Views around motion and tracked objects; full sweeps every `full_sweep` seconds and at start."""

    needs_tracks = True

    def __init__(self, cfg: RegionsKeys, model_size: tuple[int, int], mode: ResizeMode = "letterbox") -> None:
        self.cfg = cfg
        self.stationary_speed = cfg.stationary_speed
        self.model_size = model_size
        self.mode = mode
        self.motion = MotionDetector(cfg.motion)
        self._sweeps: dict[tuple[int, int], list[View]] = {}
        self._last_sweep: float | None = None
        # per track id: when the model last looked at it, and at how many looks in a row it was missed
        self._ids = np.zeros(0, np.int64)
        self._checked = np.zeros(0)
        self._misses = np.zeros(0, np.int64)
        self._looked = np.zeros(0, np.int64)  # ids the last run looked at (missed or not: the next frame tells)
        self._swept = False  # the last run was a sweep
        self._due = -np.inf  # when the next refresh is due
        self._last_seen = np.zeros((0, 4))  # the motion and track boxes the last run was for

    def reset(self) -> None:
        """Start over: the next frame is a sweep and seeds the motion background."""
        self._last_sweep = None
        self._ids, self._checked, self._misses = self._ids[:0], self._checked[:0], self._misses[:0]
        self._looked = self._ids[:0]
        self._due, self._last_seen = -np.inf, np.zeros((0, 4))
        self.motion.reset()

    def sweep_views(self, size: tuple[int, int]) -> list[View]:
        """The views of a full sweep of a frame of `size` (the fixed plan under `sweep`)."""
        v = self._sweeps.get(size)
        if v is None:
            v = self._sweeps[size] = grid_views(self.cfg.sweep, size, self.model_size, self.mode)
            log.info("regions: model runs only where motion and tracks are; a full sweep of a %dx%d frame is "
                     "%d model run%s", *size, len(v), "" if len(v) == 1 else "s")
        return v

    views = sweep_views  # a full look, as Planner.views

    def _recall(self, t: TrackPredictions) -> tuple[np.ndarray, np.ndarray]:
        """(when the model last looked at each track (-inf: never), looks in a row it was missed at)."""
        checked, misses = np.full(len(t), -np.inf), np.zeros(len(t), np.int64)
        if len(self._ids) and len(t):
            pos = np.minimum(np.searchsorted(self._ids, t.ids), len(self._ids) - 1)
            hit = self._ids[pos] == t.ids
            checked[hit], misses[hit] = self._checked[pos[hit]], self._misses[pos[hit]]
        if len(self._looked):
            # the tracker has had the detections of the last run: a track it looked at is seen or missed
            was_looked = np.isin(t.ids, self._looked)
            misses = np.where(was_looked, np.where(t.matched, 0, misses + 1), misses)
            self._looked = self._looked[:0]
        return checked, misses

    def _remember(self, t: TrackPredictions, checked: np.ndarray, misses: np.ndarray, looked: np.ndarray | None) -> None:
        keep = t.ids >= 0
        order = np.argsort(t.ids[keep])
        self._ids, self._checked, self._misses = t.ids[keep][order], checked[keep][order], misses[keep][order]
        if looked is not None:
            self._looked = t.ids[looked & keep]

    def plan(self, image: np.ndarray, now: float, tracks: TrackPredictions | None = None) -> Plan:
        """The views for this frame (and the tracks carried past them)."""
        cfg = self.cfg
        size = (image.shape[1], image.shape[0])
        t = tracks if tracks is not None else TrackPredictions()
        motion = self.motion(image)
        checked, misses = self._recall(t)
        if self._last_sweep is None or now < self._last_sweep or now - self._last_sweep >= cfg.full_sweep - SLACK:
            return self._full(size, now, t, misses, motion, "sweep")

        confirmed = t.confirmed
        moving = ~t.stationary | ~confirmed
        boxes = grow(t.xyxy, cfg.margin, size)
        on_frame = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        refresh = now >= self._due - SLACK
        # a tentative track is confirmed or dropped by the next frame's detections: look again if it moves, or
        # if a sweep found it (something new that does not move: a parked car); others are left to die
        tentative = ~confirmed & on_frame
        if not self._swept and len(motion.boxes) and tentative.any():
            tentative[tentative] = inside_fraction(boxes[tentative], motion.boxes).sum(axis=1) > 0
        elif not self._swept:
            tentative[:] = False
        # a still object is looked at every stationary_interval, and at the next refresh after a miss
        missed = confirmed & (misses > 0)
        still_due = ~moving & on_frame & ((now - checked >= cfg.stationary_interval - SLACK) | (missed & refresh))
        active = moving & on_frame & (confirmed | tentative)
        # tracks missed at no more than `hold` looks in a row are carried (the detector flickers)
        held = confirmed & (t.matched | ((misses <= cfg.hold) & (misses > 0)))
        reasons = [name for name, due in (("new track", tentative.any()), ("stationary", still_due.any())) if due]
        if refresh and (motion.any or active.any()):
            reasons.append("refresh")
        elif motion.any:
            # between refreshes only motion away from moving tracks and from the motion and tracks of the
            # last run counts: a new object, or a still one starting to move; the rest waits for the refresh
            seen = np.concatenate((boxes[active & confirmed & t.matched], self._last_seen))
            if len(motion.outside(seen)):
                reasons.append("motion")
        if not reasons:
            self._remember(t, checked, misses, None)
            return Plan([], t.carried(held.nonzero()[0]), motion=motion)
        # looking anyway: at every moving track and all motion too, so the next refresh is a full interval away
        targets = np.concatenate((boxes[still_due | active], grow(motion.boxes, cfg.margin, size)))
        side = max(self.model_size)
        need = np.maximum(cfg.min_region * side, cfg.context * np.max(targets[:, 2:] - targets[:, :2], axis=1))
        unions, sides = cluster(targets, need, cfg.max_region * side)
        if len(unions) >= len(self.sweep_views(size)):  # the full plan costs no more and sees everything
            return self._full(size, now, t, misses, motion, ", ".join(reasons))
        mw, mh = self.model_size
        views = [make_view(x, y, w, h, mw, mh, self.mode) for x, y, w, h in crops(unions, sides, size)]
        rects = np.array([[v.x0, v.y0, v.x0 + v.w, v.y0 + v.h] for v in views], np.float64)
        looked = inside_fraction(np.clip(t.xyxy, 0, [*size, *size]), rects).max(axis=1) >= COVERED
        self._remember(t, np.where(looked, now, checked), misses, looked)
        self._next_refresh(now, "refresh" in reasons)
        self._last_seen, self._swept = targets, False
        carry = (held & ~looked).nonzero()[0]
        return Plan(views, t.carried(carry), motion=motion, coverage=coverage(views, size), reason=", ".join(reasons))

    def _next_refresh(self, now: float, on_schedule: bool) -> None:
        """After a run: refreshes keep their rate (an interval of 2.5 frames alternates 2 and 3); any other
        run looked at every moving track too, and restarts the interval."""
        interval = self.cfg.refresh_interval
        self._due = max(self._due, now - interval / 2) + interval if on_schedule else now + interval

    def _full(self, size, now: float, t: TrackPredictions, misses: np.ndarray, motion: Motion, reason: str) -> Plan:
        """The sweep plan: every track is looked at."""
        self._last_sweep = now
        self._next_refresh(now, "refresh" in reason)
        self._swept = reason == "sweep"
        self._remember(t, np.full(len(t), now), misses, np.ones(len(t), bool))
        margin = self.cfg.margin
        self._last_seen = np.concatenate((grow(motion.boxes, margin, size), grow(t.xyxy, margin, size)))
        views = self.sweep_views(size)
        return Plan(views, sweep=reason == "sweep", motion=motion, coverage=coverage(views, size), reason=reason)
