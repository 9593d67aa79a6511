"""Inference backends, larod-style: `load(model_path, device) -> Model` with tensor specs and `run`.

A backend is a module exposing `load(path, device, threads) -> Model`, registered in BACKENDS.
Everything above this layer sees only `Model` and `TensorSpec`.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np

from app.errors import ModelError
from app.modelfile import TensorSpec, check_model_file

__all__ = ["BACKENDS", "Model", "TensorSpec", "check_model_file", "load"]

# name -> module implementing `load`; imported lazily so a missing optional runtime only matters when chosen
BACKENDS = {"tflite": "app.backends.tflite", "acap-runtime": "app.backends.acap_runtime"}


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


def load(path: str | Path, backend: str = "tflite", device: str = "cpu", threads: int = 1, **options) -> Model:
    """Load a model with the named backend."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown inference backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    module = importlib.import_module(BACKENDS[backend])
    return module.load(path, device=device, threads=threads, **options)
