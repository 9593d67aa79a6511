"""The `regions` view planner: the model looks only where motion and tracked objects are, at the
scale they need, with stationary objects re-checked now and then and a full sweep every so often."""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from app.plugins import PluginConfig, RunContext
from app.regions.config import RegionsKeys

if TYPE_CHECKING:
    from app.preprocess import ResizeMode
    from app.regions.planner import RegionPlanner


class Config(RegionsKeys, PluginConfig):
    """Model runs on square crops around motion and tracked objects; full sweeps now and then."""

    type: Literal["regions"] = "regions"
    needs_tracks: ClassVar[bool] = True  # each frame is planned after the one before is tracked: one at a time


def build(cfg: Config, _ctx: RunContext, model_size: tuple[int, int], mode: ResizeMode = "letterbox") -> RegionPlanner:
    from app.regions.planner import RegionPlanner  # cv2 (motion, rendering): only once a planner is built

    return RegionPlanner(cfg, model_size, mode)
