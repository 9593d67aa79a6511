"""Edits of TFLite graphs around quantisation: repairs that make a float model quantisable, clean-ups
of what ai-edge-quantizer writes, and the uint8 I/O of Axis's recipe."""
from __future__ import annotations

import copy
import logging
from collections.abc import Iterable

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from app.modelfile import type_name
from app.modeltools.flatbuffer import (
    Op, TensorType, builtin_code, drop_orphaned_tensors, drop_unused_buffers, drop_unused_opcodes, find_tensor,
    has_constant_data, opcode_index, serialize, tensor_name,
)

log = logging.getLogger(__name__)

_NUMPY_TO_TFL = {
    np.dtype(np.float32): TensorType.FLOAT32,
    np.dtype(np.float16): TensorType.FLOAT16,
    np.dtype(np.int8): TensorType.INT8,
    np.dtype(np.uint8): TensorType.UINT8,
    np.dtype(np.int16): TensorType.INT16,
    np.dtype(np.int32): TensorType.INT32,
    np.dtype(np.int64): TensorType.INT64,
}


def _reference_tensor_values(model_bytes: bytes, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """Run the model once on the reference kernels and read the given main-graph tensors."""
    # XNNPACK would take over the graph and never compute DENSIFY/DEQUANTIZE outputs,
    # so the default delegate must be off and every intermediate kept.
    interpreter = Interpreter(
        model_content=model_bytes,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    return {index: np.array(interpreter.get_tensor(index)) for index in indices}


def materialise_constant_weights(
    model: schema.ModelT, fold_ops: Iterable[int] = (Op.DEQUANTIZE, Op.DENSIFY)
) -> int:
    """Replace constant-only DEQUANTIZE/DENSIFY chains in the main graph by dense constants; return ops removed."""
    subgraph = model.subgraphs[0]
    fold_codes = set(fold_ops)
    folded: set[int] = set()
    constant = {i for i, t in enumerate(subgraph.tensors) if has_constant_data(model, t)}
    for index, op in enumerate(subgraph.operators):
        if builtin_code(model, op) in fold_codes and all(i in constant for i in op.inputs if i >= 0):
            folded.add(index)
            constant.update(op.outputs)
    if not folded:
        return 0

    consumed = {i for k, op in enumerate(subgraph.operators) if k not in folded for i in op.inputs}
    consumed.update(subgraph.outputs)
    wanted = [i for k in sorted(folded) for i in subgraph.operators[k].outputs if i in consumed]
    values = _reference_tensor_values(serialize(model), wanted)
    for index in wanted:
        value = np.ascontiguousarray(values[index])
        tensor = subgraph.tensors[index]
        model.buffers.append(schema.BufferT())
        model.buffers[-1].data = np.frombuffer(value.tobytes(), np.uint8)
        tensor.buffer = len(model.buffers) - 1
        tensor.type = _NUMPY_TO_TFL[value.dtype]
        tensor.sparsity = None
        tensor.quantization = None

    subgraph.operators = [op for k, op in enumerate(subgraph.operators) if k not in folded]
    dropped = drop_orphaned_tensors(model)
    drop_unused_buffers(model)
    drop_unused_opcodes(model)
    log.info("materialised %d constant tensors, removed %d ops and %d tensors", len(wanted), len(folded), dropped)
    return len(folded)


def append_logistic(model: schema.ModelT, output_name: str, new_name: str | None = None) -> str:
    """Append an in-graph sigmoid to a named float graph output; return the new output's name."""
    subgraph = model.subgraphs[0]
    source = find_tensor(subgraph, output_name)
    if source not in subgraph.outputs:
        raise ValueError(f"{output_name!r} is not a graph output")
    src = subgraph.tensors[source]
    if src.type != TensorType.FLOAT32:
        raise ValueError(f"{output_name!r} is {type_name(src.type)}, expected FLOAT32")
    new_name = new_name or f"{output_name}_sigmoid"
    tensor = schema.TensorT()
    tensor.name = new_name
    tensor.shape = list(src.shape)
    tensor.shapeSignature = None if src.shapeSignature is None else list(src.shapeSignature)
    tensor.type = TensorType.FLOAT32
    tensor.buffer = 0
    tensor.hasRank = src.hasRank
    subgraph.tensors.append(tensor)
    op = schema.OperatorT()
    op.opcodeIndex = opcode_index(model, Op.LOGISTIC)
    op.inputs = [source]
    op.outputs = [len(subgraph.tensors) - 1]
    subgraph.operators.append(op)
    subgraph.outputs = [op.outputs[0] if i == source else i for i in subgraph.outputs]
    for signature in model.signatureDefs or []:
        for tensor_map in signature.outputs or []:
            if signature.subgraphIndex == 0 and tensor_map.tensorIndex == source:
                tensor_map.tensorIndex = op.outputs[0]
    return new_name


def uint8_io(model: schema.ModelT) -> int:
    """Give an int8 model uint8 graph inputs and outputs, as Axis's recipe makes them: each int8 input
    gets a uint8 tensor (zero point + 128, same scale) and a QUANTIZE in front, each int8 output a
    QUANTIZE to uint8 behind it. The uint8 tensors take the original names. Returns the ops added."""
    subgraph = model.subgraphs[0]
    quantize = opcode_index(model, Op.QUANTIZE)

    def twin(index: int) -> int:
        src = subgraph.tensors[index]
        q = src.quantization
        if src.type != TensorType.INT8 or q is None or q.scale is None or len(q.scale) != 1:
            raise ValueError(f"{tensor_name(src)!r} is not a per-tensor INT8 tensor")
        t = copy.deepcopy(src)
        t.type = TensorType.UINT8
        t.buffer = 0
        t.quantization.zeroPoint = [int(q.zeroPoint[0]) + 128]
        src.name = f"{tensor_name(src)}_int8"
        subgraph.tensors.append(t)
        return len(subgraph.tensors) - 1

    moved: dict[int, int] = {}
    front, back = [], []
    for index in subgraph.inputs:
        new = moved[index] = twin(index)
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = quantize, [new], [index]
        front.append(op)
    for index in subgraph.outputs:
        new = moved[index] = twin(index)
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = quantize, [index], [new]
        back.append(op)
    subgraph.operators = front + list(subgraph.operators) + back
    subgraph.inputs = [moved[i] for i in subgraph.inputs]
    subgraph.outputs = [moved[i] for i in subgraph.outputs]
    for signature in model.signatureDefs or []:
        if signature.subgraphIndex == 0:
            for tensor_map in (signature.inputs or []) + (signature.outputs or []):
                tensor_map.tensorIndex = moved.get(tensor_map.tensorIndex, tensor_map.tensorIndex)
    return len(front) + len(back)


def finite_max_pool_pads(model: schema.ModelT) -> list[str]:
    """Set the pad value of PADV2 ops that pad with -inf for a MAX_POOL_2D to 0 (an ONNX-export
    leftover: -inf wrecks INT8 calibration and XNNPACK refuses the INT8 graph). Exact after a ReLU;
    after activations that go negative it can change border values, so the caller should say so.
    Returns the names of the pad-constant tensors changed."""
    subgraph = model.subgraphs[0]
    consumers: dict[int, list[int]] = {}
    for op in subgraph.operators:
        for i in op.inputs:
            consumers.setdefault(i, []).append(builtin_code(model, op))
    changed = []
    for op in subgraph.operators:
        if builtin_code(model, op) != Op.PADV2 or len(op.inputs) < 3:
            continue
        if Op.MAX_POOL_2D not in consumers.get(op.outputs[0], []):
            continue
        const = subgraph.tensors[op.inputs[2]]
        buf = model.buffers[const.buffer]
        if const.type != TensorType.FLOAT32 or buf.data is None:
            continue
        value = np.frombuffer(bytes(bytearray(buf.data)), np.float32)
        if value.size and np.isneginf(value).all():
            buf.data = np.zeros_like(value).tobytes()
            changed.append(tensor_name(const))
    return changed


def _same_quantization(a: schema.TensorT, b: schema.TensorT) -> bool:
    qa, qb = a.quantization, b.quantization
    if a.type != b.type or qa is None or qb is None:
        return False
    return np.array_equal(qa.scale, qb.scale) and np.array_equal(qa.zeroPoint, qb.zeroPoint)


def integerise_float_islands(model: schema.ModelT, ops: Iterable[int] = (Op.DEPTH_TO_SPACE,)) -> int:
    """Run data-movement ops left in float between DEQUANTIZE and QUANTIZE on the int8 tensor; return how many.

    ai-edge-quantizer does not know DEPTH_TO_SPACE and wraps it in DEQUANTIZE/QUANTIZE.
    The op only permutes values, so its int8 kernel with the input's parameters is exact;
    the QUANTIZE after it becomes an int8 requantize (see drop_identity_requantize).
    """
    subgraph = model.subgraphs[0]
    codes = set(ops)
    producer = {out: k for k, op in enumerate(subgraph.operators) for out in op.outputs}
    consumers: dict[int, list[int]] = {}
    for k, op in enumerate(subgraph.operators):
        for i in op.inputs:
            consumers.setdefault(i, []).append(k)

    count = 0
    for k, op in enumerate(subgraph.operators):
        if builtin_code(model, op) not in codes or op.outputs[0] in subgraph.outputs:
            continue
        dequantize = producer.get(op.inputs[0])
        users = consumers.get(op.outputs[0], [])
        if dequantize is None or builtin_code(model, subgraph.operators[dequantize]) != Op.DEQUANTIZE:
            continue
        if not users or any(builtin_code(model, subgraph.operators[u]) != Op.QUANTIZE for u in users):
            continue
        source = subgraph.operators[dequantize].inputs[0]
        out = subgraph.tensors[op.outputs[0]]
        out.type = subgraph.tensors[source].type
        out.quantization = copy.deepcopy(subgraph.tensors[source].quantization)
        op.inputs = [source, *op.inputs[1:]]
        count += 1
    if count:
        _drop_unconsumed_ops(model, {Op.DEQUANTIZE})
        drop_identity_requantize(model)
    return count


def _drop_unconsumed_ops(model: schema.ModelT, codes: set[int]) -> int:
    """Remove main-graph ops of the given kinds whose outputs nothing reads."""
    subgraph = model.subgraphs[0]
    read = {i for op in subgraph.operators for i in op.inputs} | set(subgraph.outputs)
    keep = [
        op for op in subgraph.operators
        if builtin_code(model, op) not in codes or any(i in read for i in op.outputs)
    ]
    dropped = len(subgraph.operators) - len(keep)
    subgraph.operators = keep
    if dropped:
        drop_orphaned_tensors(model)
        drop_unused_opcodes(model)
    return dropped


def drop_identity_requantize(model: schema.ModelT) -> int:
    """Remove QUANTIZE ops whose integer input already has the output's type, scale and zero point; return how many."""
    subgraph = model.subgraphs[0]
    alias: dict[int, int] = {}
    keep = []
    for op in subgraph.operators:
        if builtin_code(model, op) == Op.QUANTIZE and op.outputs[0] not in subgraph.outputs:
            source = alias.get(op.inputs[0], op.inputs[0])
            if subgraph.tensors[source].type != TensorType.FLOAT32 and _same_quantization(
                subgraph.tensors[source], subgraph.tensors[op.outputs[0]]
            ):
                alias[op.outputs[0]] = source
                continue
        op.inputs = [alias.get(i, i) for i in op.inputs]
        keep.append(op)
    if alias:
        subgraph.operators = keep
        drop_orphaned_tensors(model)
        drop_unused_opcodes(model)
    return len(alias)
