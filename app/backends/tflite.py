"""TFLite backend for x86/arm laptops and tests: ai-edge-litert, else tflite-runtime."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence

import numpy as np
from pydantic import Field

from app.backends.native_log import native_stderr_to
from app.cpus import cpu_budget
from app.errors import ModelError
from app.modelfile import TensorSpec, check_model_file
from app.plugins import PluginConfig, RunContext

log = logging.getLogger(__name__)


class Config(PluginConfig):
    """The in-process interpreter (x86 or arm, CPU)."""

    type: Literal["tflite"] = Field("tflite", description="tflite: in-process; acap-runtime: the camera's inference server")
    device: Literal["cpu"] = Field("cpu", description="tflite runs on the CPU only")
    threads: int | None = Field(
        None, ge=1, le=64, description="interpreter threads; default (null): the CPUs this process may use, its CPU "
        "affinity capped by its cgroup's CPU quota (a camera's DLPU, backend acap-runtime, uses none of these)")


def _interpreter_module():
    # Deferred: the runtime is a large native library, loaded only when a model is.
    try:
        from ai_edge_litert import interpreter

        return interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter

        return interpreter, "tflite-runtime"
    except ImportError:
        raise ModelError(
            "no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime with numpy<2)"
        ) from None


def _spec(d: dict) -> TensorSpec:
    """The interpreter's view of a tensor as the TensorSpec `app.modelfile.read_model` gives for it."""
    scale, zero_point = d.get("quantization", (0.0, 0))
    params = d.get("quantization_parameters", {})
    return TensorSpec(
        name=d["name"],
        shape=tuple(int(s) for s in d["shape"]),
        dtype=np.dtype(d["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
        scales=tuple(float(s) for s in params.get("scales", ())),
        zero_points=tuple(int(z) for z in params.get("zero_points", ())),
        index=int(d["index"]),
    )


class TFLiteModel:
    """A TFLite interpreter behind the Model protocol.

    reference_kernels runs TFLite's builtin kernels without the default delegate (XNNPACK), as
    the model tools do to tell a kernel's rounding from a quantisation error.
    """

    def __init__(self, path: Path, threads: int, reference_kernels: bool = False) -> None:
        module, self.runtime = _interpreter_module()
        options = {}
        if reference_kernels:
            options["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            with native_stderr_to(log):  # the runtime's "INFO: Created … XNNPACK delegate" gets a time
                self._interp = module.Interpreter(model_path=str(path), num_threads=threads, **options)
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
        self.threads = threads

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


def load(path, threads: int | None = 1, reference_kernels: bool = False) -> TFLiteModel:
    """Load a .tflite file for the CPU (XNNPACK, or the reference kernels) interpreter; threads None: as
    many as the CPUs this process may use (app.cpus)."""
    how = "as configured"
    if threads is None:
        budget = cpu_budget()
        threads, how = budget.cpus, f"the CPUs this process may use: {budget.describe()}"
    model = TFLiteModel(check_model_file(path), threads, reference_kernels)
    log.info("loaded %s with %s (%d interpreter thread%s, %s)", path, model.runtime, threads,
             "" if threads == 1 else "s", how)
    return model


def build(cfg: Config, _ctx: RunContext, path) -> TFLiteModel:
    return load(path, cfg.threads)
