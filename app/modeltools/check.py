"""Check a quantised SSD-style detector against its float original: run, decode, compare, time."""
from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from app.decoders.mediapipe import AnchorOptions, generate_anchors
from app.ops import iou_matrix as iou
from app.ops import nms as greedy_nms


def ssd_anchors(input_size: int = 224) -> np.ndarray:
    """The BlazePose detector's anchors (2254, 4) as normalised [x_centre, y_centre, w, h]."""
    return generate_anchors(AnchorOptions(), input_size, input_size)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, input_size: float = 224.0) -> tuple[np.ndarray, np.ndarray]:
    """Raw regressors (n, 4+2k) to normalised boxes xyxy (n, 4) and keypoints (n, k, 2), x first."""
    raw = raw.reshape(len(anchors), -1) / input_size
    centre = raw[:, 0:2] * anchors[:, 2:4] + anchors[:, 0:2]
    size = raw[:, 2:4] * anchors[:, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keypoints = raw[:, 4:].reshape(len(anchors), -1, 2) * anchors[:, None, 2:4] + anchors[:, None, 0:2]
    return boxes, keypoints


def keypoint_square(keypoints: np.ndarray, centre: int = 0, edge: int = 1) -> np.ndarray:
    """Square boxes xyxy (n, 4) centred on one keypoint with half-side its distance to another."""
    middle = keypoints[:, centre]
    radius = np.linalg.norm(keypoints[:, edge] - middle, axis=1, keepdims=True)
    return np.concatenate([middle - radius, middle + radius], axis=1)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, iou_threshold: float = 0.3) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression over scores >= threshold, best first."""
    candidates = np.flatnonzero(scores >= threshold)
    return candidates[greedy_nms(boxes[candidates], scores[candidates], iou_threshold)]


class Runner:
    """A TFLite model that takes and returns float arrays, whatever its I/O types."""

    def __init__(self, path: str | Path, num_threads: int = 1, reference_kernels: bool = False) -> None:
        self.path = Path(path)
        resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if reference_kernels else OpResolverType.AUTO
        self.interpreter = Interpreter(
            model_path=str(path), num_threads=num_threads, experimental_op_resolver_type=resolver
        )
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = self.interpreter.get_output_details()

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        """Outputs (float, dequantised) for one float input, in the model's output order."""
        self.set_input(image)
        self.interpreter.invoke()
        return [self._dequantised(d) for d in self.outputs]

    def set_input(self, image: np.ndarray) -> None:
        """Quantise (if needed) and set the single input."""
        dtype, (scale, zero_point) = self.input["dtype"], self.input["quantization"]
        value = np.asarray(image, np.float32).reshape(self.input["shape"])
        if dtype != np.float32:
            info = np.iinfo(dtype)
            value = np.clip(np.round(value / scale) + zero_point, info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], value.astype(dtype))

    def _dequantised(self, detail: dict) -> np.ndarray:
        value = self.interpreter.get_tensor(detail["index"])
        scale, zero_point = detail["quantization"]
        if detail["dtype"] == np.float32:
            return value.astype(np.float32)
        return (value.astype(np.float32) - zero_point) * scale


def kernel_step_differences(path: str | Path, images: Iterable[np.ndarray]) -> list[tuple[float, float]]:
    """(mean, max) output difference per output, in quantisation steps, between the default delegate and the reference kernels.

    A one-step rounding difference early in a deep int8 net can grow to many steps on a
    few elements, so the mean is the telling number; compare detections for the rest.
    """
    fast, reference = Runner(path), Runner(path, reference_kernels=True)
    diffs: list[list[np.ndarray]] = [[] for _ in fast.outputs]
    for image in images:
        for k, (a, b, detail) in enumerate(zip(fast(image), reference(image), fast.outputs)):
            diffs[k].append(np.abs(a - b).reshape(-1) / (detail["quantization"][0] or 1.0))
    return [(float(np.concatenate(d).mean()), float(np.concatenate(d).max())) for d in diffs]


def time_invoke(paths: Sequence[str | Path], num_threads: int = 1, runs: int = 100, rounds: int = 3) -> list[float]:
    """Median wall time of one invoke per model in ms (default delegates, random input).

    Models take turns in rounds so that a burst of load on a shared machine hits all of them.
    """
    runners = [Runner(path, num_threads) for path in paths]
    rng = np.random.default_rng(0)
    for runner in runners:
        runner.set_input(rng.uniform(-1, 1, runner.input["shape"]).astype(np.float32))
        for _ in range(5):
            runner.interpreter.invoke()
    times: list[list[float]] = [[] for _ in runners]
    for _ in range(rounds):
        for runner, samples in zip(runners, times):
            for _ in range(runs // rounds or 1):
                start = time.perf_counter()
                runner.interpreter.invoke()
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


def compare_detectors(
    reference: Runner,
    candidate: Runner,
    images: Iterable[np.ndarray],
    anchors: np.ndarray,
    *,
    threshold: float = 0.5,
    input_size: float = 224.0,
    reference_logits: bool = True,
    candidate_logits: bool = False,
    keypoint_box: tuple[int, int] | None = None,
) -> Agreement:
    """Detections after NMS of candidate vs reference, matched by IoU >= 0.5; errors in input pixels.

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
        decoded = []
        for runner, logits in ((reference, reference_logits), (candidate, candidate_logits)):
            outputs = sorted(runner(image), key=lambda a: a.shape[-1])
            scores = outputs[0].reshape(-1)
            if logits:
                scores = 1.0 / (1.0 + np.exp(-np.clip(scores, -80, 80)))
            boxes, keypoints = decode_boxes(outputs[-1], anchors, input_size)
            decoded.append((boxes, keypoints, scores, nms(boxes, scores, threshold)))
        (rb, rk, rs, rkeep), (cb, ck, cs, ckeep) = decoded
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


def describe_weight_scales(weight_scales: dict[str, Sequence[tuple[int, int]]]) -> str:
    """Summary such as 'CONV_2D: 45 ops, 1 scale each; DEPTHWISE_CONV_2D: 28 ops, 1 scale per output channel'."""
    parts = []
    for op, pairs in weight_scales.items():
        if all(n == 1 for n, _ in pairs):
            how = "1 scale each"
        elif all(n == c for n, c in pairs):
            how = f"1 scale per output channel ({min(c for _, c in pairs)}-{max(c for _, c in pairs)})"
        else:
            how = "mixed scale counts " + ",".join(str(n) for n, _ in pairs)
        parts.append(f"{op}: {len(pairs)} ops, {how}")
    return "; ".join(parts)
