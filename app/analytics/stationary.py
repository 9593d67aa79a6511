"""Stationary objects, a rule: a track that has not left the box where it last moved for a while."""
from __future__ import annotations

import numpy as np

from app.analytics.config import StationaryConfig
from app.analytics.geometry import row_iou
from app.analytics.rules import Seen

# the per-track columns this needs in the analytics table
STATIONARY_COLUMNS = {
    "ref_box": ((4,), np.float32, 0.0),  # where it was when it last moved
    "still_ts": ((), np.float64, 0.0),
    "stationary": ((), bool, False),
    "motionless": ((), np.int32, 0),
}


class Stationary:
    """Still or moving: raises `stationary` when an object has stayed put `seconds`, `moving` when it leaves."""

    reasons = ("stationary", "moving")

    def __init__(self, cfg: StationaryConfig) -> None:
        self.cfg = cfg

    def columns(self) -> dict:
        return STATIONARY_COLUMNS

    def update(self, seen: Seen) -> dict[str, np.ndarray]:
        T, rows, now, cfg = seen.T, seen.rows, seen.now, self.cfg
        new = rows[seen.fresh]  # a new track is still where it was first seen
        T.ref_box[new] = T.box[new]
        T.still_ts[new] = now
        moved = row_iou(T.box[rows], T.ref_box[rows]) < cfg.min_iou
        r_moved = rows[moved]
        T.ref_box[r_moved] = T.box[r_moved]
        T.still_ts[r_moved] = now
        T.motionless[r_moved] = 0
        T.motionless[rows[~moved]] += 1
        stat = (cfg.seconds > 0) & (now - T.still_ts[rows] >= cfg.seconds)
        changed = stat != T.stationary[rows]
        T.stationary[rows] = stat
        return {"stationary": changed & stat, "moving": changed & ~stat}
