"""The `regions` view planner: the model looks only where motion and tracked objects are, at the
scale they need, with stationary objects re-checked now and then and a full sweep every so often."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from app.plugins import PluginConfig, RunContext
from app.regions.config import GridPlan, MergeKeys, MotionConfig

if TYPE_CHECKING:
    from app.preprocess import ResizeMode
    from app.regions.planner import RegionPlanner


class Config(MergeKeys, PluginConfig):
    """Model runs on square crops around motion and tracked objects; full sweeps now and then."""

    type: Literal["regions"] = "regions"
    motion: MotionConfig = Field(default_factory=MotionConfig, description="motion detection")
    sweep: GridPlan = Field(
        default_factory=GridPlan,
        description="the views of a full sweep (the fixed plan: whole frame, or tiles + whole frame)",
    )
    full_sweep: float = Field(
        10.0, gt=0.0,
        description="seconds between full sweeps (and one at start), which find objects that appear without "
        "moving (a parked car)",
    )
    stationary_interval: float = Field(
        5.0, gt=0.0,
        description="seconds between model runs on a tracked object that is not moving; in between its track "
        "is carried at its last box",
    )
    refresh_interval: float = Field(
        0.2, ge=0.0,
        description="seconds between model runs on motion and moving tracked objects the model has already "
        "looked at; in between, tracks are carried at their predicted boxes; new motion elsewhere, new tracks "
        "and due stationary objects are looked at at once; 0: every frame with motion. 0.2 is the longest that "
        "kept tracked recall within 0.02 of running every frame on the tuning half (0.55 runs per frame on "
        "the 10 fps sample clip; 0.25: 0.45 runs, recall -0.03; bench/regions.py)",
    )
    hold: int = Field(
        1, ge=0, le=100,
        description="looks in a row at which the detector may miss a tracked object while it is still "
        "carried to the next look (detectors flicker; a parked car missed once is still there); 0: never",
    )
    stationary_speed: float = Field(
        0.1, ge=0.0,
        description="a track whose centre moves slower than this many box heights per second is stationary",
    )
    min_region: float = Field(
        1.0, gt=0.0, le=16.0,
        description="smallest crop side, in model input sides (1: objects are never enlarged)",
    )
    max_region: float = Field(
        2.0, gt=0.0, le=16.0,
        description="largest crop side nearby objects are merged into, in model input sides (2: objects shrink "
        "at most 2x, as on 832-px tiles for a 416 model); one large object may need more",
    )
    context: float = Field(
        1.5, ge=1.0, le=8.0,
        description="crop side at least this many times an object's longer side, so it is seen with its surroundings",
    )
    margin: float = Field(
        0.15, ge=0.0, le=2.0,
        description="boxes are grown by this fraction of their size before planning, so a crop holds an "
        "object that moved further than predicted",
    )


def build(cfg: Config, _ctx: RunContext, model_size: tuple[int, int], mode: ResizeMode = "letterbox") -> RegionPlanner:
    from app.regions.planner import RegionPlanner

    return RegionPlanner(cfg, model_size, mode)
