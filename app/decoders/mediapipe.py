"""MediaPipe anchor SSD (BlazePose / BlazeFace detectors): regressors [1,A,4+2K] and scores [1,A,1],
decoded against anchors generated from the model's SSD anchor options."""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from app.modelfile import TensorSpec
from app.decoders import DecoderBase, ScoreFilter, finish
from app.errors import ModelError
from app.types import Detections

SCORE_CLIP = 100.0  # MediaPipe's score_clipping_thresh before the sigmoid


class AnchorOptions(BaseModel):
    """MediaPipe SsdAnchorsCalculator options; defaults are those of pose_detection (224 input, 2254 anchors)."""

    model_config = ConfigDict(extra="forbid")
    num_layers: int = Field(5, ge=1, description="feature-map layers (one stride each)")
    min_scale: float = Field(0.1484375, gt=0, description="anchor scale of the first layer")
    max_scale: float = Field(0.75, gt=0, description="anchor scale of the last layer")
    anchor_offset_x: float = Field(0.5, description="anchor centre within its cell, x")
    anchor_offset_y: float = Field(0.5, description="anchor centre within its cell, y")
    strides: list[int] = Field([8, 16, 32, 32, 32], description="stride of each layer in input pixels")
    aspect_ratios: list[float] = Field([1.0], description="anchor aspect ratios per cell")
    interpolated_scale_aspect_ratio: float = Field(1.0, description="extra anchor between scales; 0 disables")
    reduce_boxes_in_lowest_layer: bool = Field(False, description="3 fixed anchors in layer 0 (SSD MobileNet style)")
    fixed_anchor_size: bool = Field(True, description="anchor w/h are 1 (regressors are absolute sizes)")


class Config(DecoderBase):
    type: Literal["mediapipe_ssd"] = "mediapipe_ssd"
    anchors: AnchorOptions = Field(
        default_factory=AnchorOptions, description="MediaPipe SSD anchor options (defaults: pose_detection)"
    )
    box_scale: float = Field(0.0, ge=0.0, description="MediaPipe x/y/w/h_scale; 0 means the model input size")
    person_box: Literal["regressed", "body"] = Field(
        "body",
        description="MediaPipe pose: 'regressed' keeps the model's box; 'body' builds a full-body box "
        "from the hip-centre and body-circle keypoints",
    )
    body_aspect: float = Field(0.36, gt=0.0, description="width/height of the 'body' box")
    body_scale: float = Field(
        0.9, gt=0.0, description="height of the 'body' box as a fraction of the body circle's diameter"
    )


def _layout(specs: Sequence[TensorSpec]) -> tuple[int, int] | None:
    """Indices of (regressors, scores) or None."""
    if len(specs) != 2 or any(len(s.shape) != 3 or s.shape[0] != 1 for s in specs):
        return None
    if specs[0].shape[1] != specs[1].shape[1]:
        return None
    widths = [s.shape[2] for s in specs]
    if sorted(widths)[0] != 1 or sorted(widths)[1] < 4 or sorted(widths)[1] % 2:
        return None
    reg = 0 if widths[0] >= 4 else 1
    return reg, 1 - reg


def matches(_name: str, specs: Sequence[TensorSpec]) -> bool:
    return _layout(specs) is not None


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) / 2
    return min_scale + (max_scale - min_scale) * index / (count - 1)


def generate_anchors(opts: AnchorOptions, input_w: int, input_h: int) -> np.ndarray:
    """Anchors (A,4) as (x_center, y_center, w, h), normalised, in MediaPipe's SsdAnchorsCalculator order."""
    return _anchors_cached(opts.model_dump_json(), input_w, input_h)


@lru_cache(maxsize=8)
def _anchors_cached(opts_json: str, input_w: int, input_h: int) -> np.ndarray:
    o = AnchorOptions.model_validate_json(opts_json)
    if len(o.strides) != o.num_layers:
        raise ModelError(f"decoder.anchors: {len(o.strides)} strides given for num_layers {o.num_layers}")
    out = []
    layer = 0
    while layer < o.num_layers:
        ratios, scales = [], []
        last = layer
        # consecutive layers with the same stride share one feature map
        while last < o.num_layers and o.strides[last] == o.strides[layer]:
            scale = _scale(o.min_scale, o.max_scale, last, o.num_layers)
            if last == 0 and o.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                ratios += list(o.aspect_ratios)
                scales += [scale] * len(o.aspect_ratios)
                if o.interpolated_scale_aspect_ratio > 0:
                    nxt = 1.0 if last == o.num_layers - 1 else _scale(o.min_scale, o.max_scale, last + 1, o.num_layers)
                    scales.append(math.sqrt(scale * nxt))
                    ratios.append(o.interpolated_scale_aspect_ratio)
            last += 1
        sizes = [(s * math.sqrt(r), s / math.sqrt(r)) for s, r in zip(scales, ratios)]  # (w, h)
        stride = o.strides[layer]
        fh, fw = math.ceil(input_h / stride), math.ceil(input_w / stride)
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = ((xs + o.anchor_offset_x) / fw).reshape(-1, 1).repeat(len(sizes), axis=1)
        cy = ((ys + o.anchor_offset_y) / fh).reshape(-1, 1).repeat(len(sizes), axis=1)
        if o.fixed_anchor_size:
            w = np.ones_like(cx)
            h = np.ones_like(cy)
        else:
            w = np.broadcast_to(np.array([s[0] for s in sizes]), cx.shape)
            h = np.broadcast_to(np.array([s[1] for s in sizes]), cy.shape)
        out.append(np.stack([cx, cy, w, h], axis=-1).reshape(-1, 4))
        layer = last
    anchors = np.concatenate(out).astype(np.float32)
    anchors.flags.writeable = False
    return anchors


def anchor_boxes(reg: np.ndarray, anchors: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Box regressors (n, 4+) against their anchors (n, 4) as normalised boxes xyxy (n, 4).

    scale is MediaPipe's (x_scale, y_scale): regressors are in those units (the input size).
    """
    s = np.asarray(scale, np.float32)
    centre = reg[:, 0:2] / s * anchors[:, 2:4] + anchors[:, 0:2]
    size = reg[:, 2:4] / s * anchors[:, 2:4]
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def anchor_keypoints(reg: np.ndarray, anchors: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Keypoint regressors (the values after the box's 4) against their anchors: normalised (n, k, 2), x first."""
    s = np.asarray(scale, np.float32)
    return reg[:, 4:].reshape(len(reg), -1, 2) / s * anchors[:, None, 2:4] + anchors[:, None, 0:2]


class MediapipeDecoder:
    def __init__(self, cfg: Config, specs: Sequence[TensorSpec], labels: list[str], input_size) -> None:
        self.cfg = cfg
        self.reg_i, self.score_i = _layout(specs)
        self.reg_spec, self.score_spec = specs[self.reg_i], specs[self.score_i]
        w, h = input_size
        self.anchors = generate_anchors(cfg.anchors, w, h)
        if len(self.anchors) != self.reg_spec.shape[1]:
            raise ModelError(
                f"decoder.anchors generate {len(self.anchors)} anchors but the model has "
                f"{self.reg_spec.shape[1]}; set the model's SSD anchor options"
            )
        self.box_scale = np.float32(cfg.box_scale or w), np.float32(cfg.box_scale or h)
        self.num_keypoints = (self.reg_spec.shape[2] - 4) // 2
        self.filter = ScoreFilter(cfg, labels, 1)
        # a quantised score in [0,1] already went through an in-graph sigmoid; float scores are logits
        lo = (np.iinfo(self.score_spec.dtype).min - self.score_spec.zero_point) * self.score_spec.scale if self.score_spec.quantized else None
        self.probabilities = self.score_spec.quantized and lo is not None and lo >= -1e-6
        logit = math.log(self.filter.minimum / (1 - self.filter.minimum)) if 0 < self.filter.minimum < 1 else -SCORE_CLIP
        floor = self.filter.minimum if self.probabilities else logit
        self.raw_floor = self.score_spec.quantize(np.float32(floor)) if self.score_spec.quantized else np.float32(floor)
        if cfg.person_box == "body" and self.num_keypoints < 2:
            raise ModelError("decoder.person_box 'body' needs a model with at least 2 keypoints")

    def decode(self, outputs: Sequence[np.ndarray]) -> Detections:
        raw_scores = outputs[self.score_i][0, :, 0]
        idx = np.flatnonzero(raw_scores >= self.raw_floor)
        if len(idx) == 0:
            return Detections()
        s = self.score_spec.dequantize(raw_scores[idx])
        if not self.probabilities:
            s = 1.0 / (1.0 + np.exp(-np.clip(s, -SCORE_CLIP, SCORE_CLIP)))
        reg = self.reg_spec.dequantize(outputs[self.reg_i][0, idx])
        a = self.anchors[idx]
        if self.cfg.person_box == "body":
            # keypoint 0: hip centre; keypoint 1: a point on the circle around the whole body
            kp = anchor_keypoints(reg[:, :8], a, self.box_scale)
            (hx, hy), (px, py) = kp[:, 0].T, kp[:, 1].T
            # the circle (radius |kp1 - kp0|, normalised; square inputs keep x and y units equal)
            # encloses the body with a margin: take a centred box of a person's proportions
            half_h = np.hypot(px - hx, py - hy) * self.cfg.body_scale
            half_w = half_h * self.cfg.body_aspect
            xyxy = np.stack([hx - half_w, hy - half_h, hx + half_w, hy + half_h], axis=1)
        else:
            xyxy = anchor_boxes(reg, a, self.box_scale)
        class_ids = np.zeros(len(idx), np.int32)
        keep = self.filter.keep(s, class_ids)
        return finish(self.cfg, xyxy[keep].astype(np.float32), s[keep].astype(np.float32), class_ids[keep])


def build(cfg: Config, _ctx, specs: list[TensorSpec], labels: list[str], input_size) -> MediapipeDecoder:
    return MediapipeDecoder(cfg, specs, labels, input_size)
