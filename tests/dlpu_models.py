"""Tiny TFLite flatbuffers built op by op, each exercising one DLPU rule of check-model.

Built with the TFLite schema's object API (no TensorFlow), so every test makes exactly
the op, shapes, options and quantisation it needs in a few hundred bytes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from app.modeltools import flatbuffer as fb

Op = schema.BuiltinOperator
TYPES = {"FLOAT32": 0, "FLOAT16": 1, "INT32": 2, "UINT8": 3, "INT64": 4, "INT16": 7, "INT8": 9}
NUMPY = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "UINT8": np.uint8, "INT64": np.int64, "INT16": np.int16,
         "INT8": np.int8}
OPTIONS = {
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions", "MAX_POOL_2D": "Pool2DOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions", "CONCATENATION": "ConcatenationOptions", "TRANSPOSE_CONV": "TransposeConvOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions", "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "LEAKY_RELU": "LeakyReluOptions", "DEPTH_TO_SPACE": "DepthToSpaceOptions", "MEAN": "ReducerOptions",
    "SPLIT": "SplitOptions", "FULLY_CONNECTED": "FullyConnectedOptions", "RESHAPE": "ReshapeOptions",
    "SOFTMAX": "SoftmaxOptions", "ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions", "PAD": "PadOptions",
    "PADV2": "PadV2Options", "WHILE": "WhileOptions", "STRIDED_SLICE": "StridedSliceOptions",
}


class Graph:
    """A one-subgraph model under construction."""

    def __init__(self) -> None:
        self.model = schema.ModelT()
        self.model.version = 3
        self.model.operatorCodes = []
        self.model.buffers = [schema.BufferT()]
        self.g = schema.SubGraphT()
        self.g.tensors, self.g.operators, self.g.inputs, self.g.outputs = [], [], [], []
        self.model.subgraphs = [self.g]

    def tensor(self, shape, type="INT8", scale=0.05, zp=0, name=None, data=None, qdim=0) -> int:
        """Add a tensor; scale may be a list (per-channel); data makes it a constant."""
        t = schema.TensorT()
        t.name = name or f"t{len(self.g.tensors)}"
        t.shape = list(shape)
        t.type = TYPES[type]
        t.buffer = 0
        if type not in ("FLOAT32", "FLOAT16", "INT32", "INT64") and scale is not None:
            q = schema.QuantizationParametersT()
            scales = list(scale) if isinstance(scale, (list, tuple)) else [scale]
            q.scale = scales
            q.zeroPoint = [zp] * len(scales)
            q.quantizedDimension = qdim
            t.quantization = q
        if data is not None:
            b = schema.BufferT()
            b.data = np.frombuffer(np.asarray(data, NUMPY[type]).tobytes(), np.uint8)
            self.model.buffers.append(b)
            t.buffer = len(self.model.buffers) - 1
        self.g.tensors.append(t)
        return len(self.g.tensors) - 1

    def const(self, shape, type="INT8", scale=0.01, value=1, **kw) -> int:
        return self.tensor(shape, type, scale, data=np.full(shape, value, NUMPY[type]), **kw)

    def ints(self, values, type="INT32") -> int:
        a = np.asarray(values, NUMPY[type])
        return self.tensor(a.shape, type, None, data=a)

    def op(self, name: str, inputs, outputs, custom: str | None = None, **options) -> int:
        code = Op.CUSTOM if custom else getattr(Op, name)
        for k, c in enumerate(self.model.operatorCodes):
            if c.builtinCode == code and (c.customCode or None) == custom:
                index = k
                break
        else:
            c = schema.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            c.customCode = custom
            self.model.operatorCodes.append(c)
            index = len(self.model.operatorCodes) - 1
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = index, list(inputs), list(outputs)
        kind = OPTIONS.get(name)
        if kind and not custom:
            opts = getattr(schema, kind + "T")()
            for k, v in options.items():
                setattr(opts, k, v)
            o.builtinOptionsType = getattr(schema.BuiltinOptions, kind)
            o.builtinOptions = opts
        self.g.operators.append(o)
        return len(self.g.operators) - 1

    def subgraph(self) -> int:
        """Start another subgraph (a WHILE body, say): later tensors and ops go into it. Returns its index."""
        self.g = schema.SubGraphT()
        self.g.tensors, self.g.operators, self.g.inputs, self.g.outputs = [], [], [], []
        self.model.subgraphs.append(self.g)
        return len(self.model.subgraphs) - 1

    def main(self) -> None:
        """Go back to the main subgraph."""
        self.g = self.model.subgraphs[0]

    def save(self, path: Path, inputs, outputs) -> Path:
        self.g.inputs, self.g.outputs = list(inputs), list(outputs)
        path.write_bytes(fb.serialize(self.model))
        return path


def conv(g: Graph, x: int, out_ch: int, k=(3, 3), stride=(1, 1), type="INT8", w_scale=0.01, act=0, padding=0,
         out_hw=None, in_ch=None, out_scale=0.05) -> int:
    """Append a CONV_2D (weights [out,kh,kw,in], int32 bias); returns the output tensor."""
    xs = g.g.tensors[x].shape
    in_ch = in_ch or xs[3]
    w = g.const((out_ch, *k, in_ch), "INT8", w_scale, qdim=0)
    b = g.const((out_ch,), "INT32", None, 0)
    hw = out_hw or (xs[1] // stride[0], xs[2] // stride[1])
    y = g.tensor((xs[0], *hw, out_ch), type, out_scale)
    g.op("CONV_2D", [x, w, b], [y], padding=padding, strideH=stride[0], strideW=stride[1],
         fusedActivationFunction=act, dilationHFactor=1, dilationWFactor=1)
    return y


def conv_model(path: Path, in_type="UINT8", hw=(32, 32), **kw) -> Path:
    """The baseline: uint8 input, one 3x3 conv with 12 filters (a multiple of 6), fused ReLU."""
    g = Graph()
    x = g.tensor((1, *hw, 3), in_type, 1 / 255)
    kw.setdefault("act", 1)
    y = conv(g, x, kw.pop("out_ch", 12), type=in_type, **kw)
    return g.save(path, [x], [y])


def single_op(path: Path, name: str, in_shape, out_shape, type="UINT8", in_scale=0.05, out_scale=0.05, out_zp=0,
              extra_inputs=(), **options) -> Path:
    """One op on one variable input (plus constant extra inputs made by callables)."""
    g = Graph()
    x = g.tensor(in_shape, type, in_scale)
    extras = [make(g) for make in extra_inputs]
    y = g.tensor(out_shape, type, out_scale, zp=out_zp)
    g.op(name, [x, *extras], [y], **options)
    return g.save(path, [x], [y])
