"""Which ops of a .tflite run on an Axis DLPU and which fall back to the CPU, and why.

Encodes the rules of dlpu-rules.md (the rule ids below are that digest's: G global,
Q quantisation, A7/A8/A9 per chip, CV CV25, T generic TFLite). Each op gets a place with
the rules that decided it: DLPU; CPU (a rule puts it there); CPU? (not in ARTPEC-8's
operator list, which Axis does not say is complete: likely the CPU); I/O (the uint8<->int8
QUANTIZE at the model's edge that Axis's own uint8 recipe makes). Warnings and tips do
not move an op. Exit codes: 0 every op on the DLPU apart from I/O requantisation (or chip
cpu), 1 runs with CPU fallback, 2 nothing would run on the DLPU (float model, uncompiled
Edge TPU model) or not a TFLite file, 3 no rule puts an op on the CPU but some ops are not
in the chip's operator list (likely CPU fallback).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHIPS = ("artpec7", "artpec8", "artpec9", "cv25", "cpu")
CHIP_NAMES = {"artpec7": "ARTPEC-7", "artpec8": "ARTPEC-8", "artpec9": "ARTPEC-9", "cv25": "CV25", "cpu": "CPU"}

# Levels: "cpu" moves the op to the CPU; "unlisted" marks it likely CPU (not in a list not stated complete);
# "io" marks I/O requantisation; "warn" runs but costs speed or accuracy; "tip" is advice; "info" a fact.
LEVELS = ("cpu", "unlisted", "io", "warn", "tip", "info")
# where an op runs, by the strongest level among its findings
PLACES = {"cpu": "CPU", "unlisted": "CPU?", "io": "I/O"}

RULES = {
    "G-01": "DLPUs run integer ops only: float tensors run on the CPU",
    "G-03": "only TFLite built-in int8 ops run on a DLPU: custom ops run on the CPU",
    "G-04": "full-integer quantisation: quantise/dequantise steps inside the graph run on the CPU",
    "G-CF": "control flow (WHILE, IF, CALL_ONCE) is run by the TFLite interpreter on the CPU; "
            "the ops of its bodies are checked like the main graph's",
    "G-INT32": "an op on int32/int64 tensors only (shape arithmetic) is not an INT8 op: the CPU",
    "G-05": "Axis's conversion recipe uses uint8 model input and output (inference_input_type/inference_output_type = tf.uint8)",
    "Q-A7": "per-channel quantisation is recommended on ARTPEC-7 (more accurate, same speed)",
    "Q-A8": "ARTPEC-8 wants per-tensor weights: per-channel ones run much slower (vigil quantize --granularity per-tensor)",
    "Q-A9": "Axis states no quantisation granularity for ARTPEC-9; its model zoo uses per-channel",
    "A7-02": "ARTPEC-7 runs only what the Edge TPU compiler put into its edgetpu-custom-op: compile with edgetpu_compiler",
    "A7-03": "ops the Edge TPU compiler left out run on the CPU",
    "A8-04": "ARTPEC-8: regular convolutions are more efficient than depthwise ones",
    "A8-05": "ARTPEC-8: 3x3 is the optimal kernel size",
    "A8-06": "ARTPEC-8: a stride-2 convolution beats convolution + 2x pooling",
    "A8-07": "ARTPEC-8: filters per convolution should be a multiple of 6",
    "A8-08": "ARTPEC-8: a ReLU fused into the convolution is faster",
    "A8-10": "not in the ARTPEC-8 operator list (Axis does not say the list is complete): likely the CPU",
    "A8-IO": "uint8<->int8 QUANTIZE at the model input/output, as Axis's uint8 recipe makes it (seed 003): "
             "I/O requantisation, not counted as CPU fallback (QUANTIZE is not in the ARTPEC-8 list)",
    "A9-G01": "ARTPEC-9: tensors of rank > 4 run on the CPU",
    "A9-G02": "ARTPEC-9: batch > 1 runs on the CPU (dimension 0 of a 4-D tensor or of a fully-connected input)",
    "A9-G04": "ARTPEC-9: a tensor too deep for the DLPU's SRAM, which must hold an 8x8xC chunk (Arm's "
              "IsTensorDepthSupported; 448 KB to 2 MB by Ethos-N78 variant, ARTPEC-9's is not published)",
    "A9-G05": "ARTPEC-9: use ReLU6 as the activation where possible",
    "A9-G06": "ARTPEC-9: avoid explicit padding",
    "A9-G07": "ARTPEC-9: filters are best a multiple of 16",
    "A9-G09": "not in the ARTPEC-9 operator table",
    "A9-ADD": "ARTPEC-9 add: element by element; a constant of shape 1x1x1xC, or a scalar when the output keeps "
              "the input scale and its zero point moves by -value/scale (Arm's reinterpret-quantization replacement)",
    "A9-AVG": "ARTPEC-9 average pooling: only 3x3 stride 1 SAME, or a 7x7/8x8 mean over the whole input",
    "A9-CAT-1": "ARTPEC-9 concatenation: output scale must be >= input scale / 128",
    "A9-CAT-2": "ARTPEC-9 concatenation along channels: every input's channels a multiple of 16",
    "A9-KERNEL": "ARTPEC-9 convolution kernel height and width must each be 1, 2, 3, 5, 7 or 9",
    "A9-STRIDE": "ARTPEC-9 convolution strides must be 1 or 2 and equal (stride 1 only for kernels > 7)",
    "A9-SCALE": "ARTPEC-9: input scale x weight scale / output scale must be between 0 and 65536",
    "A9-D2S": "ARTPEC-9 depth-to-space: block size 2 and depth a multiple of 4",
    "A9-DW-6": "ARTPEC-9 depthwise convolution: channel multiplier must be 1",
    "A9-LRELU-1": "ARTPEC-9 leaky ReLU: 0 < alpha < 1",
    "A9-MAX": "ARTPEC-9 max pooling: only the listed pool/stride/padding configurations (3x3/2 parities as Arm's code)",
    "A9-MEAN": "ARTPEC-9 mean: only 7x7 or 8x8 over H and W down to 1x1",
    "A9-MUL": "ARTPEC-9 multiply: only by a constant of shape 1x1x1xC, or by a scalar c with output scale = "
              "input scale x c (the quantised values are unchanged: a reinterpretation of the quantisation)",
    "A9-PAD": "ARTPEC-9 pad: zeros, in H and W only, at most 7 per side, same input and output quantisation",
    "A9-REQ-1": "ARTPEC-9 requantize: output scale must be >= input scale / 128",
    "A9-RES-1": "ARTPEC-9 resize: output height and width must be 2n or 2n-1 of the input's",
    "A9-RES-2": "ARTPEC-9 resize: odd/even mismatched output sizes may be less accurate",
    "A9-RES-3": "ARTPEC-9 bilinear resize with align_corners, or half_pixel_centers with mixed parity, is inaccurate",
    "A9-SIG-1": "ARTPEC-9 sigmoid: output zero point must be the type's minimum and scale 1/256",
    "A9-SPLIT-1": "ARTPEC-9 split along channels: every output's channels a multiple of 16",
    "A9-TANH-1": "ARTPEC-9 tanh: output zero point must be the type's middle and scale 1/128",
    "A9-TCONV": "ARTPEC-9 transposed convolution: kernel 1, 2, 3, 5, 7 or 9 and stride 2 only",
    "CV-02": "CV25: model input height and width should be multiples of 32",
    "CV-03": "CV25: the Ambarella compiler quantises the model itself; a float model is fine",
    "CV-04": "CV25 runs its own format: convert the .tflite with the Ambarella toolchain (which ops it maps is not published)",
    "T-03": "input height and width should be multiples of 8 (optimised convolution kernels)",
    "ACAP": "ACAP Runtime cannot select the ARTPEC-9 DLPU (no chip id): a container app runs such a model on the CPU",
}

ARTPEC8_OPS = {
    "FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "MAX_POOL_2D", "AVERAGE_POOL_2D",
    "CONCATENATION", "RESHAPE", "EXPAND_DIMS", "SQUEEZE", "SLICE", "STRIDED_SLICE", "GATHER", "GATHER_ND", "ONE_HOT",
    "SPLIT", "TRANSPOSE", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "CAST", "ADD", "ADD_N", "MUL", "DIV",
    "FLOOR_DIV", "POW", "SQUARE", "SIN", "TANH", "ABS", "NEG", "SQRT", "FLOOR", "MINIMUM", "MAXIMUM", "EQUAL",
    "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "LOGICAL_NOT", "LOGICAL_AND", "LOGICAL_OR", "RELU",
    "RELU6", "SOFTMAX", "GELU", "ELU", "HARD_SWISH", "REDUCE_MIN", "REDUCE_MAX", "REDUCE_ANY", "REDUCE_PROD",
    "ARG_MIN", "ARG_MAX",
}
# TFLite builtins for the 22 ARTPEC-9 operators (name matching is the digest's inference;
# SQUEEZE/EXPAND_DIMS become Reshape in the Arm NN parser)
ARTPEC9_OPS = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTH_TO_SPACE", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
    "LEAKY_RELU", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "PADV2", "QUANTIZE", "RELU", "RELU6", "RELU_N1_TO_1",
    "RELU_0_TO_1", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "LOGISTIC",
    "SPLIT", "SPLIT_V", "TANH", "TRANSPOSE_CONV",
}
INT_DTYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64}
CONTROL_FLOW = {"WHILE", "IF", "CALL_ONCE", "CALL"}
WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"}
ACTIVATIONS = {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU",
               "PRELU", "ELU", "GELU"}
A9_KERNELS = {1, 2, 3, 5, 7, 9}
# total SRAM of the smallest and the largest Ethos-N78 variant (GetEthosN78FwHwCapabilities,
# driver/support_library/src/CapabilitiesInternal.cpp); which variant ARTPEC-9 has is not published
SRAM_BYTES = (448 * 1024, 2048 * 1024)
SAME, VALID = 0, 1
ACT_NONE, ACT_RELU, ACT_RELU6 = 0, 1, 3


class NotAModel(Exception):
    """The file is not a TFLite flatbuffer."""


@dataclass
class Tensor:
    """What the rules need of one tensor."""

    index: int
    name: str
    type: str
    shape: tuple[int, ...]
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    const: bool
    data: np.ndarray | None = None  # constant values (only small int32/int64 tensors are kept)

    @property
    def float(self) -> bool:
        return self.type in ("FLOAT32", "FLOAT16", "FLOAT64")


@dataclass
class Op:
    """One operator with its tensors and options."""

    index: int
    name: str  # builtin name, or the custom code
    custom: bool
    inputs: list[Tensor]
    outputs: list[Tensor]
    options: object | None
    subgraph: int = 0  # 0 the main graph; others are WHILE/IF/CALL_ONCE bodies

    @property
    def weights(self) -> Tensor | None:
        return self.inputs[1] if self.name in WEIGHTED and len(self.inputs) > 1 else None

    def activations(self) -> list[Tensor]:
        """Non-constant inputs and outputs."""
        return [t for t in self.inputs + self.outputs if not t.const]

    def shape_arithmetic(self) -> bool:
        """Only int32/int64 tensors flow through it (shapes, indices), no INT8 data."""
        acts = self.activations()
        return bool(acts) and all(t.type in ("INT32", "INT64") for t in acts)


@dataclass
class Finding:
    rule: str
    level: str
    detail: str = ""
    op: int | None = None


@dataclass
class OpReport:
    index: int
    op: str
    where: str = "DLPU"
    findings: list[Finding] = field(default_factory=list)
    subgraph: int = 0


@dataclass
class Report:
    model: str
    chip: str
    ops: list[OpReport]
    findings: list[Finding]  # model-level and per-op, in order

    def placed(self, where: str) -> list[OpReport]:
        return [o for o in self.ops if o.where == where]

    @property
    def on_dlpu(self) -> int:
        return len(self.placed("DLPU"))

    @property
    def exit_code(self) -> int:
        if self.chip == "cpu":
            return 0
        likely = len(self.placed("CPU?"))
        if not self.ops or (self.on_dlpu == 0 and likely == 0):
            return 2
        if self.placed("CPU"):
            return 1
        return 3 if likely else 0

    def counts(self) -> dict[str, int]:
        c = {level: 0 for level in LEVELS}
        for f in self.findings:
            c[f.level] += 1
        return c

    def summary(self) -> str:
        name = CHIP_NAMES[self.chip]

        def kinds(ops: list[OpReport]) -> str:
            return f" ({', '.join(sorted({o.op for o in ops}))})" if ops else ""

        cpu_ops, likely, io = self.placed("CPU"), self.placed("CPU?"), self.placed("I/O")
        meaning = {0: "fully on the DLPU" if self.chip != "cpu" else "runs on the CPU",
                   1: "runs with CPU fallback", 2: "cannot run on the DLPU",
                   3: "likely CPU fallback: ops not in the operator list"}[self.exit_code]
        c = self.counts()
        where = (f"{self.on_dlpu} on the DLPU"
                 + (f", {len(io)} I/O requantisation{kinds(io)}" if io else "")
                 + (f", {len(likely)} not listed, likely CPU{kinds(likely)}" if likely else "")
                 + f", {len(cpu_ops)} on the CPU{kinds(cpu_ops)}")
        return (f"{name}: {len(self.ops)} ops, {where}; {c['warn']} warning{'s' * (c['warn'] != 1)}, "
                f"{c['tip']} tip{'s' * (c['tip'] != 1)} -> exit {self.exit_code} ({meaning})")

    def table(self) -> str:
        """The readable report: one row per op, grouped findings, a summary line."""
        lines = [f"{self.model}  (chip {CHIP_NAMES[self.chip]})", f"{'#':>4}  {'op':<28} {'where':<5}  rules"]
        for o in self.ops:
            rules = ", ".join(dict.fromkeys(f.rule for f in o.findings))
            name = o.op if not o.subgraph else f"{o.op} [graph {o.subgraph}]"
            lines.append(f"{o.index:>4}  {name[:28]:<28} {o.where:<5}  {rules}")
        groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
        for f in self.findings:
            groups[(f.level, f.rule)].append(f)
        if groups:
            lines.append("findings:")
        for (level, rule), fs in sorted(groups.items(), key=lambda kv: (LEVELS.index(kv[0][0]), kv[0][1])):
            items = [(f"op {f.op} {self.ops[f.op].op}" if f.op is not None else "")
                     + (f" ({f.detail})" if f.detail and f.op is not None else f.detail) for f in fs]
            shown = "; ".join(i.strip() for i in items[:6] if i.strip())
            more = f"; and {len(items) - 6} more" if len(items) > 6 else ""
            lines.append(f"  {level.upper():<8} {rule:<10} {RULES[rule]}" + (f": {shown}{more}" if shown else ""))
        lines.append(f"summary: {self.summary()}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "model": self.model, "chip": self.chip, "exit_code": self.exit_code, "summary": self.summary(),
            "ops": [{"index": o.index, "op": o.op, "where": o.where, "rules": [f.rule for f in o.findings]}
                    | ({"subgraph": o.subgraph} if o.subgraph else {}) for o in self.ops],
            "findings": [{"rule": f.rule, "level": f.level, "op": f.op, "detail": f.detail, "text": RULES[f.rule]}
                         for f in self.findings],
            "counts": {"ops": len(self.ops), "dlpu": self.on_dlpu, "cpu": len(self.placed("CPU")),
                       "likely_cpu": len(self.placed("CPU?")), "io_requantisation": len(self.placed("I/O")),
                       **self.counts()},
        }


# -- reading ------------------------------------------------------------------------------
def read_model(path: str | Path) -> tuple[list[Op], list[Tensor], list[Tensor]]:
    """Every graph's operators (the main graph's first, then WHILE/IF bodies) and the main graph's input and
    output tensors; tensor indices are made unique across graphs."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise NotAModel(f"cannot read {p}: {e.strerror}") from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise NotAModel(f"{p} is not a TFLite model (no TFL3 identifier)")
    from app.modeltools import flatbuffer as fb

    try:
        model = fb.load_model(data)
    except Exception as e:  # a damaged flatbuffer fails anywhere in the reader
        raise NotAModel(f"{p} is a damaged TFLite model: {e}") from None
    if not model.subgraphs:
        raise NotAModel(f"{p} has no graph")

    def tensor(graph, offset: int, i: int) -> Tensor:
        t = graph.tensors[i]
        q = t.quantization
        scales = tuple(float(s) for s in q.scale) if q is not None and q.scale is not None else ()
        zps = tuple(int(z) for z in q.zeroPoint) if q is not None and q.zeroPoint is not None else ()
        buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        const = buf is not None and ((buf.data is not None and len(buf.data) > 0) or (buf.offset or 0) > 1)
        tname = fb.type_name(t.type)
        values = None
        # small integer constants (axes, pads, shapes, scalar operands) are kept for the rules
        if const and tname in INT_DTYPES and buf.data is not None and len(buf.data) <= 256:
            raw = bytes(buf.data)
            if len(raw) % np.dtype(INT_DTYPES[tname]).itemsize == 0:
                values = np.frombuffer(raw, INT_DTYPES[tname])
        shape = tuple(int(s) for s in t.shape) if t.shape is not None else ()
        return Tensor(offset + i, fb.tensor_name(t), tname, shape, scales, zps, const, values)

    ops: list[Op] = []
    offset = 0
    for g, graph in enumerate(model.subgraphs):
        for op in graph.operators or []:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            custom = fb.op_name(builtin) == "CUSTOM"
            name = fb.as_str(code.customCode) if custom else fb.op_name(builtin)
            ins = [tensor(graph, offset, i) for i in (op.inputs if op.inputs is not None else []) if i >= 0]
            outs = [tensor(graph, offset, i) for i in (op.outputs if op.outputs is not None else []) if i >= 0]
            ops.append(Op(len(ops), name, custom, ins, outs, op.builtinOptions, g))
        offset += len(graph.tensors or [])
    main = model.subgraphs[0]
    return ops, [tensor(main, 0, i) for i in main.inputs], [tensor(main, 0, i) for i in main.outputs]


# -- rules ------------------------------------------------------------------------------------
def _hw(t: Tensor) -> tuple[int, int] | None:
    return (t.shape[1], t.shape[2]) if len(t.shape) == 4 else None


def _channels(t: Tensor) -> int | None:
    return t.shape[-1] if t.shape else None


def _kernel(op: Op) -> tuple[int, int] | None:
    w = op.weights
    if w is None or len(w.shape) != 4:
        return None
    return (w.shape[1], w.shape[2])  # CONV/TCONV [out,kh,kw,in], DEPTHWISE [1,kh,kw,out]


def _strides(op: Op) -> tuple[int, int]:
    o = op.options
    return (getattr(o, "strideH", 1) or 1, getattr(o, "strideW", 1) or 1)


def _filters(op: Op) -> int | None:
    w = op.weights
    if w is None or not w.shape:
        return None
    return w.shape[3] if op.name == "DEPTHWISE_CONV_2D" else w.shape[0]


def _channel_axis(op: Op, axis: int, rank: int) -> bool:
    return rank > 0 and (axis % rank) == rank - 1


def _scale_ratios(op: Op) -> list[float]:
    w = op.weights
    data_in = op.inputs[2] if op.name == "TRANSPOSE_CONV" and len(op.inputs) > 2 else op.inputs[0]
    if w is None or not data_in.scales or not w.scales or not op.outputs or not op.outputs[0].scales:
        return []
    i, o = data_in.scales[0], op.outputs[0].scales[0]
    return [i * s / o for s in w.scales] if o else [float("inf")]


def _batch(op: Op) -> int:
    """The batch the Ethos-N sees: dimension 0 of 4-D tensors; of any rank for a fully-connected input.

    Arm NN pads a tensor of rank < 4 to 4-D with the first dimension moved right when it is > 1
    ([2, 64] -> [1, 2, 64, 1]: BuildEthosNTensorShape, armnn-ethos-n-backend/EthosNTensorUtils.cpp), so there
    it is not a batch; a fully-connected layer reads dimension 0 as its batch (IsFullyConnectedSupportedImpl,
    EthosNLayerSupport.cpp, then SupportQueries::IsFullyConnectedSupported: "Batch size must be 1").
    """
    if op.name == "FULLY_CONNECTED" and op.inputs and op.inputs[0].shape:
        return op.inputs[0].shape[0]
    return max((t.shape[0] for t in op.inputs + op.outputs if not t.const and len(t.shape) == 4), default=1)


def _tflite_pads(hw: tuple[int, int], k: tuple[int, int], s: tuple[int, int], same: bool) -> tuple[int, ...]:
    """(top, bottom, left, right) padding TFLite applies: none for VALID; for SAME the total, extra after."""
    if not same:
        return (0, 0, 0, 0)
    pads = []
    for n, kk, ss in zip(hw, k, s):
        total = max((-(-n // ss) - 1) * ss + kk - n, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def _depth_bytes(op: Op) -> int:
    """SRAM an op's deepest tensor needs on the Ethos-N: an 8 x 8 x C chunk of int8, none when W is 1.

    IsTensorDepthSupported (driver/support_library/src/SupportQueries.cpp): the DMA cannot split NHWC in depth,
    so 8 * 8 * C bytes must fit in the SRAM; a width of 1 is exempt (the DMA splits channels as width). A
    fully-connected layer's tensors are [N, 1, 1, C] there (IsFullyConnectedSupportedImpl): always exempt.
    """
    if op.name == "FULLY_CONNECTED":
        return 0
    shapes = [_ethosn_shape(t.shape) for t in op.inputs + op.outputs if not t.const and 0 < len(t.shape) <= 4]
    return max((8 * 8 * s[3] for s in shapes if s[2] != 1), default=0)


def _ethosn_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape as Arm NN gives it to the Ethos-N (BuildEthosNTensorShape): 4-D, padded as _batch says."""
    if len(shape) >= 4:
        return tuple(shape)
    lead = (1,) if shape and shape[0] > 1 else ()
    return (lead + tuple(shape) + (1, 1, 1, 1))[:4]


def _const_value(t: Tensor) -> float | None:
    """The real value of a one-element quantised (or plain integer) constant, None if unknown."""
    if t.data is None or t.data.size != 1:
        return None
    raw = float(t.data.flat[0])
    return (raw - (t.zero_points[0] if t.zero_points else 0)) * t.scales[0] if t.scales else raw


def _io_requantisation(op: Op, edge: set[int]) -> bool:
    """A QUANTIZE between uint8 and int8 that reads a model input or writes a model output."""
    if op.name != "QUANTIZE" or not op.inputs or not op.outputs:
        return False
    i, o = op.inputs[0], op.outputs[0]
    return {i.type, o.type} == {"UINT8", "INT8"} and (i.index in edge or o.index in edge)


def _int_activations(op: Op) -> bool:
    return all(t.type in ("INT8", "UINT8", "INT32", "INT64", "BOOL") for t in op.activations())


class Checker:
    """Applies one chip's rules to every op."""

    def __init__(self, ops: list[Op], graph_io: tuple[list[Tensor], list[Tensor]], chip: str) -> None:
        self.ops, self.chip = ops, chip
        self.inputs, self.outputs = graph_io
        self.reports = [OpReport(o.index, o.name, subgraph=o.subgraph) for o in ops]
        self.findings: list[Finding] = []
        consumers: dict[int, list[Op]] = defaultdict(list)
        producer: dict[int, Op] = {}
        for o in ops:
            for t in o.inputs:
                consumers[t.index].append(o)
            for t in o.outputs:
                producer[t.index] = o
        self.consumers, self.producer = consumers, producer

    def add(self, rule: str, level: str, detail: str = "", op: Op | None = None) -> None:
        f = Finding(rule, level, detail, op.index if op is not None else None)
        self.findings.append(f)
        if op is not None:
            r = self.reports[op.index]
            r.findings.append(f)
            # a stronger place wins: CPU over CPU? over I/O over DLPU
            order = ("DLPU", "I/O", "CPU?", "CPU")
            if level in PLACES and order.index(PLACES[level]) > order.index(r.where):
                r.where = PLACES[level]

    def run(self) -> Report:
        getattr(self, f"_chip_{self.chip}")()
        return Report("", self.chip, self.reports, self.findings)

    # -- shared -----------------------------------------------------------------------
    def _io_rules(self, multiple: int, rule: str) -> None:
        for t in self.inputs:
            hw = _hw(t)
            if hw and (hw[0] % multiple or hw[1] % multiple):
                self.add(rule, "warn", f"input {t.name!r} is {hw[1]}x{hw[0]}")

    def _integer_rules(self) -> None:
        """G-01/G-03/G-04/G-05 for the DLPU chips."""
        custom_made = {t.index for op in self.ops if op.custom for t in op.outputs}
        for t in self.inputs + self.outputs:
            kind = "input" if t in self.inputs else "output"
            if t.type != "UINT8" and t.index not in custom_made:  # a CPU post-process op's float output is expected
                self.add("G-05", "warn", f"{kind} {t.name!r} is {t.type}")
        for op in self.ops:
            if op.custom:
                what = "SSD post-processing: expected on the CPU" if op.name == "TFLite_Detection_PostProcess" else op.name
                self.add("G-03", "cpu", what, op)
                continue
            if op.name in CONTROL_FLOW:
                self.add("G-CF", "cpu", "", op)
                continue
            if op.name == "DEQUANTIZE" and op.inputs and op.inputs[0].const and op.inputs[0].type == "FLOAT16":
                self.add("G-01", "cpu", "float16 weights widened to float32: a float16 model", op)
                continue
            if op.name in ("QUANTIZE", "DEQUANTIZE") and any(t.float for t in op.activations()):
                graph_edge = any(t.index in {x.index for x in self.inputs + self.outputs} for t in op.activations())
                users = self.consumers.get(op.outputs[0].index, [])
                if graph_edge:
                    self.add("G-05", "cpu", "float model input/output converted inside the graph", op)
                elif op.name == "DEQUANTIZE" and users and all(u.custom for u in users):
                    self.add("G-04", "cpu", f"feeds the CPU-only {users[0].name} (expected)", op)
                else:
                    self.add("G-04", "cpu", "float island inside the graph", op)
                continue
            floats = [t for t in op.activations() if t.float]
            if floats:
                w = op.weights
                hybrid = w is not None and w.type in ("INT8", "UINT8")
                self.add("G-01", "cpu", ("weights-only (hybrid) quantisation; " if hybrid else "")
                         + f"float {floats[0].name!r}", op)
            elif any(t.type == "INT16" for t in op.activations()):
                self.add("G-01", "cpu", "int16 activations (the DLPUs are INT8)", op)
            elif op.shape_arithmetic():
                self.add("G-INT32", "cpu", ", ".join(f"{t.type} {list(t.shape)}" for t in op.activations()[:3]), op)

    def _per_channel(self) -> list[Op]:
        return [op for op in self.ops if op.weights is not None and len(op.weights.scales) > 1]

    # -- chips ----------------------------------------------------------------------------
    def _chip_cpu(self) -> None:
        for r in self.reports:
            r.where = "CPU"
        self._io_rules(8, "T-03")

    def _chip_cv25(self) -> None:
        self.add("CV-04", "info")
        if any(op.weights is not None and op.weights.type in ("INT8", "UINT8") for op in self.ops):
            self.add("CV-03", "info", "this model is already quantised")
        for op in self.ops:
            if op.custom:
                self.add("G-03", "cpu", op.name, op)
            elif op.name in CONTROL_FLOW:
                self.add("G-CF", "cpu", "", op)
        self._io_rules(32, "CV-02")

    def _chip_artpec7(self) -> None:
        self._integer_rules()
        compiled = any(op.custom and op.name == "edgetpu-custom-op" for op in self.ops)
        for op in self.ops:
            if op.custom and op.name == "edgetpu-custom-op":
                self.reports[op.index].where = "DLPU"
                self.reports[op.index].findings = [f for f in self.reports[op.index].findings if f.rule != "G-03"]
                self.findings = [f for f in self.findings if not (f.op == op.index and f.rule == "G-03")]
            elif self.reports[op.index].where == "DLPU":
                if compiled:
                    self.add("A7-03", "cpu", "", op)
                else:
                    self.add("A7-02", "cpu", "", op)
        if not self._per_channel() and any(op.weights is not None for op in self.ops):
            self.add("Q-A7", "tip", "weights are per-tensor")
        self._io_rules(8, "T-03")

    def _chip_artpec8(self) -> None:
        self._integer_rules()
        edge = {t.index for t in self.inputs + self.outputs}
        for op in self.ops:
            if self.reports[op.index].where != "DLPU" or op.name in ARTPEC8_OPS:
                continue
            if _io_requantisation(op, edge):
                i, o = op.inputs[0], op.outputs[0]
                exact = (i.scales[:1] == o.scales[:1] and len(i.zero_points) == len(o.zero_points) == 1
                         and abs(i.zero_points[0] - o.zero_points[0]) == 128)
                self.add("A8-IO", "io", f"{i.type} -> {o.type}, {'exact' if exact else 'rescales'}", op)
            else:
                self.add("A8-10", "unlisted", "", op)
        for op in self._per_channel():
            self.add("Q-A8", "warn", f"{len(op.weights.scales)} weight scales", op)
        for op in self.ops:
            if op.name == "DEPTHWISE_CONV_2D":
                self.add("A8-04", "tip", "", op)
            if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
                k = _kernel(op)
                if k and k not in ((3, 3), (1, 1)):
                    self.add("A8-05", "tip", f"{k[0]}x{k[1]}", op)
            if op.name in ("CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"):
                n = _filters(op)
                if n and n % 6:
                    self.add("A8-07", "tip", f"{n} filters", op)
            if op.name in ("MAX_POOL_2D", "AVERAGE_POOL_2D") and _strides(op) == (2, 2):
                prev = self.producer.get(op.inputs[0].index)
                if prev is not None and prev.name == "CONV_2D" and _strides(prev) == (1, 1):
                    self.add("A8-06", "tip", f"after op {prev.index}", op)
            if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                act = getattr(op.options, "fusedActivationFunction", ACT_NONE)
                users = self.consumers.get(op.outputs[0].index, [])
                if act == ACT_NONE and len(users) == 1 and users[0].name in ACTIVATIONS:
                    self.add("A8-08", "tip", f"followed by {users[0].name} (op {users[0].index})", op)
        self._io_rules(8, "T-03")

    def _chip_artpec9(self) -> None:
        self.add("ACAP", "info")
        self._integer_rules()
        if self._per_channel():
            self.add("Q-A9", "info", "weights are per-channel")
        for op in self.ops:
            if self.reports[op.index].where != "DLPU":
                continue
            if op.name not in ARTPEC9_OPS:
                self.add("A9-G09", "cpu", "", op)
                continue
            tensors = [t for t in op.inputs + op.outputs if not t.const]
            if any(len(t.shape) > 4 for t in tensors):
                self.add("A9-G01", "cpu", f"rank {max(len(t.shape) for t in tensors)}", op)
            elif _batch(op) > 1:
                self.add("A9-G02", "cpu", f"batch {_batch(op)}", op)
            elif _depth_bytes(op) > SRAM_BYTES[1]:
                self.add("A9-G04", "cpu", f"8x8xC chunk of {_depth_bytes(op) // 1024} KB > {SRAM_BYTES[1] // 1024} KB, "
                         "the largest Ethos-N78 SRAM", op)
            else:
                getattr(self, f"_a9_{op.name.lower()}", lambda o: None)(op)
            if SRAM_BYTES[0] < _depth_bytes(op) <= SRAM_BYTES[1]:
                self.add("A9-G04", "warn", f"8x8xC chunk of {_depth_bytes(op) // 1024} KB: fits only an Ethos-N78 "
                         f"with more than {SRAM_BYTES[0] // 1024} KB of SRAM", op)
            if op.name in ("CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"):
                n = _filters(op)
                if n and n % 16:
                    self.add("A9-G07", "tip", f"{n} filters", op)
            if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D") and getattr(op.options, "fusedActivationFunction", 0) == ACT_RELU:
                self.add("A9-G05", "tip", "fused ReLU", op)
        self._io_rules(8, "T-03")

    # -- ARTPEC-9 per-operator conditions ------------------------------------------------------
    def _a9_scale(self, op: Op) -> None:
        bad = [r for r in _scale_ratios(op) if not 0 < r < 65536]
        if bad:
            self.add("A9-SCALE", "cpu", f"I*W/O = {bad[0]:.3g}", op)

    def _a9_conv(self, op: Op, transpose: bool = False) -> None:
        k = _kernel(op)
        sh, sw = _strides(op)
        if k and not (k[0] in A9_KERNELS and k[1] in A9_KERNELS):
            self.add("A9-TCONV" if transpose else "A9-KERNEL", "cpu", f"kernel {k[0]}x{k[1]}", op)
        elif transpose and (sh, sw) != (2, 2):
            self.add("A9-TCONV", "cpu", f"stride {sh}x{sw}", op)
        elif not transpose and (sh != sw or sh not in (1, 2) or (k and max(k) > 7 and sh != 1)):
            self.add("A9-STRIDE", "cpu", f"stride {sh}x{sw}" + (f", kernel {k[0]}x{k[1]}" if k else ""), op)
        self._a9_scale(op)

    def _a9_conv_2d(self, op: Op) -> None:
        self._a9_conv(op)

    def _a9_transpose_conv(self, op: Op) -> None:
        self._a9_conv(op, transpose=True)

    def _a9_depthwise_conv_2d(self, op: Op) -> None:
        self._a9_conv(op)
        c_in, c_out = _channels(op.inputs[0]), _filters(op)
        if c_in and c_out and c_out // c_in != 1:
            self.add("A9-DW-6", "cpu", f"multiplier {c_out // c_in}", op)

    def _a9_fully_connected(self, op: Op) -> None:
        self._a9_scale(op)

    def _a9_average_pool_2d(self, op: Op) -> None:
        o = op.options
        k, s, pad = (o.filterHeight, o.filterWidth), _strides(op), o.padding
        hw = _hw(op.inputs[0])
        ok = (k == (3, 3) and s == (1, 1) and pad == SAME) or (k[0] == k[1] and k[0] in (7, 8) and hw == k)
        if not ok:
            self.add("A9-AVG", "cpu", f"pool {k[0]}x{k[1]} stride {s[0]} {'SAME' if pad == SAME else 'VALID'}", op)

    def _a9_max_pool_2d(self, op: Op) -> None:
        # SupportQueries::IsPoolingSupported (driver/support_library/src/SupportQueries.cpp) on the padding TFLite
        # computes. Stride 2: 1x1 unpadded; 2x2 unpadded on even sizes or padded 1 after on odd ones; 3x3 at
        # most 417 wide, unpadded on ODD sizes or padded 1 after on EVEN ones. Axis's text (Arm's SUPPORTED.md)
        # gives the 3x3 parities the other way round; the code is what runs, and an unpadded 3x3/2 pool covers
        # an odd input exactly. Stride 1: unpadded up to 9x9, SAME up to 17x17.
        o = op.options
        k, s, same = (o.filterHeight, o.filterWidth), _strides(op), o.padding == SAME
        hw = _hw(op.inputs[0]) or (0, 0)
        pads = _tflite_pads(hw, k, s, same)
        no_pad, pad_after = pads == (0, 0, 0, 0), pads == (0, 1, 0, 1)
        even = hw[0] % 2 == 0 and hw[1] % 2 == 0
        odd = hw[0] % 2 == 1 and hw[1] % 2 == 1
        why = ""
        if s == (2, 2):
            if k == (1, 1) and no_pad:
                pass
            elif k == (2, 2) and (no_pad or pad_after):
                if not (even if no_pad else odd):
                    why = f"input sizes must be {'even' if no_pad else 'odd'}"
            elif k == (3, 3) and (no_pad or pad_after):
                if hw[1] > 417:
                    why = "input wider than 417"
                elif not (odd if no_pad else even):
                    why = f"input sizes must be {'odd' if no_pad else 'even'} (Arm's code; Axis's text says " \
                          f"{'even' if no_pad else 'odd'})"
            else:
                why = "not a supported stride-2 configuration"
        elif s == (1, 1):
            if not ((no_pad and max(k) <= 9) or (same and max(k) <= 17)):
                why = "stride 1 needs VALID up to 9x9 or SAME up to 17x17"
        else:
            why = "stride must be 1 or 2"
        if not why and (hw[0] < k[0] or hw[1] < k[1]):
            why = "input smaller than the pool"
        if why:
            self.add("A9-MAX", "cpu", f"pool {k[0]}x{k[1]} stride {s[0]}x{s[1]} {'SAME' if same else 'VALID'} "
                     f"on {hw[1]}x{hw[0]}: {why}", op)

    def _a9_concatenation(self, op: Op) -> None:
        out = op.outputs[0]
        data = list(op.inputs)  # constant inputs are concatenated like the others
        if out.scales and any(t.scales and out.scales[0] < t.scales[0] / 128 for t in data):
            self.add("A9-CAT-1", "cpu", "", op)
        if _channel_axis(op, getattr(op.options, "axis", 0), len(out.shape)):
            bad = [_channels(t) for t in data if _channels(t) and _channels(t) % 16]
            if bad:
                self.add("A9-CAT-2", "cpu", f"input channels {bad}", op)

    def _a9_split(self, op: Op) -> None:
        axis_t = op.inputs[0] if op.name == "SPLIT" else (op.inputs[2] if len(op.inputs) > 2 else None)
        data = op.inputs[1] if op.name == "SPLIT" else op.inputs[0]
        axis = int(axis_t.data[0]) if axis_t is not None and axis_t.data is not None and axis_t.data.size else None
        if axis is not None and _channel_axis(op, axis, len(data.shape)):
            bad = [_channels(t) for t in op.outputs if _channels(t) and _channels(t) % 16]
            if bad:
                self.add("A9-SPLIT-1", "cpu", f"output channels {bad}", op)

    _a9_split_v = _a9_split

    def _a9_depth_to_space(self, op: Op) -> None:
        b = getattr(op.options, "blockSize", 0)
        c = _channels(op.inputs[0]) or 0
        if b != 2 or c % 4:
            self.add("A9-D2S", "cpu", f"block {b}, depth {c}", op)

    def _a9_leaky_relu(self, op: Op) -> None:
        a = getattr(op.options, "alpha", 0.0)
        if not 0 < a < 1:
            self.add("A9-LRELU-1", "cpu", f"alpha {a}", op)

    def _a9_mean(self, op: Op) -> None:
        axes = op.inputs[1].data if len(op.inputs) > 1 else None
        hw = _hw(op.inputs[0])
        out_hw = _hw(op.outputs[0])
        keep = getattr(op.options, "keepDims", False)
        ok = (axes is not None and sorted(int(a) % 4 for a in axes) == [1, 2] and hw in ((7, 7), (8, 8))
              and (out_hw == (1, 1) if keep else len(op.outputs[0].shape) == 2))
        if not ok:
            self.add("A9-MEAN", "cpu", f"input {hw}", op)

    def _a9_mul(self, op: Op) -> None:
        consts = [t for t in op.inputs if t.const]
        ok = False
        if len(consts) == 1:
            c = consts[0]
            size = int(np.prod(c.shape)) if c.shape else 1
            if size == 1:
                # Arm's ReplaceScalarMultiplicationWithReinterpretQuantization (armnn-ethos-n-backend/
                # EthosNReplaceUnsupported.cpp): the output scale must be input scale x constant, within 0.004
                var = next(t for t in op.inputs if not t.const)
                out, value = op.outputs[0], _const_value(c)
                if value is None or not var.scales or not out.scales:
                    self.add("A9-MUL", "cpu", "scalar constant of unknown value", op)
                    return
                want = var.scales[0] * value
                if abs(want - out.scales[0]) > 0.004:
                    self.add("A9-MUL", "cpu", f"x {value:.4g}: output scale {out.scales[0]:.4g}, "
                             f"not input scale x constant = {want:.4g}", op)
                return
            ok = len(c.shape) in (1, 4) and all(d == 1 for d in c.shape[:-1])
        if not ok:
            self.add("A9-MUL", "cpu", "two variable tensors" if not consts else f"constant {list(consts[0].shape)}", op)

    def _a9_add(self, op: Op) -> None:
        a, b = op.inputs[0], op.inputs[1]
        sa, sb = _ethosn_shape(a.shape), _ethosn_shape(b.shape)
        if sa[1:] == sb[1:]:
            return  # element by element
        var, c = (a, b) if b.const else (b, a)
        sc, sv = _ethosn_shape(c.shape), _ethosn_shape(var.shape)
        if not c.const:
            self.add("A9-ADD", "cpu", f"broadcast of {list(a.shape)} and {list(b.shape)}", op)
        elif sc[:3] == (1, 1, 1) and sc[3] == sv[3]:
            return  # a 1x1x1xC constant: Arm NN makes it a depthwise convolution (ReplaceConstantAdditionWithDepthwise)
        elif sc == (1, 1, 1, 1):
            # Arm's IsAdditionSupportedByReinterpretQuantization (EthosNLayerSupport.cpp): same scale within 1e-5;
            # ReplaceConstantAdditionWithReinterpretQuantization: zero point moved by -value/scale, within 1
            out, value = op.outputs[0], _const_value(c)
            if value is None or not var.scales or not out.scales or not var.zero_points or not out.zero_points:
                self.add("A9-ADD", "cpu", "scalar constant of unknown value", op)
            elif abs(out.scales[0] - var.scales[0]) >= 1e-5:
                self.add("A9-ADD", "cpu", f"+ {value:.4g}: output scale {out.scales[0]:.4g} is not the input's "
                         f"{var.scales[0]:.4g}", op)
            elif abs(var.zero_points[0] - value / var.scales[0] - out.zero_points[0]) > 1:
                self.add("A9-ADD", "cpu", f"+ {value:.4g}: output zero point {out.zero_points[0]}, not "
                         f"{var.zero_points[0] - value / var.scales[0]:.4g}", op)
        else:
            self.add("A9-ADD", "cpu", f"constant {list(c.shape)} broadcast", op)

    def _a9_pad(self, op: Op) -> None:
        pads = op.inputs[1].data if len(op.inputs) > 1 else None
        reasons = []
        if op.name == "PADV2" and len(op.inputs) > 2:
            # the pad value is stored quantised: zero padding means its stored value is its zero point
            value = op.inputs[2]
            real = _const_value(value) if value.const else None
            if real is None:
                reasons.append("pad value not a known constant")
            elif real != 0:
                reasons.append(f"pad value {real:.4g}, not zero")
        if pads is not None and pads.size == 8:
            p = pads.reshape(4, 2)
            if p[0].any() or p[3].any():
                reasons.append("pads N or C")
            if p.max() > 7:
                reasons.append(f"pad {int(p.max())} > 7")
        i, o = op.inputs[0], op.outputs[0]
        if (i.scales[:1], i.zero_points[:1]) != (o.scales[:1], o.zero_points[:1]):
            reasons.append("quantisation changes")
        if reasons:
            self.add("A9-PAD", "cpu", ", ".join(reasons), op)
        else:
            self.add("A9-G06", "tip", "", op)

    _a9_padv2 = _a9_pad

    def _a9_quantize(self, op: Op) -> None:
        i, o = op.inputs[0], op.outputs[0]
        if i.scales and o.scales and o.scales[0] < i.scales[0] / 128:
            self.add("A9-REQ-1", "cpu", f"{i.scales[0]:.3g} -> {o.scales[0]:.3g}", op)

    def _a9_resize(self, op: Op) -> None:
        hw, out = _hw(op.inputs[0]), _hw(op.outputs[0])
        if not hw or not out:
            return
        if any(o not in (2 * n, 2 * n - 1) for n, o in zip(hw, out)):
            self.add("A9-RES-1", "cpu", f"{hw[1]}x{hw[0]} -> {out[1]}x{out[0]}", op)
            return
        mixed = (out[0] % 2) != (out[1] % 2)
        if mixed:
            self.add("A9-RES-2", "warn", f"{out[1]}x{out[0]}", op)
        if op.name == "RESIZE_BILINEAR" and (getattr(op.options, "alignCorners", False)
                                             or (getattr(op.options, "halfPixelCenters", False) and mixed)):
            self.add("A9-RES-3", "warn", "", op)

    _a9_resize_bilinear = _a9_resize
    _a9_resize_nearest_neighbor = _a9_resize

    def _a9_logistic(self, op: Op) -> None:
        o = op.outputs[0]
        want_zp = -128 if o.type == "INT8" else 0
        if not o.scales or abs(o.scales[0] - 1 / 256) > 1e-9 or o.zero_points[:1] != (want_zp,):
            self.add("A9-SIG-1", "cpu", f"scale {o.scales[:1]}, zero point {o.zero_points[:1]}", op)

    def _a9_tanh(self, op: Op) -> None:
        o = op.outputs[0]
        want_zp = 0 if o.type == "INT8" else 128
        if not o.scales or abs(o.scales[0] - 1 / 128) > 1e-9 or o.zero_points[:1] != (want_zp,):
            self.add("A9-TANH-1", "cpu", f"scale {o.scales[:1]}, zero point {o.zero_points[:1]}", op)


def check_model(path: str | Path, chip: str = "artpec8") -> Report:
    """Check a .tflite against one chip's DLPU rules; NotAModel if it is not TFLite."""
    if chip not in CHIPS:
        raise ValueError(f"chip must be one of {', '.join(CHIPS)}")
    ops, inputs, outputs = read_model(path)
    report = Checker(ops, (inputs, outputs), chip).run()
    report.model = str(path)
    return report
