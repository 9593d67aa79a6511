"""SORT (Bewley et al. 2016): Kalman motion model, IoU gating, Hungarian assignment."""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from app.plugins import PluginConfig, RunContext
from app.tracking import kalman
from app.tracking.base import HITS, LOST_STATE, STATE, TENTATIVE, TRACKED, TableTracker
from app.tracking.events import LOST, UPDATE
from app.tracking.matching import iou_matrix, linear_assignment
from app.types import Detections


class Config(PluginConfig):
    """SORT parameters, named as in the paper's code (abewley/sort)."""

    type: Literal["sort"] = "sort"
    max_age: int = Field(
        30,
        ge=0,
        description=(
            "Frames a confirmed track may go unmatched and still be matched again; counted in frame "
            "periods measured from timestamps, so frames the source dropped count as missed time. "
            "The paper's code uses 1, which splits IDs at every missed detection; 30 is 1 s at 30 fps."
        ),
    )
    min_hits: int = Field(
        3,
        ge=1,
        description=(
            "Consecutive matched detections (including the first) before a track is confirmed, "
            "gets an ID and is output. Tracks present in the first frame are confirmed at once."
        ),
    )
    iou_threshold: float = Field(
        0.3, gt=0.0, le=1.0, description="Minimum IoU between a predicted track box and a detection to match them."
    )
    per_class: bool = Field(
        False, description="Match detections only to tracks of the same class, so a person never becomes a car."
    )


class SortTracker(TableTracker):
    """SORT over a table of tracks: one Kalman predict/update and one assignment per frame."""

    def __init__(self, cfg: Config | None = None, class_groups: np.ndarray | None = None) -> None:
        self.cfg = cfg or Config()
        super().__init__(self.cfg.per_class, class_groups)

    def _allowed_gap(self) -> float:
        return self.cfg.max_age * self._period

    def update(self, detections: Detections, timestamp: float) -> Detections:
        """Associate this frame's detections; return those on confirmed tracks, with track_ids."""
        cfg = self.cfg
        dets = self._sanitize(detections)
        now, dt = self._advance(timestamp)
        if len(self._f) == 0 and len(dets) == 0:
            self._fresh = False
            return Detections()
        kalman.predict(self._f, dt)
        dead = self._expired(now, self._allowed_gap())
        state = self._i[:, STATE]

        iou = self._class_gate(iou_matrix(kalman.xyxy(self._f), dets.xyxy), dets)
        iou[dead] = 0.0
        rows, cols = linear_assignment(1.0 - iou, 1.0 - cfg.iou_threshold)
        self._commit(rows, cols, dets, now)

        matched = np.zeros(len(state), bool)
        matched[rows] = True
        was_confirmed = state[rows] != TENTATIVE
        self._emit(UPDATE, rows[was_confirmed])
        state[rows[was_confirmed]] = TRACKED
        hits = self._i[rows, HITS]
        self._confirm(rows[~was_confirmed & (hits >= cfg.min_hits)])

        newly_lost = ((state == TRACKED) & ~matched & ~dead).nonzero()[0]
        state[newly_lost] = LOST_STATE
        self._emit(LOST, newly_lost)
        dead |= (state == TENTATIVE) & ~matched  # a tentative track must be matched every frame

        out = state[rows] == TRACKED
        t_out, d_out = rows[out], cols[out]
        free = np.ones(len(dets), bool)
        free[cols] = False
        born = free.nonzero()[0]
        if self._fresh or cfg.min_hits <= 1:
            t_out = np.concatenate((t_out, self._spawn(born, dets, now, confirm=True)))
            d_out = np.concatenate((d_out, born))
        else:
            self._spawn(born, dets, now, confirm=False)
        result = self._output(t_out, d_out, dets)
        self._finish(now, dead)
        return result


def build(cfg: Config, _ctx: RunContext, class_groups: np.ndarray | None = None) -> SortTracker:
    """class_groups: per class id, the id per-class matching compares (label groups continue each other's tracks)."""
    return SortTracker(cfg, class_groups)
