"""YOLO raw outputs: v5-style [1,N,5+C] rows (cx,cy,w,h,obj,classes…) as in the Axis model zoo,
and v8-style [1,4+C,N] channels-first (cx,cy,w,h,classes…, no objectness). Quantised outputs are
filtered in the integer domain first, then only the survivors are dequantised."""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from pydantic import Field

from app.modelfile import TensorSpec
from app.decoders import DecoderBase, ScoreFilter, finish
from app.ops import cxcywh_to_xyxy
from app.types import Detections

MAX_CANDIDATES = 3000  # NMS input cap; keeps the O(n²) overlap matrix small on noisy frames


class Config(DecoderBase):
    type: Literal["yolov5", "yolov8"] = "yolov5"
    yolo_score: Literal["obj_x_cls", "objectness"] = Field(
        "obj_x_cls",
        description="YOLOv5 score: objectness × class probability (Ultralytics), or objectness alone (Axis example)",
    )
    coords: Literal["auto", "normalized", "pixels"] = Field(
        "auto", description="YOLO box units: normalised 0..1 or model-input pixels"
    )


def matches(name: str, specs: Sequence[TensorSpec]) -> bool:
    if len(specs) != 1 or len(specs[0].shape) != 3 or specs[0].shape[0] != 1:
        return False
    _, a, b = specs[0].shape
    if name == "yolov5":
        return a > b and b >= 6
    return b > a and a >= 5  # yolov8


class YoloDecoder:
    def __init__(self, cfg: Config, specs: Sequence[TensorSpec], labels: list[str], input_size: tuple[int, int]) -> None:
        self.cfg = cfg
        self.pixel_scale = np.array(input_size * 2, np.float32)  # (w, h, w, h)
        self.spec = specs[0]
        self.v8 = cfg.type == "yolov8"
        _, a, b = self.spec.shape
        self.num_classes = (a - 4) if self.v8 else (b - 5)
        self.objectness_only = not self.v8 and cfg.yolo_score == "objectness"
        self.filter = ScoreFilter(cfg, labels, self.num_classes)
        # the smallest raw value that can reach the lowest threshold (scores are ≤ the gating column)
        self.raw_floor = self.spec.quantize(np.float32(self.filter.minimum)) if self.spec.quantized else self.filter.minimum

    def decode(self, outputs: Sequence[np.ndarray]) -> Detections:
        raw = outputs[0][0]
        if self.v8:
            raw = raw.T  # [N, 4+C]; a view, no copy
            gate = raw[:, 4:].max(axis=1)
        else:
            gate = raw[:, 4]
        rows = np.flatnonzero(gate >= self.raw_floor)
        if len(rows) > MAX_CANDIDATES:
            rows = rows[np.argsort(-gate[rows], kind="stable")[:MAX_CANDIDATES]]
        if len(rows) == 0:
            return Detections()
        real = self.spec.dequantize(raw[rows])
        if self.v8:
            cls_scores = real[:, 4:]
        else:
            cls_scores = real[:, 5:] * real[:, 4:5]  # objectness × class probability
        class_ids = cls_scores.argmax(axis=1).astype(np.int32)
        if self.objectness_only:
            scores = real[:, 4]
        else:
            scores = cls_scores[np.arange(len(rows)), class_ids]
        keep = self.filter.keep(scores, class_ids)
        boxes = real[keep, :4]
        if self.cfg.coords == "pixels" or (self.cfg.coords == "auto" and len(boxes) and boxes.max() > 2.0):
            boxes = boxes / self.pixel_scale
        xyxy = np.clip(cxcywh_to_xyxy(boxes), 0.0, 1.0)
        return finish(self.cfg, xyxy, scores[keep], class_ids[keep])


def build(cfg: Config, _ctx, specs: list[TensorSpec], labels: list[str], input_size: tuple[int, int]) -> YoloDecoder:
    return YoloDecoder(cfg, specs, labels, input_size)
