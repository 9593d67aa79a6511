"""`vigil bench`: the raw interpreter invoke rate (the physical limit here) against the end-to-end
pipeline rate doing the same number of invokes per frame, per-stage times and peak RSS."""
from __future__ import annotations

import platform
import resource
import sys
import tempfile
import threading
import time
from argparse import Namespace
from pathlib import Path

import numpy as np

from app.cpus import cpu_budget
from app.errors import ConfigError
from app.run_options import load


def raw_invoke_rate(model, tensor: np.ndarray, invokes: int) -> float:
    """Invokes per second of model.run on one prepared input, after a short warm-up; a model with several
    interpreters is driven by as many threads at once (`invokes` in all)."""
    callers = max(1, getattr(model, "interpreters", 1) or 1)

    def run(n: int) -> None:
        for _ in range(n):
            model.run([tensor])

    run(min(10, invokes) * callers)
    share = [invokes // callers + (i < invokes % callers) for i in range(callers)]
    threads = [threading.Thread(target=run, args=(n,), name=f"bench-{i}") for i, n in enumerate(share[1:])]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    run(share[0])
    for t in threads:
        t.join()
    return invokes / (time.perf_counter() - t0)


Key = tuple[int, int]  # (interpreters, threads of each); (0, 0): the model runs in a server


class ThreadSweep:
    """Raw invoke rates of the model in every arrangement that fills the CPUs this process may use (or the
    configured one, if more): one interpreter at 1..N threads, and N interpreters of one thread each, each
    running a frame of its own; a model that does not run in process (acap-runtime) is timed as it is."""

    def __init__(self, model, cfg, tensor: np.ndarray, invokes: int) -> None:
        self.tensor, self.invokes = tensor, invokes
        threads = getattr(model, "threads", None)
        own: Key = (getattr(model, "interpreters", 1), threads) if threads is not None else (0, 0)
        self.own = own
        self.models = {own: model}
        if threads is not None:
            from app.backends.tflite import load

            n = max(cpu_budget().cpus, own[0] * own[1])
            for key in [(1, t) for t in range(1, n + 1)] + [(n, 1)]:
                if key not in self.models:
                    self.models[key] = load(cfg.model.path, key[1], interpreters=key[0])
        self.models = dict(sorted(self.models.items(), key=lambda kv: (kv[0][0] > 1, kv[0])))
        self.rates: dict[Key, list[float]] = {k: [] for k in self.models}

    def measure(self) -> None:
        for key, model in self.models.items():
            self.rates[key].append(raw_invoke_rate(model, self.tensor, self.invokes))

    def rate(self, key: Key) -> float:
        return sum(self.rates[key]) / len(self.rates[key])

    @property
    def best(self) -> Key:
        """The fastest arrangement of all."""
        return max(self.rates, key=self.rate)

    @property
    def best_one(self) -> Key:
        """The fastest thread count of one interpreter (the figure the 0.9 target of issue 28 is set against)."""
        return max((k for k in self.rates if k[0] <= 1), key=self.rate)

    @staticmethod
    def label(key: Key) -> str:
        n, t = key
        if n == 0:
            return "the server"
        threads = f"{t} thread{'' if t == 1 else 's'}"
        return threads if n == 1 else f"{n} interpreters x {threads}"


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
    per = "through the inference server" if threads is None else "per arrangement (interpreters x threads)"
    print(f"raw invoke rate: the model alone on one prepared input ({args.invokes} invokes before and after the "
          f"pipeline run, mean of the two), {per}")
    for key, (before, after) in sweep.rates.items():
        rate = (before + after) / 2
        mark = "  <- best" if key == sweep.best and len(sweep.rates) > 1 else ""
        run_mark = "  (the pipeline's)" if key == sweep.own else ""
        print(f"  {sweep.label(key):<26}{rate:8.1f} invokes/s  (before {before:.1f}, after {after:.1f}){run_mark}{mark}")
    best = sweep.rate(sweep.best)
    print(f"end-to-end pipeline:   {summary.fps:8.2f} frames/s  ({summary.frames} frames in {summary.seconds:.1f} s, "
          f"{sweep.label(sweep.own) if threads else 'model on ' + cfg.model.backend.type}, {runs} invokes/frame)")
    print(f"best raw rate:         {best / runs:8.2f} frames/s  ({best:.1f} invokes/s at {sweep.label(sweep.best)}, "
          f"{runs} invokes/frame): the fastest this machine runs the model alone")
    print(f"ratio end-to-end/best: {summary.fps * runs / best:8.3f}  (the share of that best the whole pipeline reaches: "
          f"1.000 = as fast as the model alone in its best arrangement)")
    if threads and sweep.best_one != sweep.best:
        one = sweep.rate(sweep.best_one)
        print(f"ratio end-to-end/best of one interpreter: {summary.fps * runs / one:.3f}  (against {one:.1f} invokes/s "
              f"at {sweep.label(sweep.best_one)}, the best thread count of a single interpreter; target >= 0.9)")
    if threads and sweep.best != sweep.own:
        at_own = summary.fps * runs / sweep.rate(sweep.own)
        print(f"ratio end-to-end/raw in the pipeline's arrangement ({sweep.label(sweep.own)}): {at_own:.3f}"
              f"  (1.000 = no time lost outside the model's invokes in that arrangement)")
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
