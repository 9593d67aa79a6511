"""TFLite backend for x86/arm laptops and tests: ai-edge-litert, else tflite-runtime."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from app.backends import TensorSpec, check_model_file
from app.errors import ModelError

log = logging.getLogger(__name__)


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise ModelError(
            "no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime with numpy<2)"
        ) from None


def _spec(d: dict) -> TensorSpec:
    scale, zero_point = d.get("quantization", (0.0, 0))
    return TensorSpec(
        name=d["name"],
        shape=tuple(int(s) for s in d["shape"]),
        dtype=np.dtype(d["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


class TFLiteModel:
    """A TFLite interpreter behind the Model protocol."""

    def __init__(self, path: Path, threads: int) -> None:
        interpreter_cls, self.runtime = _interpreter_class()
        try:
            self._interp = interpreter_cls(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"cannot load model {path}: {first}") from None
        in_details = self._interp.get_input_details()
        out_details = self._interp.get_output_details()
        self.inputs = [_spec(d) for d in in_details]
        self.outputs = [_spec(d) for d in out_details]
        self._in_idx = [d["index"] for d in in_details]
        self._out_idx = [d["index"] for d in out_details]
        self.path = path

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Set inputs, invoke, and return copies of the outputs."""
        if len(inputs) != len(self.inputs):
            raise ModelError(f"model takes {len(self.inputs)} inputs, got {len(inputs)}")
        for spec, idx, x in zip(self.inputs, self._in_idx, inputs):
            if x.dtype != spec.dtype:
                # never hand float to an integer model (or vice versa) and let the runtime guess
                raise ModelError(f"input {spec.name!r} expects {spec.dtype}, got {x.dtype}")
            self._interp.set_tensor(idx, x.reshape(spec.shape))
        self._interp.invoke()
        return [self._interp.get_tensor(i) for i in self._out_idx]

    def run_many(self, batches: Iterable[Sequence[np.ndarray]]) -> Iterator[list[np.ndarray]]:
        """One run per input list, lazily: in process there is nothing to overlap."""
        for inputs in batches:
            yield self.run(inputs)

    def close(self) -> None:
        """Nothing to release: the interpreter goes with the object."""


def load(path, device: str = "cpu", threads: int = 1, **_options) -> TFLiteModel:
    """Load a .tflite file for the CPU (XNNPACK) interpreter."""
    if device not in ("cpu", "auto"):
        raise ModelError(f"the tflite backend runs on the CPU only (device {device!r} requested)")
    model = TFLiteModel(check_model_file(path), threads)
    log.info("loaded %s with %s (%d thread%s)", path, model.runtime, threads, "" if threads == 1 else "s")
    return model
