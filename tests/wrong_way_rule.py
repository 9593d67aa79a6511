"""A zone rule from outside app/, as a new rule would be (tests/test_rules.py registers it with one line):
an object moving against a zone's direction of travel raises the change reason `wrong_way`."""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from app.analytics.rules import Seen
from app.plugins import PluginConfig, RunContext


class Config(PluginConfig):
    type: Literal["wrong_way"] = "wrong_way"
    zone: str = Field(..., description="the zone with a direction of travel")
    direction: tuple[float, float] = Field(..., description="the way to go, in image coordinates (x right, y down)")
    min_speed: float = Field(20.0, ge=0.0, description="pixels per second against it before it counts")


class WrongWay:
    reasons = ("wrong_way",)

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        d = np.asarray(cfg.direction, np.float64)
        self.direction = d / np.hypot(*d)

    def columns(self) -> dict:
        return {"wrong_way": ((), bool, False)}  # going against it now

    def update(self, seen: Seen) -> dict[str, np.ndarray]:
        T, rows, names = seen.T, seen.rows, seen.zone_names
        if self.cfg.zone not in names:
            return {"wrong_way": np.zeros(len(rows), bool)}
        inside = T.member[rows, names.index(self.cfg.zone)]  # the zones rule ran before this one
        against = inside & (T.vel[rows] @ self.direction < -self.cfg.min_speed)  # the tracker's velocity
        started = against & ~T.wrong_way[rows]
        T.wrong_way[rows] = against
        return {"wrong_way": started}


def build(cfg: Config, ctx: RunContext) -> WrongWay:
    return WrongWay(cfg)
