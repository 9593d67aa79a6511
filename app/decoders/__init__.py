"""Decoders turn a model's raw output tensors into Detections (boxes normalised to the model input).

Each output convention is one module exposing `matches(specs) -> bool` (for auto-detection)
and `create(cfg, specs, labels) -> Decoder`; DECODERS maps the config name to the module.
"""
from __future__ import annotations

import importlib
import logging
from typing import Literal, Protocol, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from app.modelfile import TensorSpec
from app.errors import ConfigError, ModelError
from app.ops import nms
from app.types import Detections

log = logging.getLogger(__name__)

DECODERS = {
    "ssd_postprocess": "app.decoders.ssd_postprocess",
    "yolov5": "app.decoders.yolo",
    "yolov8": "app.decoders.yolo",
    "mediapipe_ssd": "app.decoders.mediapipe",
    "nanodet": "app.decoders.nanodet",
}


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


class DecoderConfig(BaseModel):
    """How raw outputs become detections."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["auto", "ssd_postprocess", "yolov5", "yolov8", "mediapipe_ssd", "nanodet"] = Field(
        "auto", description="output convention; auto picks the one decoder whose tensor shapes match"
    )
    score_threshold: float = Field(
        0.35, ge=0.0, le=1.0,
        description="minimum score of every class without a class_thresholds entry (0.35: the best F1 for "
        "vehicles on the tuning half of tests/data/eval); boxes below tracker.track_thresh only continue "
        "tracks (ByteTrack), tracker.new_track_thresh decides which start one",
    )
    class_thresholds: dict[str, float] = Field(
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
    # YOLO
    yolo_score: Literal["obj_x_cls", "objectness"] = Field(
        "obj_x_cls",
        description="YOLOv5 score: objectness × class probability (Ultralytics), or objectness alone (Axis example)",
    )
    coords: Literal["auto", "normalized", "pixels"] = Field(
        "auto", description="YOLO box units: normalised 0..1 or model-input pixels"
    )
    # MediaPipe anchor SSD
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


class Decoder(Protocol):
    """Raw outputs of one model run -> Detections normalised to the model input.

    Modules build one with `create(name, cfg, output_specs, labels, input_size=(w, h))`.
    """

    def decode(self, outputs: Sequence[np.ndarray]) -> Detections: ...


def describe(specs: Sequence[TensorSpec]) -> str:
    """Short description of output tensors for error messages."""
    return ", ".join(f"{s.name} {list(s.shape)} {s.dtype}" for s in specs)


def create_decoder(
    cfg: DecoderConfig, specs: Sequence[TensorSpec], labels: list[str], input_size: tuple[int, int]
) -> Decoder:
    """The configured decoder, or the single one whose tensor shapes match when type is 'auto'."""
    if cfg.type == "auto":
        found = [name for name, mod in DECODERS.items() if importlib.import_module(mod).matches(name, specs)]
        if not found:
            raise ModelError(
                f"model outputs match no decoder ({', '.join(DECODERS)}): {describe(specs)}"
            )
        if len(found) > 1:
            raise ModelError(f"model outputs match several decoders ({', '.join(found)}); set decoder.type")
        name = found[0]
    else:
        name = cfg.type
        if not importlib.import_module(DECODERS[name]).matches(name, specs):
            raise ModelError(f"model outputs do not fit decoder {name!r}: {describe(specs)}")
    return importlib.import_module(DECODERS[name]).create(name, cfg, list(specs), labels, input_size)


class ScoreFilter:
    """Per-class score thresholds as one array, indexed by class id."""

    def __init__(self, cfg: DecoderConfig, labels: list[str], num_classes: int) -> None:
        n = max(num_classes, len(labels), 1)
        self.thresholds = np.full(n, cfg.score_threshold, np.float32)
        wanted = [labels.index(c) for c in cfg.classes if c in labels]
        if wanted:
            dropped = np.ones(n, bool)
            dropped[wanted] = False
            self.thresholds[dropped] = np.inf
        elif cfg.classes and labels:
            log.warning("decoder.classes (%s) names none of the model's labels; keeping every label",
                        ", ".join(cfg.classes))
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
                    f"decoder.class_thresholds: unknown label {label!r} (labels: {', '.join(labels[:10])}"
                    f"{', …' if len(labels) > 10 else ''})"
                )
            if np.isfinite(self.thresholds[i]):  # decoder.classes decides what is detected
                self.thresholds[i] = thr
        finite = np.isfinite(self.thresholds)
        self.minimum = float(self.thresholds[finite].min()) if finite.any() else 1.0

    def keep(self, scores: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
        cls = np.clip(class_ids, 0, len(self.thresholds) - 1)
        return scores >= self.thresholds[cls]


def finish(cfg: DecoderConfig, xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> Detections:
    """NMS (class-aware unless agnostic) and the max_detections cap."""
    keep = nms(xyxy, scores, cfg.iou_threshold, None if cfg.nms_agnostic else class_ids, max_keep=cfg.max_detections)
    return Detections(xyxy[keep], scores[keep], class_ids[keep])
