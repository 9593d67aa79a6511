"""Shapes, strides, paddings and constants of operators as the DLPU rules (and Arm's Ethos-N code) see them."""
from __future__ import annotations

from app.modelfile import Operator, TensorSpec


def hw(t: TensorSpec) -> tuple[int, int] | None:
    return (t.shape[1], t.shape[2]) if len(t.shape) == 4 else None


def channels(t: TensorSpec) -> int | None:
    return t.shape[-1] if t.shape else None


def kernel(op: Operator) -> tuple[int, int] | None:
    w = op.weights
    if w is None or len(w.shape) != 4:
        return None
    return (w.shape[1], w.shape[2])  # CONV/TCONV [out,kh,kw,in], DEPTHWISE [1,kh,kw,out]


def strides(op: Operator) -> tuple[int, int]:
    o = op.options
    return (getattr(o, "strideH", 1) or 1, getattr(o, "strideW", 1) or 1)


def filters(op: Operator) -> int | None:
    w = op.weights
    if w is None or not w.shape:
        return None
    return w.shape[3] if op.name == "DEPTHWISE_CONV_2D" else w.shape[0]


def channel_axis(op: Operator, axis: int, rank: int) -> bool:
    return rank > 0 and (axis % rank) == rank - 1


def scale_ratios(op: Operator) -> list[float]:
    w = op.weights
    data_in = op.inputs[2] if op.name == "TRANSPOSE_CONV" and len(op.inputs) > 2 else op.inputs[0]
    if w is None or not data_in.scales or not w.scales or not op.outputs or not op.outputs[0].scales:
        return []
    i, o = data_in.scales[0], op.outputs[0].scales[0]
    return [i * s / o for s in w.scales] if o else [float("inf")]


def batch(op: Operator) -> int:
    """The batch the Ethos-N sees: dimension 0 of 4-D tensors; of any rank for a fully-connected input.

    Arm NN pads a tensor of rank < 4 to 4-D with the first dimension moved right when it is > 1
    ([2, 64] -> [1, 2, 64, 1]: BuildEthosNTensorShape, armnn-ethos-n-backend/EthosNTensorUtils.cpp), so there
    it is not a batch; a fully-connected layer reads dimension 0 as its batch (IsFullyConnectedSupportedImpl,
    EthosNLayerSupport.cpp, then SupportQueries::IsFullyConnectedSupported: "Batch size must be 1").
    """
    if op.name == "FULLY_CONNECTED" and op.inputs and op.inputs[0].shape:
        return op.inputs[0].shape[0]
    return max((t.shape[0] for t in op.inputs + op.outputs if not t.const and len(t.shape) == 4), default=1)


def tflite_pads(hw: tuple[int, int], k: tuple[int, int], s: tuple[int, int], same: bool) -> tuple[int, ...]:
    """(top, bottom, left, right) padding TFLite applies: none for VALID; for SAME the total, extra after."""
    if not same:
        return (0, 0, 0, 0)
    pads = []
    for n, kk, ss in zip(hw, k, s):
        total = max((-(-n // ss) - 1) * ss + kk - n, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def depth_bytes(op: Operator) -> int:
    """SRAM an op's deepest tensor needs on the Ethos-N: an 8 x 8 x C chunk of int8, none when W is 1.

    IsTensorDepthSupported (driver/support_library/src/SupportQueries.cpp): the DMA cannot split NHWC in depth,
    so 8 * 8 * C bytes must fit in the SRAM; a width of 1 is exempt (the DMA splits channels as width). A
    fully-connected layer's tensors are [N, 1, 1, C] there (IsFullyConnectedSupportedImpl): always exempt.
    """
    if op.name == "FULLY_CONNECTED":
        return 0
    shapes = [ethosn_shape(t.shape) for t in op.inputs + op.outputs if not t.const and 0 < len(t.shape) <= 4]
    return max((8 * 8 * s[3] for s in shapes if s[2] != 1), default=0)


def ethosn_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape as Arm NN gives it to the Ethos-N (BuildEthosNTensorShape): 4-D, padded as _batch says."""
    if len(shape) >= 4:
        return tuple(shape)
    lead = (1,) if shape and shape[0] > 1 else ()
    return (lead + tuple(shape) + (1, 1, 1, 1))[:4]


def const_value(t: TensorSpec) -> float | None:
    """The real value of a one-element quantised (or plain integer) constant, None if unknown."""
    if t.data is None or t.data.size != 1:
        return None
    raw = float(t.data.flat[0])
    return (raw - (t.zero_points[0] if t.zero_points else 0)) * t.scales[0] if t.scales else raw


def io_requantisation(op: Operator, edge: set[int]) -> bool:
    """A QUANTIZE between uint8 and int8 that reads a model input or writes a model output."""
    if op.name != "QUANTIZE" or not op.inputs or not op.outputs:
        return False
    i, o = op.inputs[0], op.outputs[0]
    return {i.type, o.type} == {"UINT8", "INT8"} and (i.index in edge or o.index in edge)
