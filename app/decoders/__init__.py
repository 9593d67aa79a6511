"""Decoders turn a model's raw output tensors into Detections (boxes normalised to the model input).

Each output convention is one module (app.plugins): `Config` (DecoderBase's keys plus its own),
`matches(name, specs) -> bool` (may this decoder read these outputs) and
`build(cfg, ctx, specs, labels, input_size) -> Decoder`, registered by one line in DECODERS.
"""
from __future__ import annotations

import logging
from typing import Annotated, Protocol, Sequence

import numpy as np
from pydantic import Field

from app.modelfile import TensorSpec
from app.errors import ConfigError, ModelError
from app.logtext import shorten, shorten_list
from app.ops import nms
from app.plugins import PluginConfig, Registry, RunContext
from app.types import Detections

log = logging.getLogger(__name__)

# one line per decoder: type name -> module (its Config, matches and build); "auto" picks among the others
DECODERS = Registry("decoder", "decoder", {
    "auto": "app.decoders.auto",
    "ssd_postprocess": "app.decoders.ssd_postprocess",
    "yolov5": "app.decoders.yolo",
    "yolov8": "app.decoders.yolo",
    "mediapipe_ssd": "app.decoders.mediapipe",
    "nanodet": "app.decoders.nanodet",
}, default="auto")


class DecoderBase(PluginConfig):
    """The keys every decoder has: which scores and labels are kept, NMS and the cap."""

    score_threshold: float = Field(
        0.35, ge=0.0, le=1.0,
        description="minimum score of every class without a class_thresholds entry (0.35: the best F1 for "
        "vehicles on the tuning half of tests/data/eval); boxes below tracker.track_thresh only continue "
        "tracks (ByteTrack), tracker.new_track_thresh decides which start one",
    )
    class_thresholds: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        # chosen on the tuning half of tests/data/eval (the best F1 per group; models/README.md)
        {"person": 0.4}, description="per-label (or label group) score thresholds overriding score_threshold"
    )
    classes: list[str] = Field(
        ["person", "bicycle", "car", "motorcycle", "bus", "truck"],
        description="labels (or label groups) to detect; others are dropped; empty: every label. Names the "
        "model does not have are ignored (with a warning if none is left)",
    )
    merge_groups: bool = Field(
        True, description="NMS treats the members of a label group as one class (a van seen as truck 0.51 and car 0.46 "
        "gives one box)",
    )
    iou_threshold: float = Field(0.45, ge=0.0, le=1.0, description="NMS IoU above which the weaker box is dropped")
    nms_agnostic: bool = Field(False, description="NMS across classes (Axis's YOLOv5 example does this)")
    max_detections: int = Field(100, ge=1, description="cap on detections per model run")


class Decoder(Protocol):
    """Raw outputs of one model run -> Detections normalised to the model input."""

    def decode(self, outputs: Sequence[np.ndarray]) -> Detections: ...


def describe(specs: Sequence[TensorSpec]) -> str:
    """Short description of output tensors for error messages."""
    return ", ".join(f"{s.name} {list(s.shape)} {s.dtype}" for s in specs)


def build_decoder(
    cfg: DecoderBase | dict, specs: Sequence[TensorSpec], labels: list[str], input_size: tuple[int, int],
    ctx: RunContext | None = None,
) -> Decoder:
    """The configured decoder for these outputs (type auto: the single one whose tensor shapes match)."""
    cfg = DECODERS.parse(cfg)
    if not DECODERS.module(cfg.type).matches(cfg.type, specs):
        raise ModelError(f"model outputs do not fit decoder {cfg.type!r}: {describe(specs)}; set the model's "
                         f"decoder (a <model>.yaml beside it, models/README.md) or decoder.type: auto")
    return DECODERS.build(cfg, ctx, list(specs), labels, input_size)


class ScoreFilter:
    """Per-class score thresholds as one array, indexed by class id."""

    def __init__(self, cfg: DecoderBase, labels: list[str], num_classes: int) -> None:
        if len(labels) > num_classes > 0:  # ids the model never reports (a labels file for a larger model)
            log.warning("model.labels: %d label(s) beyond the model's %d classes are never detected (%s)",
                        len(labels) - num_classes, num_classes, shorten_list(labels[num_classes:], 5))
        if 0 < len(labels) < num_classes:  # a labels file for another model: the rest would be bare numbers
            log.warning("model.labels has %d labels but the model has %d classes; classes %d to %d are "
                        "reported by number", len(labels), num_classes, len(labels), num_classes - 1)
        n = max(num_classes, len(labels), 1)
        self.thresholds = np.full(n, cfg.score_threshold, np.float32)
        wanted = [labels.index(c) for c in cfg.classes if c in labels]
        if wanted:
            dropped = np.ones(n, bool)
            dropped[wanted] = False
            self.thresholds[dropped] = np.inf
        elif cfg.classes and labels:
            log.warning("decoder.classes (%s) names none of the model's labels; keeping every label",
                        shorten_list(cfg.classes))
        given = "class_thresholds" in cfg.model_fields_set  # else the defaults, for labels a model may lack
        for label, thr in cfg.class_thresholds.items():
            if label in labels:
                i = labels.index(label)
            elif label.isdigit() and int(label) < n:
                i = int(label)
            elif not given:
                continue
            else:
                raise ConfigError(
                    f"decoder.class_thresholds: unknown label {shorten(repr(label), 60)} (labels: {', '.join(labels[:10])}"
                    f"{', …' if len(labels) > 10 else ''})"
                )
            if np.isfinite(self.thresholds[i]):  # decoder.classes decides what is detected
                self.thresholds[i] = thr
        finite = np.isfinite(self.thresholds)
        self.minimum = float(self.thresholds[finite].min()) if finite.any() else 1.0

    def keep(self, scores: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
        cls = np.clip(class_ids, 0, len(self.thresholds) - 1)
        return scores >= self.thresholds[cls]


def finish(cfg: DecoderBase, xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> Detections:
    """NMS (class-aware unless agnostic) and the max_detections cap."""
    keep = nms(xyxy, scores, cfg.iou_threshold, None if cfg.nms_agnostic else class_ids, max_keep=cfg.max_detections)
    return Detections(xyxy[keep], scores[keep], class_ids[keep])
