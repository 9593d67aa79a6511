"""`vigil bench`: the raw interpreter invoke rate (the physical limit here) against the end-to-end
pipeline rate doing the same number of invokes per frame, per-stage times and peak RSS."""
from __future__ import annotations

import platform
import resource
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

import numpy as np

from app.cpus import cpu_budget
from app.errors import ConfigError
from app.run_options import load


def raw_invoke_rate(model, tensor: np.ndarray, invokes: int) -> float:
    """Invokes per second of model.run on one prepared input, after a short warm-up."""
    for _ in range(min(10, invokes)):
        model.run([tensor])
    t0 = time.perf_counter()
    for _ in range(invokes):
        model.run([tensor])
    return invokes / (time.perf_counter() - t0)


class ThreadSweep:
    """Raw invoke rates of the model at 1..N interpreter threads, N the CPUs this process may use (or the
    configured count if higher); a model that does not run in process (acap-runtime) is timed as it is."""

    def __init__(self, model, cfg, tensor: np.ndarray, invokes: int) -> None:
        self.tensor, self.invokes = tensor, invokes
        threads = getattr(model, "threads", None)
        self.models = {threads or 0: model}
        if threads is not None:
            from app.backends.tflite import load

            for n in range(1, max(cpu_budget().cpus, threads) + 1):
                if n != threads:
                    self.models[n] = load(cfg.model.path, n)
        self.models = dict(sorted(self.models.items()))
        self.rates: dict[int, list[float]] = {n: [] for n in self.models}

    def measure(self) -> None:
        for n, model in self.models.items():
            self.rates[n].append(raw_invoke_rate(model, self.tensor, self.invokes))

    def rate(self, n: int) -> float:
        return sum(self.rates[n]) / len(self.rates[n])

    @property
    def best(self) -> int:
        return max(self.rates, key=self.rate)

    @staticmethod
    def label(n: int) -> str:
        return "the server" if n == 0 else f"{n} thread{'' if n == 1 else 's'}"


def baseline_config(args, config_path: str):
    """The config of a --baseline run: that file with this run's source, flags and frame budget."""
    return load(Namespace(**{**vars(args), "config": config_path, "model": None}))


def baseline_fps(args, cfg) -> dict:
    """End-to-end rate of another config (e.g. config/blazepose.yaml) on the same source and frame
    budget, run in this process right after the main one so both see the same machine state."""
    from app import pipeline  # the model and video stack: loaded when a bench runs, not with the CLI

    cfg.output.progress = False
    cfg.output.video = None
    with tempfile.TemporaryDirectory() as tmp:
        cfg.output.jsonl = str(Path(tmp) / "baseline.jsonl")
        summary = pipeline.run(cfg, max_frames=args.max_frames)
    return {"fps": summary.fps, "frames": summary.frames, "runs": summary.model_runs_per_frame}


def main(args) -> int:
    # the model and video stack: loaded when a bench runs, not with the CLI
    from app import pipeline
    from app.capture import build_source
    from app.detector import Detector
    from app.plugins import RunContext

    if args.invokes < 1:
        raise ConfigError(f"--invokes must be at least 1 (got {args.invokes})")
    cfg = load(args)
    # a bad --baseline file is refused now, not after the main run's minutes of measuring
    baselines = [(path, baseline_config(args, path)) for path in args.baseline or []]
    cfg.output.progress = False
    cfg.output.video = None
    with tempfile.TemporaryDirectory() as tmp:
        if not cfg.output.jsonl or cfg.output.jsonl == "-":
            cfg.output.jsonl = str(Path(tmp) / "bench.jsonl")
        detector = Detector.load(cfg)  # one model load for the raw rate and the pipeline (one on a camera's server too)
        src = build_source(cfg.source, RunContext(acap=cfg.acap_runtime))
        first = next(iter(src))
        src.close()
        views = detector.views(first.size)
        tensor = detector.converter.tensor(views[-1], first.image, detector.rgb)
        threads = getattr(detector.model, "threads", None)  # None: the model runs in a server
        print(f"machine: {platform.machine()} {platform.processor() or ''}, python {platform.python_version()}, "
              f"runtime {getattr(detector.model, 'runtime', cfg.model.backend.type)}, backend {cfg.model.backend}"
              f"{f', interpreter threads {threads}' if threads else ''}")
        where = next(iter(cfg.source.inputs().values()), cfg.source.type)  # the file or URL; else the source type
        print(f"model: {cfg.model.path}  source: {where}  model runs per frame: {len(views)}")
        sweep = ThreadSweep(detector.model, cfg, tensor, args.invokes)
        sweep.measure()
        summary = pipeline.run(cfg, max_frames=args.max_frames, detector=detector)
        sweep.measure()
        detector.model.close()
    runs = len(views)
    per = "through the inference server" if threads is None else "per interpreter thread count"
    print(f"raw invoke rate: the model alone on one prepared input ({args.invokes} invokes before and after the "
          f"pipeline run, mean of the two), {per}")
    for n, (before, after) in sweep.rates.items():
        rate = (before + after) / 2
        mark = "  <- best" if n == sweep.best and len(sweep.rates) > 1 else ""
        run_mark = "  (the pipeline's)" if n == threads else ""
        print(f"  {sweep.label(n):<12}{rate:8.1f} invokes/s  (before {before:.1f}, after {after:.1f}){run_mark}{mark}")
    best = sweep.rate(sweep.best)
    print(f"end-to-end pipeline:   {summary.fps:8.2f} frames/s  ({summary.frames} frames in {summary.seconds:.1f} s, "
          f"{sweep.label(threads) if threads else 'model on ' + cfg.model.backend.type}, {runs} invokes/frame)")
    print(f"best raw rate:         {best / runs:8.2f} frames/s  ({best:.1f} invokes/s at {sweep.label(sweep.best)}, "
          f"{runs} invokes/frame): the fastest this machine runs the model alone")
    print(f"ratio end-to-end/best: {summary.fps * runs / best:8.3f}  (the share of that best the whole pipeline reaches: "
          f"1.000 = as fast as the model alone at its best thread count; target >= 0.9)")
    if threads and sweep.best != threads:
        at_own = summary.fps * runs / sweep.rate(threads)
        print(f"ratio end-to-end/raw at the pipeline's {sweep.label(threads)}: {at_own:.3f}"
              f"  (1.000 = no time lost outside the model's invokes at that thread count)")
    print(f"{'stage':<12}{'p50 ms':>10}{'p95 ms':>10}{'count':>8}   (per call: preprocess once per frame, invoke and decode once per view)")
    order = ["capture", "preprocess", "invoke", "decode", "merge", "track", "analytics", "output"]
    for stage in order + sorted(set(summary.stages) - set(order)):
        s = summary.stages.get(stage)
        if s:
            print(f"{stage:<12}{s['p50']:>10.3f}{s['p95']:>10.3f}{s['count']:>8}")
    for path, base_cfg in baselines:
        base = baseline_fps(args, base_cfg)
        print(f"baseline {path}: {base['fps']:.2f} frames/s end to end ({base['frames']} frames, "
              f"{base['runs']} model runs/frame); this config is {summary.fps / base['fps']:.2f}x faster")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.0f} MiB")
    sys.stdout.flush()
    return 0
