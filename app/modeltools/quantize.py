"""Calibrate float TFLite models and quantise them to full-integer INT8 with ai-edge-quantizer."""
from __future__ import annotations

import copy
import hashlib
import logging
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ai_edge_quantizer import algorithm_manager, calibrator, qtyping, quantizer, recipe_manager
from ai_edge_quantizer.utils import qsv_utils

from app.errors import ConfigError
from app.modelfile import WEIGHTED_OPS, TensorSpec, read_model
from app.modeltools import flatbuffer as fb
from app.modeltools import graph_edits as edits

log = logging.getLogger(__name__)

Granularity = Literal["per-tensor", "per-channel"]
GRANULARITIES: dict[str, qtyping.QuantGranularity] = {
    "per-tensor": qtyping.QuantGranularity.TENSORWISE,
    "per-channel": qtyping.QuantGranularity.CHANNELWISE,
}
# How weight ranges are chosen: "min-max" keeps every weight; "mse" clips outlier weights
# where that lowers the squared error (helps per-tensor, where one scale serves all channels).
WeightClipping = Literal["min-max", "mse"]
_MSE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
SIGNATURE_KEY = "serving_default"
_PRESERVE_ALL_TENSORS_WARNING = ".*experimental_preserve_all_tensors.*"
# None = keep the calibrated range but give every tensor on the path the same one.
Range = tuple[float, float] | None
QSVs = dict[str, dict[str, Any]]

@dataclass
class QuantizeReport:
    """What quantize_model produced and how it was configured."""

    path: Path
    sha256: str
    size: int
    granularity: str
    num_calibration: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    calibrated_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    forced_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    op_counts: dict[str, int] = field(default_factory=dict)
    float_ops: list[str] = field(default_factory=list)
    # op name -> (number of weight scales, output channels) per op of that kind
    weight_scales: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def weights_per_tensor(self) -> bool:
        """True if every convolution / fully-connected weight has exactly one scale."""
        return all(n == 1 for pairs in self.weight_scales.values() for n, _ in pairs)

    def weights_per_channel(self) -> bool:
        """True if every convolution / fully-connected weight has one scale per output channel."""
        return all(n == c for pairs in self.weight_scales.values() for n, c in pairs)


def prepare_float_model(
    source: str | Path | bytes,
    *,
    sigmoid_outputs: Mapping[str, str] | None = None,
    signature_outputs: Mapping[str, str] | None = None,
    drop_metadata: Iterable[str] = ("TFLITE_METADATA",),
) -> bytes:
    """Apply the generic repairs so ai-edge-quantizer accepts a float model; return the repaired bytes.

    sigmoid_outputs maps a float logit output to the name of an appended LOGISTIC output;
    signature_outputs maps final output tensor names to serving_default signature keys.
    """
    model = fb.load_model(source)
    changed = fb.normalise_opcodes(model)
    if changed:
        log.info("copied builtin codes into %d operator codes", changed)
    edits.materialise_constant_weights(model)
    for name in edits.finite_max_pool_pads(model):
        log.warning("PADV2 %s padded a max pool with -inf (breaks INT8 calibration); padding with 0 instead, "
                    "which is exact after a ReLU", name)
    # Stale metadata (e.g. MediaPipe's, which describes float I/O) would mislead readers of an INT8 file.
    dropped = fb.drop_metadata(model, drop_metadata)
    if dropped:
        log.info("dropped %d metadata entries", dropped)
    for output, new_name in (sigmoid_outputs or {}).items():
        edits.append_logistic(model, output, new_name)
    fb.set_signature(model, SIGNATURE_KEY, output_keys=signature_outputs)
    return fb.serialize(model)


def _recipe(granularity: str, weight_clipping: str = "min-max") -> recipe_manager.RecipeManager:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {sorted(GRANULARITIES)} (got {granularity!r})")
    if weight_clipping not in ("min-max", "mse"):
        raise ValueError(f"weight_clipping must be 'min-max' or 'mse' (got {weight_clipping!r})")
    manager = recipe_manager.RecipeManager()
    manager.add_static_config(".*", "*", 8, 8, GRANULARITIES[granularity])
    if weight_clipping == "mse":
        # Activations keep min/max; only the weight ranges of these ops change.
        for op in _MSE_OPS:
            manager.add_static_config(".*", op, 8, 8, GRANULARITIES[granularity], algorithm_manager.AlgorithmName.MSE)
    return manager


def _samples(model_bytes: bytes, inputs: Iterable[np.ndarray | Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    model = fb.load_model(model_bytes)
    signature = next(s for s in model.signatureDefs if fb.as_str(s.signatureKey) == SIGNATURE_KEY)
    tensors = model.subgraphs[signature.subgraphIndex].tensors
    keys = [(fb.as_str(m.name), tensors[m.tensorIndex].shape) for m in signature.inputs]
    samples = []
    for item in inputs:
        if not isinstance(item, Mapping):
            if len(keys) != 1:
                raise ValueError("model has several inputs: pass a mapping of input name to array")
            item = {keys[0][0]: item}
        sample = {}
        for key, shape in keys:
            array = np.asarray(item[key], np.float32)
            sample[key] = array.reshape(shape) if array.ndim == len(shape) - 1 else array
        samples.append(sample)
    return samples


def calibrate(model_bytes: bytes, inputs: Iterable[np.ndarray | Mapping[str, np.ndarray]]) -> QSVs:
    """Record the true minimum and maximum of every tensor over the calibration inputs."""
    samples = _samples(model_bytes, inputs)
    if not samples:
        raise ValueError("no calibration inputs")
    # The default moving average (0.95) forgets rare extremes: on MediaPipe's pose
    # detector it pinned the score range to <= 0 and nothing was ever detected.
    with warnings.catch_warnings():
        # Keeping every intermediate is exactly what calibration needs; the warning is noise.
        warnings.filterwarnings("ignore", message=_PRESERVE_ALL_TENSORS_WARNING)
        calib = calibrator.Calibrator(
            model_bytes, num_threads=os.cpu_count() or 1, qsv_update_func=qsv_utils.min_max_update
        )
    calib.calibrate({SIGNATURE_KEY: samples}, _recipe("per-tensor"))
    log.info("calibrated on %d samples", len(samples))
    return calib.get_model_qsvs()


def recorded_range(qsvs: QSVs, name: str) -> tuple[float, float]:
    """Calibrated (min, max) of a tensor over all elements."""
    return float(np.min(qsvs[name]["min"])), float(np.max(qsvs[name]["max"]))


def force_ranges(model_bytes: bytes, qsvs: QSVs, ranges: Mapping[str, Range]) -> dict[str, tuple[float, float]]:
    """Set the range of each named tensor and of every tensor feeding it through shape-only ops; return what was set.

    A range of None keeps the union of the calibrated ranges on that path. Giving the
    path one range avoids requantize steps before CONCATENATION.
    """
    model = fb.load_model(model_bytes)
    applied: dict[str, tuple[float, float]] = {}
    for name, forced in ranges.items():
        path = [n for n in fb.feeding_tensors(model, name) if n in qsvs]
        if forced is None:
            lows, highs = zip(*(recorded_range(qsvs, n) for n in path))
            forced = (min(lows), max(highs))
        lo, hi = float(forced[0]), float(forced[1])
        if not lo < hi:
            raise ValueError(f"range for {name!r} must have min < max (got {forced})")
        for tensor in path:
            qsvs[tensor] = {
                **qsvs[tensor],
                "min": np.full_like(qsvs[tensor]["min"], lo),
                "max": np.full_like(qsvs[tensor]["max"], hi),
            }
        applied[name] = (lo, hi)
        log.info("range of %s and %d feeding tensors set to [%g, %g]", name, len(path) - 1, lo, hi)
    return applied


def quantize_calibrated(
    model_bytes: bytes, qsvs: QSVs, granularity: Granularity, weight_clipping: WeightClipping = "min-max"
) -> bytes:
    """Quantise a prepared float model with given ranges to full-integer INT8; return the .tflite bytes."""
    recipe = _recipe(granularity, weight_clipping).get_quantization_recipe()
    quant = quantizer.Quantizer(bytearray(model_bytes), recipe)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PRESERVE_ALL_TENSORS_WARNING)
        # The quantizer fills its own copies of the statistics; keep the caller's intact.
        result = quant.quantize(copy.deepcopy(qsvs), enable_progress_bar=False, enable_progress_report=False)
    model = fb.load_model(result.quantized_model)
    islands = edits.integerise_float_islands(model)
    if islands:
        log.info("moved %d float data-movement ops to int8", islands)
    requantize = edits.drop_identity_requantize(model)
    if requantize:
        log.info("removed %d requantize ops with equal input and output parameters", requantize)
    # The quantizer writes new opcodes with builtin_code only; parsers that read the
    # deprecated field then see its default, 0 = ADD.
    fb.normalise_opcodes(model)
    fb.drop_unused_opcodes(model)
    return fb.serialize(model)


def quantize_model(
    float_path: str | Path,
    out_path: str | Path,
    calibration_inputs: Iterable[np.ndarray | Mapping[str, np.ndarray]],
    granularity: Granularity = "per-tensor",
    *,
    weight_clipping: WeightClipping = "min-max",
    output_ranges: Mapping[str, Range] | None = None,
    sigmoid_outputs: Mapping[str, str] | None = None,
    signature_outputs: Mapping[str, str] | None = None,
) -> QuantizeReport:
    """Repair, calibrate (min/max) and quantise a float .tflite to full-integer INT8 at out_path.

    output_ranges maps float tensor names (typically outputs, or a logit output that a
    sigmoid is appended to) to a forced (min, max), or None to only unify the path's range.
    """
    prepared = prepare_float_model(float_path, sigmoid_outputs=sigmoid_outputs, signature_outputs=signature_outputs)
    inputs = list(calibration_inputs)
    qsvs = calibrate(prepared, inputs)
    calibrated = {name: recorded_range(qsvs, name) for name in output_ranges or {}}
    forced = force_ranges(prepared, qsvs, output_ranges or {})
    out = write_model(quantize_calibrated(prepared, qsvs, granularity, weight_clipping), out_path)
    report = describe_model(out, granularity=granularity, num_calibration=len(inputs))
    report.calibrated_ranges, report.forced_ranges = calibrated, forced
    return report


def write_model(data: bytes, path: str | Path) -> Path:
    """Write model bytes, creating the directory; return the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as e:  # a full disk, a read-only or missing place: one line, exit 2
        raise ConfigError(f"cannot write model {path}: {e.strerror or e}") from None
    return path


def describe_model(path: str | Path, *, granularity: str = "", num_calibration: int = 0) -> QuantizeReport:
    """Read back a quantised model: I/O specs, op counts, float ops left and weight scale counts."""
    model = read_model(path)
    ops: Counter[str] = Counter()
    float_ops: list[str] = []
    scales: dict[str, list[tuple[int, int]]] = {}
    for op in model.main_operators():
        ops[op.name] += 1
        if any(t.type == "FLOAT32" and not t.const for t in op.inputs + op.outputs):
            float_ops.append(f"{op.index}:{op.name}")
        if op.name in WEIGHTED_OPS:
            weights = op.weights
            # Output channels are the last filter axis for depthwise, the first otherwise.
            channels = int(weights.shape[3 if op.name == "DEPTHWISE_CONV_2D" else 0])
            scales.setdefault(op.name, []).append((len(weights.scales), channels))
    data = Path(path).read_bytes()
    return QuantizeReport(
        path=Path(path),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        granularity=granularity,
        num_calibration=num_calibration,
        inputs=model.inputs,
        outputs=model.outputs,
        op_counts=dict(sorted(ops.items())),
        float_ops=float_ops,
        weight_scales=scales,
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
