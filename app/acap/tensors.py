"""numpy arrays <-> tensorflow TensorProto, as ACAP Runtime's Predict sends and receives them."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

# numpy dtype <-> tensorflow.DataType number (values of the public types.proto)
_DT_BY_NUMPY = {
    np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.int32): 3, np.dtype(np.uint8): 4,
    np.dtype(np.int16): 5, np.dtype(np.int8): 6, np.dtype(np.int64): 9, np.dtype(np.bool_): 10,
    np.dtype(np.uint16): 17, np.dtype(np.float16): 19, np.dtype(np.uint32): 22, np.dtype(np.uint64): 23,
}
_NUMPY_BY_DT = {v: k for k, v in _DT_BY_NUMPY.items()}


def tensor_to_proto(array: np.ndarray, pb: SimpleNamespace):
    """A TensorProto (dtype, shape, raw little-endian bytes in tensor_content) for an array;
    `pb` is `app.protos.load()`."""
    a = np.ascontiguousarray(array)
    dt = _DT_BY_NUMPY.get(a.dtype)
    if dt is None:
        raise ValueError(f"dtype {a.dtype} cannot be sent to ACAP Runtime")
    t = pb.tensorflow_pb2.TensorProto(dtype=dt, tensor_content=a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    for size in a.shape:
        t.tensor_shape.dim.add(size=int(size))
    return t


def proto_to_array(t) -> np.ndarray:
    """The array in a TensorProto (tensor_content, or the typed *_val fields)."""
    dtype = _NUMPY_BY_DT.get(t.dtype)
    if dtype is None:
        raise ValueError(f"unsupported tensor dtype {t.dtype}")
    shape = tuple(int(d.size) for d in t.tensor_shape.dim)
    if t.tensor_content:
        a = np.frombuffer(t.tensor_content, dtype.newbyteorder("<")).astype(dtype, copy=False)
    elif t.float_val:
        a = np.asarray(t.float_val, dtype)
    elif t.int_val:
        a = np.asarray(t.int_val, dtype)
    elif t.int64_val:
        a = np.asarray(t.int64_val, dtype)
    elif t.uint32_val:
        a = np.asarray(t.uint32_val, dtype)
    else:
        a = np.zeros(0, dtype)
    n = int(np.prod(shape)) if shape else 1
    if a.size == 1 and n > 1:  # proto convention: one value fills the shape
        a = np.full(n, a[0], dtype)
    if a.size != n:
        raise ValueError(f"tensor has {a.size} values for shape {list(shape)}")
    return a.reshape(shape)
