"""ByteTrack (Zhang et al. 2022): associate every detection box, high scores first, then low."""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from app.plugins import PluginConfig, RunContext
from app.tracking import kalman
from app.tracking.base import FIRST_SEEN, LOST_STATE, STATE, TENTATIVE, TRACKED, TableTracker
from app.tracking.events import LOST, UPDATE
from app.tracking.matching import iou_matrix, linear_assignment
from app.types import Detections

DUPLICATE_IOU = 0.85  # ByteTrack's remove_duplicate_stracks: IoU distance < 0.15


class Config(PluginConfig):
    """ByteTrack parameters, named as in the paper's code (ifzhang/ByteTrack)."""

    type: Literal["bytetrack"] = "bytetrack"
    track_thresh: float = Field(
        0.45,
        ge=0.0,
        le=1.0,
        description=(
            "Detections scoring above this are 'high' and matched first against tracked and lost tracks; "
            "those between low_thresh and this are only used to continue tracked tracks. "
            "0.45 with new_track_thresh 0.45 and match_thresh 0.9 was best (F1) for the default NanoDet model "
            "on the tuning half of the labelled clip frames (bench/track_labelled.py); "
            "supervision and Ultralytics use 0.25, the paper 0.6 with a YOLOX-X detector on MOT17. "
            "Keep the decoder's thresholds below this, or there are no low boxes."
        ),
    )
    track_buffer: int = Field(
        30,
        ge=0,
        description=(
            "How long a lost track is kept for re-identification, in frames at 30 fps: "
            "ByteTrack keeps int(frame_rate / 30 * track_buffer) frames, i.e. track_buffer / 30 seconds "
            "whatever the frame rate. Measured with timestamps, so dropped frames do not shorten it."
        ),
    )
    match_thresh: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        description="Maximum cost 1 - IoU x score (1 - IoU without fuse_score) for a first-stage match.",
    )
    new_track_thresh: float | None = Field(
        0.45,
        ge=0.0,
        le=1.0,
        description=(
            "Minimum score for an unmatched detection to start a track; "
            "None means track_thresh + 0.1 (the paper's det_thresh)."
        ),
    )
    low_thresh: float = Field(
        0.1, ge=0.0, le=1.0, description="Detections at or below this score are ignored (ByteTrack's fixed 0.1)."
    )
    low_match_thresh: float = Field(
        0.5, gt=0.0, le=1.0, description="Maximum cost 1 - IoU for the second (low-score) stage; the paper's fixed 0.5."
    )
    unconfirmed_match_thresh: float = Field(
        0.7,
        gt=0.0,
        le=1.0,
        description=(
            "Maximum cost for matching a one-frame-old track to a leftover high detection; the paper's fixed 0.7."
        ),
    )
    fuse_score: bool = Field(
        True, description="Multiply IoU by the detection score in the high-score stages (off with the paper's --mot20)."
    )
    per_class: bool = Field(
        True, description="Match detections only to tracks of the same class, so a person never becomes a car."
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> "Config":
        if self.low_thresh >= self.track_thresh:
            raise ValueError(f"low_thresh ({self.low_thresh}) must be below track_thresh ({self.track_thresh})")
        return self

    @property
    def det_thresh(self) -> float:
        """Score a detection needs to start a new track."""
        return self.track_thresh + 0.1 if self.new_track_thresh is None else self.new_track_thresh


class ByteTrackTracker(TableTracker):
    """ByteTrack over a table of tracks: three gated assignments on one IoU matrix per frame."""

    def __init__(self, cfg: Config | None = None, class_groups: np.ndarray | None = None) -> None:
        self.cfg = cfg or Config()
        super().__init__(self.cfg.per_class, class_groups)
        self._det_thresh = self.cfg.det_thresh
        self._max_lost = self.cfg.track_buffer / kalman.REFERENCE_FPS

    def _allowed_gap(self) -> float:
        return self._max_lost

    def update(self, detections: Detections, timestamp: float) -> Detections:
        """Associate this frame's detections; return those on confirmed tracks, with track_ids."""
        cfg = self.cfg
        dets = self._sanitize(detections)
        now, dt = self._advance(timestamp)
        n = len(self._f)
        if n == 0 and len(dets) == 0:
            self._fresh = False
            return Detections()
        kalman.predict(self._f, dt)
        dead = self._expired(now, self._allowed_gap())
        state = self._i[:, STATE]
        scores = dets.scores
        high = scores > cfg.track_thresh
        hi = high.nonzero()[0]
        iou = self._class_gate(iou_matrix(kalman.xyxy(self._f), dets.xyxy), dets)
        fused = iou * scores if cfg.fuse_score else iou
        used = ~high  # detections no longer available to the high-score stages
        alive = ~dead

        # Stage 1: high detections against tracked and lost tracks.
        pool = (alive & (state != TENTATIVE)).nonzero()[0]
        r, c = linear_assignment(1.0 - fused.take(pool, 0).take(hi, 1), cfg.match_thresh)
        t1, d1 = pool.take(r), hi.take(c)
        matched = np.zeros(n, bool)
        matched[t1] = True
        used[d1] = True

        # Stage 2: low detections against tracks still tracked (not lost), on IoU alone.
        rest = (alive & (state == TRACKED) & ~matched).nonzero()[0]
        lo = ((scores > cfg.low_thresh) & ~high).nonzero()[0]
        if len(rest) and len(lo):
            r, c = linear_assignment(1.0 - iou.take(rest, 0).take(lo, 1), cfg.low_match_thresh)
            t2, d2 = rest.take(r), lo.take(c)
            matched[t2] = True
            t_conf, d_conf = np.concatenate((t1, t2)), np.concatenate((d1, d2))
        else:
            t_conf, d_conf = t1, d1

        # Stage 3: one-frame-old tracks against the high detections left over.
        unconfirmed = (alive & (state == TENTATIVE)).nonzero()[0]
        if len(unconfirmed):
            left = (~used).nonzero()[0]
            r, c = linear_assignment(1.0 - fused.take(unconfirmed, 0).take(left, 1), cfg.unconfirmed_match_thresh)
            t3, d3 = unconfirmed.take(r), left.take(c)
            matched[t3] = True
            used[d3] = True
            t_out, d_out = np.concatenate((t_conf, t3)), np.concatenate((d_conf, d3))
        else:
            t_out, d_out = t_conf, d_conf
            t3 = hi[:0]

        self._commit(t_out, d_out, dets, now)
        self._emit(UPDATE, t_conf)
        state[t_conf] = TRACKED  # re-activates lost tracks with their old ID
        self._confirm(t3)
        unmatched = alive & ~matched
        newly_lost = (unmatched & (state == TRACKED)).nonzero()[0]
        state[newly_lost] = LOST_STATE
        self._f[newly_lost, 6:8] = 0.0  # a lost box keeps its size, as the paper's multi_predict does
        self._emit(LOST, newly_lost)
        dead |= unmatched & (state == TENTATIVE)  # an unconfirmed track gets one chance

        if len(t_out):
            dup = self._duplicates(iou, state, dead, t_out, d_out)
            if dup is not None:
                dead |= dup
                keep = ~dup.take(t_out)
                t_out, d_out = t_out[keep], d_out[keep]

        born = (~used & (scores >= self._det_thresh)).nonzero()[0]
        if self._fresh:  # tracks in the very first frame are confirmed at once, as in the paper
            t_out = np.concatenate((t_out, self._spawn(born, dets, now, confirm=True)))
            d_out = np.concatenate((d_out, born))
        elif len(born):
            self._spawn(born, dets, now, confirm=False)
        result = self._output(t_out, d_out, dets)
        self._finish(now, dead)
        return result

    def _duplicates(
        self, iou: np.ndarray, state: np.ndarray, dead: np.ndarray, t_out: np.ndarray, d_out: np.ndarray
    ) -> np.ndarray | None:
        """Mask of tracks to drop because a lost track covers the same object as a matched one.

        The paper compares track boxes after the update; the matched detection box
        stands in for the updated box here, which saves a second IoU matrix.
        """
        lost = ((state == LOST_STATE) & ~dead).nonzero()[0]
        if len(lost) == 0:
            return None
        a, b = (iou.take(lost, 0).take(d_out, 1) > DUPLICATE_IOU).nonzero()
        if len(a) == 0:
            return None
        lost_rows, active_rows = lost.take(a), t_out.take(b)
        first = self._f[:, FIRST_SEEN]
        # Keep the track with the longer history, as the paper does.
        lost_older = first.take(lost_rows) < first.take(active_rows)
        drop = np.zeros(len(state), bool)
        drop[active_rows[lost_older]] = True
        drop[lost_rows[~lost_older]] = True
        return drop


def build(cfg: Config, _ctx: RunContext, class_groups: np.ndarray | None = None) -> ByteTrackTracker:
    """class_groups: per class id, the id per-class matching compares (label groups continue each other's tracks)."""
    return ByteTrackTracker(cfg, class_groups)
