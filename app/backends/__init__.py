"""Inference backends, larod-style: `load(model_path, device) -> Model` with tensor specs and `run`.

A backend is a module exposing `load(path, device, threads) -> Model`, registered in BACKENDS.
Everything above this layer sees only `Model` and `TensorSpec`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np

from app.errors import ModelError

# name -> module implementing `load`; imported lazily so a missing optional runtime only matters when chosen
BACKENDS = {"tflite": "app.backends.tflite", "acap-runtime": "app.backends.acap_runtime"}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Name, shape, dtype and (per-tensor) quantisation of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0  # 0 means not quantised
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

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


class Model(Protocol):
    """A loaded model: tensor specs and a run call on raw (already typed) tensors."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one inference; inputs and outputs in spec order and spec dtype."""
        ...

    def run_many(self, batches: Iterable[Sequence[np.ndarray]]) -> Iterator[list[np.ndarray]]:
        """Outputs of each input list in order, as they become ready (a remote backend keeps the next
        requests in flight while the caller decodes this one)."""
        ...

    def close(self) -> None:
        """Release what the model holds (a connection to an inference server)."""
        ...


TFLITE_MAGIC = b"TFL3"


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


def load(path: str | Path, backend: str = "tflite", device: str = "cpu", threads: int = 1, **options) -> Model:
    """Load a model with the named backend."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown inference backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    module = importlib.import_module(BACKENDS[backend])
    return module.load(path, device=device, threads=threads, **options)
