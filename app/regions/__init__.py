"""View planners: which views of a frame the model runs on, chosen by `type` (app.plugins).

`fixed` is the same plan every frame (whole frame, or tiles + whole frame); `regions` looks only
where motion and tracked objects are, with periodic full sweeps. Each is one module with `Config`
and `build(cfg, ctx, model_size, mode) -> Planner`. A plan's views are `app.preprocess.View`s, so
rendering, decoding and mapping back are the same whichever planner made them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from app.plugins import PluginConfig, Registry, RunContext

if TYPE_CHECKING:
    import numpy as np

    from app.preprocess import ResizeMode, View
    from app.regions.planner import Plan
    from app.tracking.predicted import TrackPredictions

__all__ = ["PLANNERS", "PlanCounts", "Planner", "build_planner"]

# one line per planner: type name -> module (its Config and build)
PLANNERS = Registry("view planner", "preprocess.planner", {
    "fixed": "app.regions.fixed",
    "regions": "app.regions.guided",
})


class Planner(Protocol):
    """What the pipeline needs from any view planner."""

    needs_tracks: bool  # whether plan() uses the tracks (else the caller may pass None)
    stationary_speed: float  # box heights per second below which the tracks it is given count as still

    def views(self, size: tuple[int, int]) -> list[View]:
        """The views of a full look at a frame of `size` (the most one frame can cost)."""
        ...

    def plan(self, image: np.ndarray, now: float, tracks: TrackPredictions | None = None) -> Plan:
        """The views of this frame; tracks the views miss come back as `Plan.carry` detections."""
        ...


def build_planner(cfg: PluginConfig | dict, model_size: tuple[int, int], mode: ResizeMode = "letterbox",
                  ctx: RunContext | None = None) -> Planner:
    """The planner named by cfg.type, for a model input of model_size (w, h)."""
    return PLANNERS.build(PLANNERS.parse(cfg), ctx, model_size, mode)


class PlanCounts:
    """Model runs and the share of the frame looked at, summed over the frames planned (for stats)."""

    def __init__(self) -> None:
        self.frames = 0
        self.runs = 0
        self.coverage = 0.0
        self.last: Plan | None = None

    def add(self, plan: Plan) -> None:
        self.frames += 1
        self.runs += plan.runs
        self.coverage += plan.coverage
        self.last = plan

    @property
    def runs_per_frame(self) -> float:
        return self.runs / self.frames if self.frames else 0.0

    @property
    def mean_coverage(self) -> float:
        return self.coverage / self.frames if self.frames else 0.0
