"""The detector stage: one Frame in, Detections in source pixels out.

plan (the view planner: whole frame, tiles, or regions around motion and tracks) → model input
tensors → model runs → decoder → boxes mapped back to the frame → one merge (NMS across views, and
across the members of a label group) → clipping → the tracks the plan carried past its views.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from app import backends
from app.config import Config, ModelConfig, PreprocessConfig, model_labels
from app.decoders import build_decoder
from app.errors import ModelError
from app.health import Health
from app.labels import ModelLabels
from app.ops import nms
from app.plugins import PluginConfig, RunContext
from app.preprocess import InputConverter, View
from app.regions import PlanCounts, build_planner
from app.regions.planner import Plan
from app.timing import StageTimer
from app.types import Detections, Frame

log = logging.getLogger(__name__)


class Detector:
    """One frame in, Detections in source pixels out: views → tensors → model → decoder → merge."""

    def __init__(self, model, labels: ModelLabels, model_cfg: ModelConfig, decoder: PluginConfig,
                 preprocess: PreprocessConfig, timer: StageTimer | None = None) -> None:
        """A loaded `model` (a backend) with what its class ids mean (`labels`: names, groups, merge ids) and
        the config sections the detector reads: the model's (input range, colour), the decoder's, preprocess."""
        self.timer = timer or StageTimer()
        self.labels = labels.names
        self.model = model
        if len(self.model.inputs) != 1:
            raise ModelError(f"model has {len(self.model.inputs)} inputs; Vigil runs single-image detectors")
        self.converter = InputConverter(self.model.inputs[0], model_cfg.input_range)
        self.decoder = build_decoder(decoder, self.model.outputs, self.labels, self.converter.size)
        self.rgb = model_cfg.color == "rgb"
        self.planner = build_planner(preprocess.planner, self.converter.size, preprocess.resize)
        self.plans = PlanCounts()
        self.merge_ids = labels.merge_ids
        self.group_iou = decoder.iou_threshold  # NMS across the members of a label group
        self.view_merge = (preprocess.planner.merge_threshold, preprocess.planner.merge_metric)  # across views

    @classmethod
    def load(cls, cfg: Config, timer: StageTimer | None = None, model=None, health: Health | None = None,
             cancel: threading.Event | None = None, labels: ModelLabels | None = None) -> "Detector":
        """The configured model loaded (or `model`, already loaded) as a Detector; `labels` the run's own
        description of the model's classes (made from cfg when not given)."""
        timer = timer or StageTimer()
        if model is None:
            # a planner that follows the tracks has one frame in the model at a time (app.inflight)
            frames = 1 if getattr(cfg.preprocess.planner, "needs_tracks", False) else None
            model = backends.build_backend(cfg.model.backend, cfg.model.path,
                                           RunContext(timer, health or Health(), cancel, cfg.acap_runtime, frames))
        return cls(model, labels or model_labels(cfg), cfg.model, cfg.decoder, cfg.preprocess, timer)

    def views(self, size: tuple[int, int]) -> list[View]:
        """The views of a full look at a frame of `size` (the fixed plan; a regions planner's sweep)."""
        return self.planner.views(size)

    def plan(self, frame: Frame, tracker=None) -> Plan:
        """Which views of this frame the model runs on; a planner that follows tracks asks `tracker`
        where its tracks are now."""
        with self.timer.measure("plan"):
            tracks = None
            if self.planner.needs_tracks and tracker is not None:
                tracks = tracker.predicted(frame.timestamp, self.planner.stationary_speed)
            plan = self.planner.plan(frame.image, frame.timestamp, tracks)
        self.plans.add(plan)
        return plan

    def prepare(self, frame: Frame, plan: Plan | None = None) -> list[np.ndarray]:
        """The model input tensor of every view of this frame (of `plan`, or a full look)."""
        views = plan.views if plan is not None else self.views(frame.size)
        with self.timer.measure("preprocess"):
            return [self.converter.tensor(v, frame.image, self.rgb) for v in views]

    def __call__(self, frame: Frame, tracker=None) -> Detections:
        """Plan, prepare and infer in one call (benchmarks, tools); `tracker` as for plan()."""
        plan = self.plan(frame, tracker)
        return self.infer(frame, self.prepare(frame, plan), plan)

    def infer(self, frame: Frame, tensors: list[np.ndarray], plan: Plan | None = None) -> Detections:
        """Run the model on prepared tensors, decode each view and merge into source pixels; then add the
        tracks the plan carried past its views."""
        views = plan.views if plan is not None else self.views(frame.size)
        parts = []
        measure = self.timer.measure
        results = self.model.run_many([t] for t in tensors)
        for view in views:
            with measure("invoke"):
                outputs = next(results)
            with measure("decode"):
                d = self.decoder.decode(outputs)
                if len(d):
                    d.xyxy = view.to_source(d.xyxy).astype(np.float32)
                    parts.append(d)
        with measure("merge"):
            dets = Detections.merge(parts)
            if len(views) > 1 and len(dets) > 1:
                threshold, metric = self.view_merge
                keep = nms(dets.xyxy, dets.scores, threshold, dets.class_ids, metric=metric)
                dets = dets[keep]
            if self.merge_ids is not None and len(dets) > 1:
                ids = self.merge_ids[np.clip(dets.class_ids, 0, len(self.merge_ids) - 1)]
                dets = dets[nms(dets.xyxy, dets.scores, self.group_iou, ids)]
            w, h = frame.size
            np.clip(dets.xyxy, 0, [w, h, w, h], out=dets.xyxy)
            # boxes entirely off-frame collapse to zero width when clipped; NaN never compares true
            valid = (dets.xyxy[:, 2] - dets.xyxy[:, 0] >= 1) & (dets.xyxy[:, 3] - dets.xyxy[:, 1] >= 1)
            if not valid.all():
                dets = dets[valid]
            if plan is not None and len(plan.carry):
                dets = Detections.merge([dets, plan.carry])
        return dets
