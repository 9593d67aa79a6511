"""TFLite flatbuffers as mutable object trees: load, write, find tensors, drop what nothing uses.

Reading a file's description (tensors, operators) is `app.modelfile.read_model`; the edits that
make a float model quantisable are in `graph_edits`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

from app.modelfile import as_str, builtin_code, parse_flatbuffer

__all__ = [
    "Op", "SHAPE_ONLY_OPS", "TensorType", "as_str", "builtin_code", "drop_metadata", "drop_orphaned_tensors",
    "drop_unused_buffers", "drop_unused_opcodes", "feeding_tensors", "find_tensor", "has_constant_data",
    "load_model", "normalise_opcodes", "opcode_index", "serialize", "set_signature", "tensor_name",
]

Op = schema.BuiltinOperator
TensorType = schema.TensorType

# deprecated_builtin_code is an int8: codes above 127 live only in builtin_code.
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127

# Ops that only move or reshape data: a range clamped on their output applies to their input too.
SHAPE_ONLY_OPS = frozenset(
    {Op.RESHAPE, Op.CONCATENATION, Op.SQUEEZE, Op.EXPAND_DIMS, Op.TRANSPOSE, Op.DEPTH_TO_SPACE}
)


def load_model(source: str | Path | bytes | bytearray) -> schema.ModelT:
    """Read a .tflite file or its bytes into a mutable object tree."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    return parse_flatbuffer(data)


def serialize(model: schema.ModelT) -> bytes:
    """Pack an object tree back into .tflite bytes."""
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


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


def _keep_used(items: list, used: set[int]) -> tuple[list, dict[int, int], int]:
    """The items whose index is in `used`, in order; old index -> new index; how many went."""
    keep = [i for i in range(len(items)) if i in used]
    return [items[i] for i in keep], {old: new for new, old in enumerate(keep)}, len(items) - len(keep)


def drop_unused_buffers(model: schema.ModelT) -> int:
    """Remove buffers no tensor or metadata entry refers to (buffer 0 stays); return how many went."""
    used = {0}
    for subgraph in model.subgraphs:
        used.update(t.buffer for t in subgraph.tensors)
    used.update(m.buffer for m in model.metadata or [])
    model.buffers, new_index, dropped = _keep_used(model.buffers, used)
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.buffer = new_index[tensor.buffer]
    for entry in model.metadata or []:
        entry.buffer = new_index[entry.buffer]
    return dropped


def drop_unused_opcodes(model: schema.ModelT) -> int:
    """Remove operator codes no operator uses; return how many went."""
    used = {op.opcodeIndex for sg in model.subgraphs for op in sg.operators}
    model.operatorCodes, new_index, dropped = _keep_used(model.operatorCodes, used)
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


def opcode_index(model: schema.ModelT, code: int) -> int:
    """Index of the builtin operator code in the model's opcodes, added if absent."""
    for index, opcode in enumerate(model.operatorCodes):
        if max(opcode.builtinCode, opcode.deprecatedBuiltinCode) == code and not opcode.customCode:
            return index
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = code
    opcode.deprecatedBuiltinCode = min(code, _PLACEHOLDER_FOR_GREATER_OP_CODES)
    opcode.version = 1
    model.operatorCodes.append(opcode)
    return len(model.operatorCodes) - 1


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
