"""Inference backends, larod-style: a model file in, a `Model` with tensor specs and `run` out.

A backend is a plugin module (app.plugins): `Config` (the `model.backend` section of its type)
and `build(cfg, ctx, path) -> Model`, registered by one line in BACKENDS. Everything above this
layer sees only `Model` and `TensorSpec`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np

from app.modelfile import TensorSpec, check_model_file
from app.plugins import PluginConfig, Registry, RunContext

__all__ = ["BACKENDS", "Model", "TensorSpec", "build_backend", "check_model_file", "load"]

# one line per backend: type name -> module (its Config and build); a runtime is imported by build
BACKENDS = Registry("backend", "model.backend", {
    "tflite": "app.backends.tflite",
    "acap-runtime": "app.backends.acap_runtime",
}, default="tflite")


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


def build_backend(cfg: PluginConfig | dict, path: str | Path, ctx: RunContext | None = None) -> Model:
    """The model at `path`, loaded by the backend `cfg` (a model.backend section) names. The backend
    reports on ctx.health: loading, then ready (a remote one also retrying, with its errors)."""
    ctx = ctx or RunContext()
    ctx.health.set("loading")
    model = BACKENDS.build(BACKENDS.parse(cfg), ctx, path)
    ctx.health.set("ready")
    return model


def load(path: str | Path, backend: str = "tflite", ctx: RunContext | None = None, **keys) -> Model:
    """build_backend with the section as arguments: `load(p)` (TFLite), `load(p, "acap-runtime", ctx, device="artpec8")`."""
    return build_backend({"type": backend, **keys}, path, ctx)
