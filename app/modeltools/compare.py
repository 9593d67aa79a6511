"""How a quantised model differs from its float original: outputs, detections, kernels and speed.

Models are run by the app's own TFLite backend and detections decoded by its MediaPipe
decoder functions and NMS, so what is measured here is what `vigil run` would see.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.backends import Model
from app.backends.tflite import TFLiteModel
from app.decoders.mediapipe import anchor_boxes, anchor_keypoints
from app.ops import iou_matrix as iou
from app.ops import nms


def real_outputs(model: Model, image: np.ndarray) -> list[np.ndarray]:
    """A single-input model's outputs in real (dequantised) values for one real-valued input."""
    (spec,) = model.inputs
    raw = model.run([spec.quantize(np.asarray(image, np.float32).reshape(spec.shape))])
    return [s.dequantize(r) for s, r in zip(model.outputs, raw)]


@dataclass
class OutputAgreement:
    """How close one INT8 output is to the float model's on held-out images."""

    name: str
    mean_abs: float
    max_abs: float
    range: float  # spread of the float output over the held-out images
    sqnr_db: float  # signal-to-quantisation-noise ratio

    def line(self) -> str:
        rel = self.mean_abs / self.range if self.range else 0.0
        return (f"  {self.name}: mean |int8 - float| {self.mean_abs:.4g} ({100 * rel:.2f} % of its range "
                f"{self.range:.4g}), max {self.max_abs:.4g}, SQNR {self.sqnr_db:.1f} dB")


def output_agreement(float_path: Path, int8_path: Path, images: list[np.ndarray]) -> list[OutputAgreement]:
    """Per-output agreement of the INT8 model with the float model on the given inputs."""
    reference, candidate = TFLiteModel(Path(float_path), 1), TFLiteModel(Path(int8_path), 1)
    names = [s.name for s in reference.outputs]
    ref_out: list[list[np.ndarray]] = [[] for _ in names]
    cand_out: list[list[np.ndarray]] = [[] for _ in names]
    for image in images:
        for k, (a, b) in enumerate(zip(real_outputs(reference, image), real_outputs(candidate, image))):
            ref_out[k].append(a.reshape(-1))
            cand_out[k].append(b.reshape(-1))
    result = []
    for name, r, c in zip(names, ref_out, cand_out):
        r, c = np.concatenate(r), np.concatenate(c)
        err = c - r
        noise = float(np.mean(err ** 2))
        signal = float(np.mean(r ** 2))
        sqnr = 10 * np.log10(signal / noise) if noise > 0 and signal > 0 else float("inf")
        result.append(OutputAgreement(name, float(np.abs(err).mean()), float(np.abs(err).max()),
                                      float(r.max() - r.min()), float(sqnr)))
    return result


def kernel_step_differences(path: str | Path, images: Iterable[np.ndarray]) -> list[tuple[float, float]]:
    """(mean, max) output difference per output, in quantisation steps, between the default delegate and the reference kernels.

    A one-step rounding difference early in a deep int8 net can grow to many steps on a
    few elements, so the mean is the telling number; compare detections for the rest.
    """
    fast, reference = TFLiteModel(Path(path), 1), TFLiteModel(Path(path), 1, reference_kernels=True)
    diffs: list[list[np.ndarray]] = [[] for _ in fast.outputs]
    for image in images:
        for k, (a, b, spec) in enumerate(zip(real_outputs(fast, image), real_outputs(reference, image), fast.outputs)):
            diffs[k].append(np.abs(a - b).reshape(-1) / (spec.scale or 1.0))
    return [(float(np.concatenate(d).mean()), float(np.concatenate(d).max())) for d in diffs]


def time_invoke(paths: Sequence[str | Path], num_threads: int = 1, runs: int = 100, rounds: int = 3) -> list[float]:
    """Median wall time of one model run per model in ms (default delegates, random input): the
    invoke plus the copy of the outputs, as the app pays it.

    Models take turns in rounds so that a burst of load on a shared machine hits all of them.
    """
    models = [TFLiteModel(Path(path), num_threads) for path in paths]
    rng = np.random.default_rng(0)
    inputs = []
    for model in models:
        (spec,) = model.inputs
        inputs.append([spec.quantize(rng.uniform(-1, 1, spec.shape).astype(np.float32))])
        for _ in range(5):
            model.run(inputs[-1])
    times: list[list[float]] = [[] for _ in models]
    for _ in range(rounds):
        for model, x, samples in zip(models, inputs, times):
            for _ in range(runs // rounds or 1):
                start = time.perf_counter()
                model.run(x)
                samples.append((time.perf_counter() - start) * 1000)
    return [statistics.median(samples) for samples in times]


@dataclass
class Agreement:
    """How an INT8 detector's detections compare with the float model's on the same images."""

    images: int
    float_detections: int
    matched: int
    missed: int
    extra: int
    score_abs_diff_mean: float
    score_abs_diff_max: float
    box_err_px_mean: float
    box_err_px_p95: float
    box_err_px_max: float
    keypoint_err_px_mean: float
    keypoint_err_px_p95: float
    iou_mean: float
    iou_min: float
    keypoint_box_iou_mean: float | None = None
    keypoint_box_iou_min: float | None = None

    def describe(self) -> str:
        """One-paragraph summary."""
        keypoint_box = ""
        if self.keypoint_box_iou_mean is not None:
            keypoint_box = (
                f"; keypoint-derived box IoU mean {self.keypoint_box_iou_mean:.3f} min {self.keypoint_box_iou_min:.3f}"
            )
        return (
            f"{self.images} images, {self.float_detections} float detections: {self.matched} matched, "
            f"{self.missed} missed, {self.extra} extra; |score diff| mean {self.score_abs_diff_mean:.3f} "
            f"max {self.score_abs_diff_max:.3f}; box error (px of input) mean {self.box_err_px_mean:.2f} "
            f"p95 {self.box_err_px_p95:.2f} max {self.box_err_px_max:.2f}; keypoints mean "
            f"{self.keypoint_err_px_mean:.2f} p95 {self.keypoint_err_px_p95:.2f}; IoU mean {self.iou_mean:.3f} "
            f"min {self.iou_min:.3f}{keypoint_box}"
        )


def keypoint_square(keypoints: np.ndarray, centre: int = 0, edge: int = 1) -> np.ndarray:
    """Square boxes xyxy (n, 4) centred on one keypoint with half-side its distance to another."""
    middle = keypoints[:, centre]
    radius = np.linalg.norm(keypoints[:, edge] - middle, axis=1, keepdims=True)
    return np.concatenate([middle - radius, middle + radius], axis=1)


def _detections(model: Model, image: np.ndarray, anchors: np.ndarray, logits: bool, threshold: float,
                input_size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, keypoints and scores of every anchor, and the indices NMS keeps above threshold, best first."""
    outputs = sorted(real_outputs(model, image), key=lambda a: a.shape[-1])
    scores = outputs[0].reshape(-1)
    if logits:
        scores = 1.0 / (1.0 + np.exp(-np.clip(scores, -80, 80)))
    regressors = outputs[-1].reshape(len(anchors), -1)
    boxes = anchor_boxes(regressors, anchors, (input_size, input_size))
    keypoints = anchor_keypoints(regressors, anchors, (input_size, input_size))
    candidates = np.flatnonzero(scores >= threshold)
    keep = candidates[nms(boxes[candidates], scores[candidates], 0.3)]
    return boxes, keypoints, scores, keep


def compare_detectors(
    reference: Model,
    candidate: Model,
    images: Iterable[np.ndarray],
    anchors: np.ndarray,
    *,
    threshold: float = 0.5,
    input_size: float = 224.0,
    reference_logits: bool = True,
    candidate_logits: bool = False,
    keypoint_box: tuple[int, int] | None = None,
) -> Agreement:
    """Detections after NMS (IoU 0.3) of candidate vs reference, matched by IoU >= 0.5; errors in input pixels.

    The regressor output is the one with the most values per anchor, the score output the one with one.
    keypoint_box=(centre, edge) also compares the square box centred on keypoint `centre` with
    half-side |edge - centre| (how BlazePose's person region is derived).
    """
    float_count = matched = missed = extra = 0
    images_seen = 0
    score_diffs: list[float] = []
    box_errs: list[np.ndarray] = []
    kp_errs: list[np.ndarray] = []
    ious: list[float] = []
    keypoint_ious: list[float] = []
    for image in images:
        images_seen += 1
        rb, rk, rs, rkeep = _detections(reference, image, anchors, reference_logits, threshold, input_size)
        cb, ck, cs, ckeep = _detections(candidate, image, anchors, candidate_logits, threshold, input_size)
        float_count += len(rkeep)
        if len(rkeep) and len(ckeep):
            overlaps = iou(rb[rkeep], cb[ckeep])
        else:
            overlaps = np.zeros((len(rkeep), len(ckeep)))
        used: set[int] = set()
        for r in range(len(rkeep)):
            candidates = [c for c in np.argsort(-overlaps[r]) if c not in used and overlaps[r, c] >= 0.5]
            if not candidates:
                missed += 1
                continue
            c = candidates[0]
            used.add(c)
            matched += 1
            ra, ca = rkeep[r], ckeep[c]
            score_diffs.append(abs(float(rs[ra] - cs[ca])))
            box_errs.append(np.abs(rb[ra] - cb[ca]) * input_size)
            kp_errs.append(np.linalg.norm(rk[ra] - ck[ca], axis=1) * input_size)
            ious.append(float(overlaps[r, c]))
            if keypoint_box is not None:
                pair = keypoint_square(np.stack([rk[ra], ck[ca]]), *keypoint_box)
                keypoint_ious.append(float(iou(pair[:1], pair[1:])[0, 0]))
        extra += len(ckeep) - len(used)
    box = np.concatenate(box_errs) if box_errs else np.zeros(1)
    kps = np.concatenate(kp_errs) if kp_errs else np.zeros(1)
    return Agreement(
        images=images_seen,
        float_detections=float_count,
        matched=matched,
        missed=missed,
        extra=extra,
        score_abs_diff_mean=float(np.mean(score_diffs)) if score_diffs else 0.0,
        score_abs_diff_max=float(np.max(score_diffs)) if score_diffs else 0.0,
        box_err_px_mean=float(box.mean()),
        box_err_px_p95=float(np.percentile(box, 95)),
        box_err_px_max=float(box.max()),
        keypoint_err_px_mean=float(kps.mean()),
        keypoint_err_px_p95=float(np.percentile(kps, 95)),
        iou_mean=float(np.mean(ious)) if ious else 0.0,
        iou_min=float(np.min(ious)) if ious else 0.0,
        keypoint_box_iou_mean=float(np.mean(keypoint_ious)) if keypoint_ious else None,
        keypoint_box_iou_min=float(np.min(keypoint_ious)) if keypoint_ious else None,
    )
