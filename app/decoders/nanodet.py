"""NanoDet / GFL raw outputs: per stride a class tensor [1,H,W,C] (or [1,H*W,C]) and a box
distribution tensor with 4 × (reg_max + 1) bins per point (left, top, right, bottom).

Point centre = ((col + 0.5) · stride, (row + 0.5) · stride); each side's distance is the
expectation of a softmax over its bins, times the stride. Class values are sigmoid-ed unless
the model already did (a quantised tensor whose real range stays within 0..1 is probabilities; a
float tensor is told by its values at the first decode: logits of a real frame go below 0).
Quantised outputs are thresholded in the integer domain; only survivors are dequantised.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from app.modelfile import TensorSpec
from app.decoders import DecoderBase, ScoreFilter, finish
from app.types import Detections

BIN_COUNTS = (8, 11, 17)  # reg_max 7 (NanoDet-m), 10 (NanoDet-g / NanoDet-Plus at 416), 16 (GFL)
MAX_CANDIDATES = 3000


class Config(DecoderBase):
    type: Literal["nanodet"] = "nanodet"


@dataclass(frozen=True)
class Level:
    """One stride's pair of outputs."""

    stride: int
    grid_w: int
    cls: int  # index of the class tensor in the outputs
    box: int  # index of the box-distribution tensor


def _points(spec: TensorSpec) -> tuple[int, int] | None:
    """(grid width, point count) of an output, or None when it is not [1,H,W,C] / [1,N,C]."""
    s = spec.shape
    if len(s) == 4 and s[0] == 1:
        return s[2], s[1] * s[2]
    if len(s) == 3 and s[0] == 1:
        side = math.isqrt(s[1])
        return (side, s[1]) if side * side == s[1] else None
    return None


def find_levels(specs: Sequence[TensorSpec], input_w: int | None = None) -> tuple[list[Level], int, int] | None:
    """The stride levels (ascending), class count and bins per side, or None when the outputs are not NanoDet's."""
    if len(specs) < 2 or len(specs) % 2:
        return None
    groups: dict[int, list[int]] = {}
    for i, spec in enumerate(specs):
        p = _points(spec)
        if p is None:
            return None
        groups.setdefault(p[1], []).append(i)
    if any(len(g) != 2 for g in groups.values()):
        return None
    levels, classes, bins = [], set(), set()
    # without the input size (auto-detection), assume the finest level is stride 8
    stride_base = input_w or 8 * max(_points(specs[g[0]])[0] for g in groups.values())
    for n, (a, b) in sorted(groups.items(), reverse=True):
        ca, cb = specs[a].shape[-1], specs[b].shape[-1]
        is_box = [c % 4 == 0 and c // 4 in BIN_COUNTS for c in (ca, cb)]
        if is_box[0] == is_box[1]:  # both (or neither) could be boxes: the smaller one is
            if ca == cb or not (is_box[0] or is_box[1]):
                return None
            box, cls = (a, b) if ca < cb else (b, a)
        else:
            box, cls = (a, b) if is_box[0] else (b, a)
        grid_w = _points(specs[box])[0]
        stride = stride_base // grid_w
        levels.append(Level(stride, grid_w, cls, box))
        classes.add(specs[cls].shape[-1])
        bins.add(specs[box].shape[-1] // 4)
    if len(classes) != 1 or len(bins) != 1:
        return None
    return levels, classes.pop(), bins.pop()


def matches(name: str, specs: Sequence[TensorSpec]) -> bool:
    return find_levels(specs) is not None


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


class NanoDetDecoder:
    def __init__(self, cfg: Config, specs: Sequence[TensorSpec], labels: list[str],
                 input_size: tuple[int, int]) -> None:
        self.cfg = cfg
        self.input_size = input_size
        self.levels, self.num_classes, self.bins = find_levels(specs, input_size[0])
        self.specs = list(specs)
        self.filter = ScoreFilter(cfg, labels, self.num_classes)
        self.project = np.arange(self.bins, dtype=np.float32)
        self.class_thresholds = self.filter.thresholds[: self.num_classes]  # the filter holds one per class at least
        # per level: whether class values still need the sigmoid (None: a float tensor, told by its
        # values at the first decode), and per class the smallest raw value that can reach its
        # threshold, in that level's domain
        self.sigmoid = [self._needs_sigmoid(specs[lv.cls]) for lv in self.levels]
        self.floors = [None if sig is None else self._floor(specs[lv.cls], sig)
                       for lv, sig in zip(self.levels, self.sigmoid)]
        self.gates = [None if f is None else self._gate(f, specs[lv.cls]) for lv, f in zip(self.levels, self.floors)]

    def _floor(self, spec: TensorSpec, sig: bool) -> np.ndarray:
        real = _logit(self.class_thresholds) if sig else self.class_thresholds.astype(np.float64)
        if spec.quantized:
            # a gate that lets through every raw value that can reach the threshold (and at most
            # one step more); the exact comparison on probabilities follows
            q = np.floor(real / spec.scale + spec.zero_point)
            info = np.iinfo(spec.dtype)
            return np.clip(q, info.min, info.max + 1).astype(np.int32)
        return real.astype(np.float32)

    @staticmethod
    def _gate(floor: np.ndarray, spec: TensorSpec) -> tuple[np.ndarray | None, np.ndarray]:
        """The classes that can pass at all (None: every one) and their floors in the tensor's own dtype, so
        the comparison over every point reads only those columns and never widens the tensor to int32."""
        ok = floor <= np.iinfo(spec.dtype).max if np.issubdtype(spec.dtype, np.integer) else np.isfinite(floor)
        live = np.flatnonzero(ok)
        return (None if len(live) == len(floor) else live), floor[live].astype(spec.dtype)

    @staticmethod
    def _needs_sigmoid(spec: TensorSpec) -> bool | None:
        if not spec.quantized:
            return None
        info = np.iinfo(spec.dtype)
        lo = (info.min - spec.zero_point) * spec.scale
        hi = (info.max - spec.zero_point) * spec.scale
        return not (lo >= -1e-6 and hi <= 1.0 + 1e-3)

    def _resolve(self, outputs: Sequence[np.ndarray]) -> None:
        """Float class tensors: logits (as Vigil's own builds and NanoDet's training code give them) or
        probabilities (as NanoDet's ONNX export and the TF.js graph give them). Logits of a real frame
        are mostly far below 0 (background points); probabilities never leave 0..1."""
        for i, lv in enumerate(self.levels):
            if self.sigmoid[i] is None:
                raw = outputs[lv.cls]
                self.sigmoid[i] = not (raw.min() >= 0.0 and raw.max() <= 1.0)
                self.floors[i] = self._floor(self.specs[lv.cls], self.sigmoid[i])
                self.gates[i] = self._gate(self.floors[i], self.specs[lv.cls])

    def decode(self, outputs: Sequence[np.ndarray]) -> Detections:
        if None in self.sigmoid:
            self._resolve(outputs)
        boxes, scores, classes = [], [], []
        for lv, sig, (live, gate) in zip(self.levels, self.sigmoid, self.gates):
            raw = outputs[lv.cls].reshape(-1, self.num_classes)
            if live is None:
                pts, cls = np.nonzero(raw >= gate)
            elif len(live):
                pts, cls = np.nonzero(raw[:, live] >= gate)  # in class order, as over every column
                cls = live[cls]
            else:
                continue
            if len(pts) == 0:
                continue
            if len(pts) > MAX_CANDIDATES:
                top = np.argsort(-raw[pts, cls], kind="stable")[:MAX_CANDIDATES]
                pts, cls = pts[top], cls[top]
            val = self.specs[lv.cls].dequantize(raw[pts, cls])
            prob = 1.0 / (1.0 + np.exp(-val)) if sig else val
            keep = self.filter.keep(prob, cls)
            if not keep.any():
                continue
            pts, cls, prob = pts[keep], cls[keep], prob[keep]
            uniq, inv = np.unique(pts, return_inverse=True)
            dist = self.specs[lv.box].dequantize(outputs[lv.box].reshape(-1, 4, self.bins)[uniq])
            dist = np.exp(dist - dist.max(axis=2, keepdims=True))
            ltrb = (dist / dist.sum(axis=2, keepdims=True)) @ self.project * lv.stride
            cx = (uniq % lv.grid_w + 0.5) * lv.stride
            cy = (uniq // lv.grid_w + 0.5) * lv.stride
            xyxy = np.stack([cx - ltrb[:, 0], cy - ltrb[:, 1], cx + ltrb[:, 2], cy + ltrb[:, 3]], axis=1)
            boxes.append(xyxy[inv])
            scores.append(prob)
            classes.append(cls)
        if not boxes:
            return Detections()
        w, h = self.input_size
        xyxy = np.concatenate(boxes).astype(np.float32) / np.array([w, h, w, h], np.float32)
        np.clip(xyxy, 0.0, 1.0, out=xyxy)
        return finish(self.cfg, xyxy, np.concatenate(scores).astype(np.float32),
                      np.concatenate(classes).astype(np.int32))


def build(cfg: Config, _ctx, specs: list[TensorSpec], labels: list[str], input_size: tuple[int, int]) -> NanoDetDecoder:
    return NanoDetDecoder(cfg, specs, labels, input_size)
