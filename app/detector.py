"""The detector stage: one Frame in, Detections in source pixels out.

views (whole frame or tiles) → model input tensors → model runs → decoder → boxes mapped back to
the frame → one merge (NMS across views, and across the members of a label group) → clipping.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from app import backends
from app.config import Config, resolve_labels
from app.decoders import build_decoder
from app.errors import ModelError
from app.health import Health
from app.ops import nms
from app.plugins import RunContext
from app.preprocess import InputConverter, plan_views
from app.timing import StageTimer
from app.types import Detections, Frame

log = logging.getLogger(__name__)


class Detector:
    """One frame in, Detections in source pixels out: views → tensors → model → decoder → merge."""

    def __init__(self, cfg: Config, timer: StageTimer | None = None, model=None, health: Health | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.timer = timer or StageTimer()
        self.labels = resolve_labels(cfg.model.labels, cfg.model.path)
        if model is None:
            model = backends.build_backend(cfg.model.backend, cfg.model.path,
                                           RunContext(self.timer, health or Health(), cancel, cfg.acap_runtime))
        self.model = model
        if len(self.model.inputs) != 1:
            raise ModelError(f"model has {len(self.model.inputs)} inputs; Vigil runs single-image detectors")
        self.converter = InputConverter(self.model.inputs[0], cfg.model.input_range)
        self.decoder = build_decoder(cfg.decoder, self.model.outputs, self.labels, self.converter.size)
        self.rgb = cfg.model.color == "rgb"
        self._views: dict[tuple[int, int], list] = {}
        self.merge_ids = merge_ids(self.labels, cfg.model.groups) if cfg.decoder.merge_groups else None

    def views(self, size: tuple[int, int]):
        """The views for a frame size, planned once per size."""
        v = self._views.get(size)
        if v is None:
            t = self.cfg.preprocess.tiling
            mw, mh = self.converter.size
            tiles = t.enabled if t.enabled is not None else max(size) >= t.auto_scale * max(mw, mh)
            v = self._views[size] = plan_views(
                size[0], size[1], mw, mh, self.cfg.preprocess.resize,
                t.tile_size if tiles else None, t.overlap, t.full_frame,
            )
            log.info("%d model run%s per %dx%d frame", len(v), "" if len(v) == 1 else "s", *size)
        return v

    def prepare(self, frame: Frame) -> list[np.ndarray]:
        """The model input tensor of every view of this frame."""
        with self.timer.measure("preprocess"):
            return [self.converter(v.render(frame.image, self.rgb)) for v in self.views(frame.size)]

    def __call__(self, frame: Frame) -> Detections:
        return self.infer(frame, self.prepare(frame))

    def infer(self, frame: Frame, tensors: list[np.ndarray]) -> Detections:
        """Run the model on prepared tensors, decode each view and merge into source pixels."""
        views = self.views(frame.size)
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
                t = self.cfg.preprocess.tiling
                keep = nms(dets.xyxy, dets.scores, t.merge_threshold, dets.class_ids, metric=t.merge_metric)
                dets = dets[keep]
            if self.merge_ids is not None and len(dets) > 1:
                ids = self.merge_ids[np.clip(dets.class_ids, 0, len(self.merge_ids) - 1)]
                dets = dets[nms(dets.xyxy, dets.scores, self.cfg.decoder.iou_threshold, ids)]
            w, h = frame.size
            np.clip(dets.xyxy, 0, [w, h, w, h], out=dets.xyxy)
            # boxes entirely off-frame collapse to zero width when clipped; NaN never compares true
            valid = (dets.xyxy[:, 2] - dets.xyxy[:, 0] >= 1) & (dets.xyxy[:, 3] - dets.xyxy[:, 1] >= 1)
            if not valid.all():
                dets = dets[valid]
        return dets


def merge_ids(labels: list[str], groups: dict[str, list[str]]) -> np.ndarray | None:
    """Per class id, the id NMS uses when group members count as one class (None: no group has two
    of these labels, nothing to merge)."""
    ids = np.arange(max(len(labels), 1))
    merged = False
    for members in groups.values():
        present = [labels.index(m) for m in members if m in labels]
        if len(present) > 1:
            ids[present] = present[0]
            merged = True
    return ids if merged else None
