"""What a .tflite file declares, read once: its tensors and its operator graph.

`read_model(path)` is the one TFLite reader of the app: the ACAP Runtime backend takes the I/O
tensors from it, `vigil check-model` the operator graph, `vigil quantize` both. `TensorSpec` is
the one tensor description: the TFLite backend builds the same one from its interpreter.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ModelError

log = logging.getLogger(__name__)

TFLITE_MAGIC = b"TFL3"

# TFLite tensor type name -> numpy; types numpy lacks (STRING, RESOURCE, INT4, ...) have no dtype
NUMPY_TYPES: dict[str, type] = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT8": np.int8, "UINT8": np.uint8,
    "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32, "UINT32": np.uint32, "INT64": np.int64,
    "UINT64": np.uint64, "BOOL": np.bool_, "COMPLEX64": np.complex64, "COMPLEX128": np.complex128,
}
_TYPE_OF_DTYPE = {np.dtype(v): k for k, v in NUMPY_TYPES.items()}
FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64")
# small integer constants (axes, pads, shapes, scalar operands) keep their values for the DLPU rules
_KEPT_CONSTANT_TYPES = ("INT8", "UINT8", "INT16", "INT32", "INT64")
_KEPT_CONSTANT_BYTES = 256
WEIGHTED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"})


class NotAModel(ModelError):
    """The file is missing, not a TFLite flatbuffer, or damaged."""


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One tensor of a model: name, shape, type and quantisation (per tensor, and every scale for per-channel)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype | None  # None for TFLite types numpy has no counterpart of
    scale: float = 0.0  # per-tensor scale; 0 means not quantised (or per-channel: see scales)
    zero_point: int = 0
    scales: tuple[float, ...] = ()  # every scale: one, or one per channel
    zero_points: tuple[int, ...] = ()
    type: str = ""  # TFLite type name, e.g. "INT8"; taken from dtype when not given
    index: int = -1  # position in the file's tensors (unique across graphs); -1 when not from a file
    const: bool = False  # holds constant data (weights, biases, shapes)
    data: np.ndarray | None = field(default=None, compare=False, repr=False)  # values of small integer constants

    def __post_init__(self) -> None:
        # frozen: fill the derived fields through object.__setattr__
        if not self.type and self.dtype is not None:
            object.__setattr__(self, "type", _TYPE_OF_DTYPE.get(np.dtype(self.dtype), str(self.dtype).upper()))
        if not self.scales and self.scale:
            object.__setattr__(self, "scales", (float(self.scale),))
            object.__setattr__(self, "zero_points", (int(self.zero_point),))

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype is not None and np.issubdtype(self.dtype, np.integer)

    @property
    def is_float(self) -> bool:
        return self.type in FLOAT_TYPES

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Real values of a raw output tensor: (q - zero_point) * scale, or as-is when float."""
        if not self.quantized:
            return np.asarray(q, np.float32)
        return (q.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Raw tensor in this spec's dtype from real values, rounding and saturating."""
        if not self.quantized:
            return np.asarray(x, self.dtype)
        info = np.iinfo(self.dtype)
        q = np.round(np.asarray(x, np.float64) / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def describe(self) -> str:
        """One line such as 'input_1 [1,224,224,3] INT8 scale=0.00784 zp=-1'."""
        shape = ",".join(str(d) for d in self.shape)
        quant = ""
        if len(self.scales) == 1:
            quant = f" scale={self.scales[0]:.9g} zp={self.zero_points[0]}"
        elif self.scales:
            quant = f" {len(self.scales)} scales"
        return f"{self.name} [{shape}] {self.type}{quant}"


@dataclass
class Operator:
    """One operator of a graph with its tensors and builtin options."""

    index: int  # position over every graph, the main graph's first
    name: str  # builtin name, e.g. "CONV_2D", or the custom code
    custom: bool
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    options: Any | None  # the flatbuffer's builtin options object (e.g. Conv2DOptionsT), None if none
    subgraph: int = 0  # 0 the main graph; others are WHILE/IF/CALL_ONCE bodies

    @property
    def weights(self) -> TensorSpec | None:
        return self.inputs[1] if self.name in WEIGHTED_OPS and len(self.inputs) > 1 else None

    def activations(self) -> list[TensorSpec]:
        """Non-constant inputs and outputs."""
        return [t for t in self.inputs + self.outputs if not t.const]

    def shape_arithmetic(self) -> bool:
        """Only int32/int64 tensors flow through it (shapes, indices), no INT8 data."""
        acts = self.activations()
        return bool(acts) and all(t.type in ("INT32", "INT64") for t in acts)


@dataclass
class ModelFile:
    """A .tflite file's main-graph inputs and outputs and every graph's operators."""

    path: Path
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    operators: list[Operator]

    def io_specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        """Inputs and outputs for a backend; ModelError if one has a type numpy cannot hold."""
        for t in self.inputs + self.outputs:
            if t.dtype is None:
                raise ModelError(f"{self.path}: tensor {t.name!r} has unsupported type {t.type}")
        return list(self.inputs), list(self.outputs)

    def main_operators(self) -> list[Operator]:
        """The main graph's operators, in execution order."""
        return [op for op in self.operators if op.subgraph == 0]


def check_model_file(path: str | Path) -> Path:
    """Fail with a clear ModelError unless `path` is a readable TFLite flatbuffer."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model not found: {p}")
    with p.open("rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != TFLITE_MAGIC:
        raise ModelError(f"not a TFLite model (no TFL3 identifier): {p}")
    return p


def parse_flatbuffer(data: bytes | bytearray) -> Any:
    """A .tflite file's bytes as the schema's mutable object tree (`ModelT`)."""
    # Deferred: ai-edge-litert's schema is needed only when a file is read (not by the TFLite
    # backend, and armv7's tflite-runtime has none), and a camera run need not pay the import.
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    # The deprecated metadata_buffer list is not remapped when the reader compacts
    # buffers, so it can point at the wrong buffers; the metadata table covers it.
    model.metadataBuffer = None
    return model


def op_name(code: int) -> str:
    """Name of a builtin operator code, e.g. 3 -> 'CONV_2D'."""
    return _names("BuiltinOperator").get(code, f"BUILTIN_{code}")


def type_name(tensor_type: int) -> str:
    """Name of a TFLite tensor type, e.g. 9 -> 'INT8'."""
    return _names("TensorType").get(tensor_type, f"TYPE_{tensor_type}")


_NAME_TABLES: dict[str, dict[int, str]] = {}


def _names(enum: str) -> dict[int, str]:
    if enum not in _NAME_TABLES:
        from ai_edge_litert import schema_py_generated as schema  # deferred as in parse_flatbuffer

        _NAME_TABLES[enum] = {v: k for k, v in vars(getattr(schema, enum)).items() if not k.startswith("_")}
    return _NAME_TABLES[enum]


def as_str(value: bytes | str | None) -> str:
    """Flatbuffer string (bytes) as str."""
    return value.decode() if isinstance(value, bytes) else str(value or "")


def builtin_code(model: Any, op: Any) -> int:
    """Builtin operator code of an operator, whichever opcode field holds it."""
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def read_model(path: str | Path) -> ModelFile:
    """Read a .tflite file: main-graph I/O tensors and every graph's operators (tensor indices unique
    across graphs). NotAModel if it is missing, not TFLite or damaged."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise NotAModel(f"cannot read {p}: {e.strerror}") from None
    if len(data) < 8 or data[4:8] != TFLITE_MAGIC:
        raise NotAModel(f"{p} is not a TFLite model (no TFL3 identifier)")
    try:
        model = parse_flatbuffer(data)
    except Exception as e:  # a damaged flatbuffer fails anywhere in the reader, with the reader's words
        log.debug("reading %s: %s: %s", p, type(e).__name__, e)
        raise NotAModel(f"{p} is a damaged TFLite model: cut short or corrupted, its {len(data):,} bytes do not "
                        "parse (--debug logs where)") from None
    if not model.subgraphs:
        raise NotAModel(f"{p} has no graph")

    def tensor(graph: Any, offset: int, i: int) -> TensorSpec:
        t = graph.tensors[i]
        q = t.quantization
        scales = tuple(float(s) for s in q.scale) if q is not None and q.scale is not None else ()
        zero_points = tuple(int(z) for z in q.zeroPoint) if q is not None and q.zeroPoint is not None else ()
        buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        const = buf is not None and ((buf.data is not None and len(buf.data) > 0) or (buf.offset or 0) > 1)
        tname = type_name(t.type)
        values = None
        if const and tname in _KEPT_CONSTANT_TYPES and buf.data is not None and len(buf.data) <= _KEPT_CONSTANT_BYTES:
            raw = bytes(buf.data)
            if len(raw) % np.dtype(NUMPY_TYPES[tname]).itemsize == 0:
                values = np.frombuffer(raw, NUMPY_TYPES[tname])
        shape = tuple(int(s) for s in t.shape) if t.shape is not None else ()
        dtype = np.dtype(NUMPY_TYPES[tname]) if tname in NUMPY_TYPES else None
        return TensorSpec(
            as_str(t.name), shape, dtype,
            scale=scales[0] if len(scales) == 1 else 0.0,
            zero_point=zero_points[0] if len(zero_points) == 1 else 0,
            scales=scales, zero_points=zero_points, type=tname, index=offset + i, const=const, data=values,
        )

    ops: list[Operator] = []
    offset = 0
    for g, graph in enumerate(model.subgraphs):
        for op in graph.operators or []:
            builtin = builtin_code(model, op)
            custom = op_name(builtin) == "CUSTOM"
            name = as_str(model.operatorCodes[op.opcodeIndex].customCode) if custom else op_name(builtin)
            ins = [tensor(graph, offset, i) for i in (op.inputs if op.inputs is not None else []) if i >= 0]
            outs = [tensor(graph, offset, i) for i in (op.outputs if op.outputs is not None else []) if i >= 0]
            ops.append(Operator(len(ops), name, custom, ins, outs, op.builtinOptions, g))
        offset += len(graph.tensors or [])
    main = model.subgraphs[0]
    inputs = [tensor(main, 0, i) for i in main.inputs]
    outputs = [tensor(main, 0, i) for i in main.outputs]
    return ModelFile(p, inputs, outputs, ops)
