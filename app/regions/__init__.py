"""View planners, chosen by config: which views of a frame the model runs on.

`fixed` is the same plan every frame (whole frame, or tiles + whole frame); `regions` looks only
where motion and tracked objects are, with periodic full sweeps. A planner returns a `Plan` whose
views are `app.preprocess.View`s, so rendering, decoding and mapping back are the same for both.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from app.regions.config import (
    FixedPlannerConfig, GridPlan, MotionConfig, PlannerConfig, RegionsPlannerConfig,
)
from app.regions.motion import Motion, MotionDetector
from app.regions.planner import PLANNERS, FixedPlanner, Plan, RegionPlanner, create_planner
from app.regions.tracks import Tracks, from_tracker

__all__ = [
    "PLANNERS", "FixedPlanner", "FixedPlannerConfig", "GridPlan", "Motion", "MotionConfig", "MotionDetector",
    "Plan", "Planner", "PlannerConfig", "RegionPlanner", "RegionsPlannerConfig", "Tracks", "create_planner",
    "from_tracker",
]


class Planner(Protocol):
    """What the pipeline needs from any view planner."""

    needs_tracks: bool  # whether plan() uses the tracks (else the caller may pass None)

    def plan(self, image: np.ndarray, now: float, tracks: Tracks | None = None) -> Plan:
        """The views of this frame; tracks the views miss come back as `Plan.carry` detections."""
        ...
