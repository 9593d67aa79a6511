"""The `fixed` view planner: the same views on every frame (the whole frame, or tiles + whole frame)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from app.plugins import PluginConfig, RunContext
from app.regions.config import GridPlan, MergeKeys

if TYPE_CHECKING:
    from app.preprocess import ResizeMode
    from app.regions.planner import FixedPlanner


class Config(MergeKeys, GridPlan, PluginConfig):
    """Today's plan; its keys are those of the former `preprocess.tiling`."""

    type: Literal["fixed"] = "fixed"


def build(cfg: Config, _ctx: RunContext, model_size: tuple[int, int], mode: ResizeMode = "letterbox") -> FixedPlanner:
    from app.regions.planner import FixedPlanner  # cv2 (rendering): only once a planner is built

    return FixedPlanner(cfg, model_size, mode)
