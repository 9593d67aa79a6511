"""TFLite backend for x86/arm laptops and tests: ai-edge-litert, else tflite-runtime."""
from __future__ import annotations

import logging
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence

import numpy as np
from pydantic import Field

from app.backends.native_log import native_stderr_to
from app.cpus import CpuBudget, cpu_budget
from app.errors import ModelError
from app.modelfile import TensorSpec, check_model_file
from app.plugins import PluginConfig, RunContext

log = logging.getLogger(__name__)


class Config(PluginConfig):
    """The in-process interpreter (x86 or arm, CPU)."""

    type: Literal["tflite"] = Field("tflite", description="tflite: in-process; acap-runtime: the camera's inference server")
    device: Literal["cpu"] = Field("cpu", description="tflite runs on the CPU only")
    threads: int | None = Field(
        None, ge=1, le=64, description="threads of each interpreter; default (null): the CPUs this process may use "
        "(its CPU affinity capped by its cgroup's CPU quota) shared among the interpreters (a camera's DLPU, "
        "backend acap-runtime, uses none of these)")
    interpreters: int | None = Field(
        None, ge=1, le=16, description="interpreters, each running a frame of its own at the same time (frames "
        "come out in order); default (null): one per CPU this process may use, at most 2 (each holds its own "
        "weights: ~30 MB for NanoDet), or one when the planner follows the tracks (preprocess.planner regions: one frame at a time)")


MAX_DEFAULT_INTERPRETERS = 2  # each holds its own copy of the packed weights: ~30 MB for NanoDet, a camera has 2 GB


@dataclass(frozen=True)
class Arrangement:
    """How the model runs on the CPUs: `interpreters` frames at once, each on `threads` threads."""

    interpreters: int
    threads: int
    how: str  # why, for the log: "as configured", or the CPU budget it was made from

    def describe(self) -> str:
        n, t = self.interpreters, self.threads
        return f"{n} interpreter{'' if n == 1 else 's'} x {t} thread{'' if t == 1 else 's'}, {self.how}"


def arrangement(threads: int | None, interpreters: int | None, frames: int | None = None,
                budget: CpuBudget | None = None) -> Arrangement:
    """Interpreters and threads for the CPUs this process may use (`budget`, default: this process's):
    what is configured stays; what is not shares the CPUs (one interpreter per CPU, at most 2 and at most
    `frames`, the frames the caller has in flight at once; each with the CPUs left to it as threads)."""
    if threads is not None and interpreters is not None:
        return Arrangement(interpreters, threads, "as configured")
    budget = budget or cpu_budget()
    cpus = budget.cpus
    if interpreters is None:
        interpreters = max(1, min(cpus // (threads or 1), MAX_DEFAULT_INTERPRETERS, frames or cpus))
    if threads is None:
        threads = max(1, cpus // interpreters)
    return Arrangement(interpreters, threads, f"the CPUs this process may use: {budget.describe()}")


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
    """TFLite interpreters behind the Model protocol: `interpreters` of them, so that as many callers
    (threads) can each run a frame at the same time; each call takes a free one (the interpreter releases
    the GIL while it runs). One thread per interpreter on each of N CPUs beats one interpreter on N
    threads here: no hand-over between its threads, no thread spinning while the frame's other work runs.

    reference_kernels runs TFLite's builtin kernels without the default delegate (XNNPACK), as
    the model tools do to tell a kernel's rounding from a quantisation error.
    """

    def __init__(self, path: Path, threads: int, reference_kernels: bool = False, interpreters: int = 1) -> None:
        module, self.runtime = _interpreter_module()
        options = {}
        if reference_kernels:
            options["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self._free: queue.SimpleQueue = queue.SimpleQueue()  # the interpreters not running now
        try:
            with native_stderr_to(log):  # the runtime's "INFO: Created … XNNPACK delegate" gets a time
                for _ in range(interpreters):
                    interp = module.Interpreter(model_path=str(path), num_threads=threads, **options)
                    interp.allocate_tensors()
                    self._free.put(interp)
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"cannot load model {path}: {first}") from None
        in_details = interp.get_input_details()
        out_details = interp.get_output_details()
        self.inputs = [_spec(d) for d in in_details]
        self.outputs = [_spec(d) for d in out_details]
        self._in_idx = [d["index"] for d in in_details]
        self._out_idx = [d["index"] for d in out_details]
        self.path = path
        self.threads = threads  # of each interpreter
        self.interpreters = interpreters  # frames it can run at once

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Set inputs, invoke, and return copies of the outputs (on the first free interpreter: any thread)."""
        if len(inputs) != len(self.inputs):
            raise ModelError(f"model takes {len(self.inputs)} inputs, got {len(inputs)}")
        for spec, x in zip(self.inputs, inputs):
            if x.dtype != spec.dtype:
                # never hand float to an integer model (or vice versa) and let the runtime guess
                raise ModelError(f"input {spec.name!r} expects {spec.dtype}, got {x.dtype}")
        interp = self._free.get()
        try:
            for spec, idx, x in zip(self.inputs, self._in_idx, inputs):
                interp.set_tensor(idx, x.reshape(spec.shape))
            interp.invoke()
            return [interp.get_tensor(i) for i in self._out_idx]
        finally:
            self._free.put(interp)

    def run_many(self, batches: Iterable[Sequence[np.ndarray]]) -> Iterator[list[np.ndarray]]:
        """One run per input list, lazily: in process there is nothing to overlap."""
        for inputs in batches:
            yield self.run(inputs)

    def close(self) -> None:
        """Nothing to release: the interpreter goes with the object."""


def load(path, threads: int | None = 1, reference_kernels: bool = False, interpreters: int | None = 1,
         frames: int | None = None) -> TFLiteModel:
    """Load a .tflite file for the CPU (XNNPACK, or the reference kernels) interpreter; None for threads or
    interpreters: shared out of the CPUs this process may use (app.cpus, `arrangement`)."""
    how = arrangement(threads, interpreters, frames)
    model = TFLiteModel(check_model_file(path), how.threads, reference_kernels, how.interpreters)
    log.info("loaded %s with %s (%s)", path, model.runtime, how.describe())
    return model


def build(cfg: Config, ctx: RunContext, path) -> TFLiteModel:
    return load(path, cfg.threads, interpreters=cfg.interpreters, frames=ctx.frames)
