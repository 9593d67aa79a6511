"""Generic edits of TFLite flatbuffers that make float models quantisable by ai-edge-quantizer."""
from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from ai_edge_litert.tools import flatbuffer_utils

log = logging.getLogger(__name__)

Op = schema.BuiltinOperator
TensorType = schema.TensorType

# deprecated_builtin_code is an int8: codes above 127 live only in builtin_code.
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127

_OP_NAMES = {v: k for k, v in vars(Op).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}
_NUMPY_TO_TFL = {
    np.dtype(np.float32): TensorType.FLOAT32,
    np.dtype(np.float16): TensorType.FLOAT16,
    np.dtype(np.int8): TensorType.INT8,
    np.dtype(np.uint8): TensorType.UINT8,
    np.dtype(np.int16): TensorType.INT16,
    np.dtype(np.int32): TensorType.INT32,
    np.dtype(np.int64): TensorType.INT64,
}

# Ops that only move or reshape data: a range clamped on their output applies to their input too.
SHAPE_ONLY_OPS = frozenset(
    {Op.RESHAPE, Op.CONCATENATION, Op.SQUEEZE, Op.EXPAND_DIMS, Op.TRANSPOSE, Op.DEPTH_TO_SPACE}
)


def load_model(source: str | Path | bytes | bytearray) -> schema.ModelT:
    """Read a .tflite file or its bytes into a mutable object tree."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    # The deprecated metadata_buffer list is not remapped when the reader compacts
    # buffers, so it can point at the wrong buffers; the metadata table covers it.
    model.metadataBuffer = None
    return model


def serialize(model: schema.ModelT) -> bytes:
    """Pack an object tree back into .tflite bytes."""
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def op_name(code: int) -> str:
    """Name of a builtin operator code, e.g. 3 -> 'CONV_2D'."""
    return _OP_NAMES.get(code, f"BUILTIN_{code}")


def type_name(tensor_type: int) -> str:
    """Name of a TFLite tensor type, e.g. 9 -> 'INT8'."""
    return _TYPE_NAMES.get(tensor_type, f"TYPE_{tensor_type}")


def builtin_code(model: schema.ModelT, op: schema.OperatorT) -> int:
    """Builtin operator code of an operator, whichever opcode field holds it."""
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def tensor_name(tensor: schema.TensorT) -> str:
    """Tensor name as str."""
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name)


def find_tensor(subgraph: schema.SubGraphT, name: str) -> int:
    """Index of the tensor called name; KeyError if absent."""
    for index, tensor in enumerate(subgraph.tensors):
        if tensor_name(tensor) == name:
            return index
    raise KeyError(f"no tensor named {name!r}")


def normalise_opcodes(model: schema.ModelT) -> int:
    """Make builtin_code and deprecated_builtin_code agree in every operator code; return how many changed."""
    # Old writers set only deprecated_builtin_code; new ones (ai-edge-quantizer) only
    # builtin_code. Tools that read just one field then see wrong ops (ADD = 0).
    changed = 0
    for code in model.operatorCodes:
        real = max(code.builtinCode, code.deprecatedBuiltinCode)
        deprecated = min(real, _PLACEHOLDER_FOR_GREATER_OP_CODES)
        if (code.builtinCode, code.deprecatedBuiltinCode) != (real, deprecated):
            code.builtinCode, code.deprecatedBuiltinCode = real, deprecated
            changed += 1
    return changed


def has_constant_data(model: schema.ModelT, tensor: schema.TensorT) -> bool:
    """True if the tensor is a constant with data in a buffer."""
    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) > 0


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


def drop_orphaned_tensors(model: schema.ModelT) -> int:
    """Remove tensors that no operator, graph I/O or signature refers to; return how many went."""
    dropped = 0
    for sg_index, subgraph in enumerate(model.subgraphs):
        used = set(subgraph.inputs) | set(subgraph.outputs)
        for op in subgraph.operators:
            used.update(op.inputs)
            used.update(op.outputs)
            used.update(op.intermediates or [])
        for signature in model.signatureDefs or []:
            if signature.subgraphIndex == sg_index:
                used.update(m.tensorIndex for m in (signature.inputs or []) + (signature.outputs or []))
        keep = [i for i in range(len(subgraph.tensors)) if i in used]
        if len(keep) == len(subgraph.tensors):
            continue
        new_index = {old: new for new, old in enumerate(keep)}

        def remap(indices: list[int] | None) -> list[int] | None:
            return None if indices is None else [new_index[i] if i >= 0 else i for i in indices]

        dropped += len(subgraph.tensors) - len(keep)
        subgraph.tensors = [subgraph.tensors[i] for i in keep]
        subgraph.inputs = remap(subgraph.inputs)
        subgraph.outputs = remap(subgraph.outputs)
        for op in subgraph.operators:
            op.inputs, op.outputs = remap(op.inputs), remap(op.outputs)
            op.intermediates = remap(op.intermediates)
        for signature in model.signatureDefs or []:
            if signature.subgraphIndex == sg_index:
                for tensor_map in (signature.inputs or []) + (signature.outputs or []):
                    tensor_map.tensorIndex = new_index[tensor_map.tensorIndex]
    return dropped


def drop_unused_buffers(model: schema.ModelT) -> int:
    """Remove buffers no tensor or metadata entry refers to (buffer 0 stays); return how many went."""
    used = {0}
    for subgraph in model.subgraphs:
        used.update(t.buffer for t in subgraph.tensors)
    used.update(m.buffer for m in model.metadata or [])
    keep = [i for i in range(len(model.buffers)) if i in used]
    new_index = {old: new for new, old in enumerate(keep)}
    dropped = len(model.buffers) - len(keep)
    model.buffers = [model.buffers[i] for i in keep]
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.buffer = new_index[tensor.buffer]
    for entry in model.metadata or []:
        entry.buffer = new_index[entry.buffer]
    return dropped


def drop_unused_opcodes(model: schema.ModelT) -> int:
    """Remove operator codes no operator uses; return how many went."""
    used = {op.opcodeIndex for sg in model.subgraphs for op in sg.operators}
    keep = [i for i in range(len(model.operatorCodes)) if i in used]
    new_index = {old: new for new, old in enumerate(keep)}
    dropped = len(model.operatorCodes) - len(keep)
    model.operatorCodes = [model.operatorCodes[i] for i in keep]
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            op.opcodeIndex = new_index[op.opcodeIndex]
    return dropped


def drop_metadata(model: schema.ModelT, names: Iterable[str]) -> int:
    """Remove named model metadata entries (and their buffers); return how many went."""
    drop = set(names)
    before = len(model.metadata or [])
    model.metadata = [m for m in model.metadata or [] if as_str(m.name) not in drop]
    drop_unused_buffers(model)
    return before - len(model.metadata)


def as_str(value: bytes | str | None) -> str:
    """Flatbuffer string (bytes) as str."""
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _opcode_index(model: schema.ModelT, code: int) -> int:
    for index, opcode in enumerate(model.operatorCodes):
        if max(opcode.builtinCode, opcode.deprecatedBuiltinCode) == code and not opcode.customCode:
            return index
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = code
    opcode.deprecatedBuiltinCode = min(code, _PLACEHOLDER_FOR_GREATER_OP_CODES)
    opcode.version = 1
    model.operatorCodes.append(opcode)
    return len(model.operatorCodes) - 1


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
    op.opcodeIndex = _opcode_index(model, Op.LOGISTIC)
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
    quantize = _opcode_index(model, Op.QUANTIZE)

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


def set_signature(
    model: schema.ModelT,
    key: str = "serving_default",
    input_keys: Mapping[str, str] | None = None,
    output_keys: Mapping[str, str] | None = None,
) -> None:
    """Add (or replace) a SignatureDef naming the main graph's inputs and outputs.

    input_keys/output_keys map tensor names to signature keys; unmapped tensors use their own name.
    """
    subgraph = model.subgraphs[0]

    def tensor_maps(indices: list[int], keys: Mapping[str, str] | None) -> list[schema.TensorMapT]:
        maps = []
        for index in indices:
            name = tensor_name(subgraph.tensors[index])
            tensor_map = schema.TensorMapT()
            tensor_map.name = (keys or {}).get(name, name)
            tensor_map.tensorIndex = index
            maps.append(tensor_map)
        return maps

    signature = schema.SignatureDefT()
    signature.signatureKey = key
    signature.subgraphIndex = 0
    signature.inputs = tensor_maps(subgraph.inputs, input_keys)
    signature.outputs = tensor_maps(subgraph.outputs, output_keys)
    others = [s for s in model.signatureDefs or [] if as_str(s.signatureKey) != key]
    model.signatureDefs = others + [signature]


def feeding_tensors(model: schema.ModelT, name: str, through: Iterable[int] = SHAPE_ONLY_OPS) -> list[str]:
    """Names of the tensor and of every tensor feeding it through shape-only ops, output first."""
    subgraph = model.subgraphs[0]
    through_codes = set(through)
    producer = {i: op for op in subgraph.operators for i in op.outputs}
    names: list[str] = []
    stack = [find_tensor(subgraph, name)]
    seen: set[int] = set()
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        names.append(tensor_name(subgraph.tensors[index]))
        op = producer.get(index)
        if op is not None and builtin_code(model, op) in through_codes:
            # Only the data input: RESHAPE's shape and TRANSPOSE's perm are constants.
            data_inputs = op.inputs if builtin_code(model, op) == Op.CONCATENATION else op.inputs[:1]
            stack.extend(i for i in data_inputs if i >= 0 and not has_constant_data(model, subgraph.tensors[i]))
    return names


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
