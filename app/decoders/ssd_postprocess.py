"""SSD models ending in TFLite_Detection_PostProcess: boxes [1,N,4] (ymin,xmin,ymax,xmax), classes [1,N],
scores [1,N], count [1] — the Coral / Axis model-zoo SSD MobileNet v2 format."""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from app.modelfile import TensorSpec
from app.decoders import DecoderBase, ScoreFilter
from app.types import Detections


class Config(DecoderBase):
    type: Literal["ssd_postprocess"] = "ssd_postprocess"


def _layout(specs: Sequence[TensorSpec]) -> tuple[int, int, int, int] | None:
    """Indices of (boxes, classes, scores, count) or None when the outputs are not this format."""
    if len(specs) != 4:
        return None
    boxes = [i for i, s in enumerate(specs) if len(s.shape) == 3 and s.shape[0] == 1 and s.shape[2] == 4]
    count = [i for i, s in enumerate(specs) if len(s.shape) == 1 and s.shape[0] == 1]
    if len(boxes) != 1 or len(count) != 1:
        return None
    n = specs[boxes[0]].shape[1]
    pair = [i for i, s in enumerate(specs) if tuple(s.shape) == (1, n)]
    if len(pair) != 2:
        return None
    # TFLite names them <op>:1 (classes) and <op>:2 (scores); otherwise keep the op's output order
    named = {s.name.rsplit(":", 1)[-1]: i for i, s in ((i, specs[i]) for i in pair)}
    classes, scores = (named["1"], named["2"]) if {"1", "2"} <= named.keys() else (pair[0], pair[1])
    return boxes[0], classes, scores, count[0]


def matches(_name: str, specs: Sequence[TensorSpec]) -> bool:
    return _layout(specs) is not None


class SsdPostprocessDecoder:
    """Reads the post-processed detections; the op has already done NMS."""

    def __init__(self, cfg: Config, specs: Sequence[TensorSpec], labels: list[str]) -> None:
        self.cfg = cfg
        self.specs = specs
        self.idx = _layout(specs)
        self.filter = ScoreFilter(cfg, labels, len(labels))

    def decode(self, outputs: Sequence[np.ndarray]) -> Detections:
        b, c, s, n = self.idx
        count = int(self.specs[n].dequantize(outputs[n]).reshape(-1)[0])
        boxes = self.specs[b].dequantize(outputs[b])[0, :count]
        classes = np.round(self.specs[c].dequantize(outputs[c])[0, :count]).astype(np.int32)
        scores = self.specs[s].dequantize(outputs[s])[0, :count]
        keep = self.filter.keep(scores, classes)
        xyxy = np.clip(boxes[keep][:, [1, 0, 3, 2]], 0.0, 1.0)
        order = np.argsort(-scores[keep], kind="stable")[: self.cfg.max_detections]
        return Detections(xyxy[order], scores[keep][order], classes[keep][order])


def build(cfg: Config, _ctx, specs: list[TensorSpec], labels: list[str], _input_size) -> SsdPostprocessDecoder:
    return SsdPostprocessDecoder(cfg, specs, labels)
