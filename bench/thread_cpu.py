"""CPU time per frame of every thread of a real pipeline run, and how much of it is the model's: what
bounds the end-to-end rate when every CPU is busy (issue 28).

    python bench/thread_cpu.py                          # the default config on the sample clip, 600 frames
    python bench/thread_cpu.py --interpreters 1 --threads 2 --frames 300

Each thread's CPU time is read from /proc/self/task/<tid>/stat (Linux) before the run and, by a sampler
thread every 50 ms, until the run ends (threads that end with the run keep their last reading). The
model's own share is the thread CPU time (time.thread_time) of every call of its run(), whichever
thread makes it. Printed per frame: each thread's CPU, the model's, and everything else ("outside the
model"; only with one thread per interpreter, whose run() does all of its work on the calling thread).
The kernel's per-thread figures come in ticks (10 ms at the usual 100 Hz) and are sampled, a few ticks
either way: run hundreds of frames.
CPU time, not wall clock: a busy machine changes it less than a rate, but cache contention
still shows. The sampler's own CPU is printed and left out of the totals.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _proc import stat_cpu  # noqa: E402
from app.config import load_config  # noqa: E402

SAMPLER = "bench-sampler"


def task_cpu() -> dict[int, tuple[str, float]]:
    """Every thread of this process: tid -> (kernel's name for it, CPU seconds so far)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            out[int(tid)] = stat_cpu(f"/proc/self/task/{tid}/stat")
        except OSError:  # ended between the listing and the read
            continue
    return out


class Sampler:
    """The last CPU reading of every thread, with Python's name for it where it has one."""

    def __init__(self) -> None:
        self.before = task_cpu()
        self.seen: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=SAMPLER, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        names = {t.native_id: t.name for t in threading.enumerate()}
        for tid, (name, cpu) in task_cpu().items():
            self.seen[tid] = (names.get(tid, name), cpu)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def stop(self) -> dict[str, float]:
        """CPU seconds spent during the run, per thread name (threads of one name summed)."""
        self._stop.set()
        self._thread.join()
        self._sample()
        spent: dict[str, float] = {}
        for tid, (name, cpu) in self.seen.items():
            used = cpu - self.before.get(tid, (name, 0.0))[1]
            if used > 0:
                spent[name] = spent.get(name, 0.0) + used
        return spent


class TimedModel:
    """The model, with the thread CPU time of every run() added up (any thread)."""

    def __init__(self, model) -> None:
        self.model = model
        self.seconds = 0.0
        self.runs = 0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.model, name)

    def run(self, inputs):
        c0 = time.thread_time()
        try:
            return self.model.run(inputs)
        finally:
            used = time.thread_time() - c0
            with self._lock:
                self.seconds += used
                self.runs += 1

    def run_many(self, batches):
        return (self.run(b) for b in batches)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--config", default=str(ROOT / "config" / "default.yaml"))
    p.add_argument("--interpreters", type=int, help="model.backend.interpreters (default: the config's)")
    p.add_argument("--threads", type=int, help="model.backend.threads (default: the config's)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from app import pipeline
    from app.detector import Detector

    keys = {"output.progress": False, "output.video": None}
    if args.interpreters:
        keys["model.backend.interpreters"] = args.interpreters
    if args.threads:
        keys["model.backend.threads"] = args.threads
    cfg = load_config(args.config, keys, env={})
    detector = Detector.load(cfg)
    model = detector.model = TimedModel(detector.model)
    with tempfile.TemporaryDirectory() as tmp:
        cfg.output.jsonl = str(Path(tmp) / "bench.jsonl")
        sampler = Sampler()
        summary = pipeline.run(cfg, max_frames=args.frames, detector=detector)
        spent = sampler.stop()
    n = max(1, summary.frames)
    arrangement = f"{getattr(model, 'interpreters', 1)} interpreter(s) x {getattr(model, 'threads', '?')} thread(s)"
    print(f"{summary.frames} frames, {arrangement}, {summary.fps:.1f} frames/s end to end (wall clock; "
          f"this machine's load decides it)")
    print(f"{'thread':<24}{'CPU ms/frame':>14}")
    mine = spent.pop(SAMPLER, 0.0)
    for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"{name:<24}{seconds * 1000 / n:>14.2f}")
    total = sum(spent.values())
    print(f"{'all threads':<24}{total * 1000 / n:>14.2f}")
    print(f"{'  the model (run)':<24}{model.seconds * 1000 / n:>14.2f}   ({model.runs} runs)")
    if getattr(model, "threads", 1) == 1:
        print(f"{'  outside the model':<24}{(total - model.seconds) * 1000 / n:>14.2f}")
    else:  # the interpreter's helper threads are native ones, named like OpenCV's pool: not told apart
        print("  outside the model: not split (an interpreter of several threads runs part of each run on native "
              "threads of its own, counted above among the unnamed ones but not in run())")
    print(f"({SAMPLER}, left out: {mine * 1000 / n:.2f} ms/frame)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
