"""Per-stage wall-clock timings kept in bounded windows, for stats and benchmarks."""
from __future__ import annotations

import threading
import time
from bisect import bisect_left
from contextlib import contextmanager
from typing import Iterator

import numpy as np


class Ring:
    """The last `size` float samples in one preallocated array: its memory is fixed from the first
    sample on, so a long run's timings never grow the heap (a deque of floats takes 4x as much,
    and keeps growing until the window fills, an hour into a 3 fps run)."""

    def __init__(self, size: int) -> None:
        self._buf = np.empty(size, np.float64)
        self._n = 0  # samples added over the ring's life

    def append(self, value: float) -> None:
        self._buf[self._n % len(self._buf)] = value
        self._n += 1

    def __len__(self) -> int:
        return min(self._n, len(self._buf))

    def values(self) -> np.ndarray:
        """A copy of the kept samples (oldest first is not guaranteed)."""
        return self._buf[: len(self)].copy()


# upper bounds (seconds) of the latency histograms: 0.5 ms (a tracker update) to 10 s (a DLPU compile)
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Every sample since start, counted per bucket (Prometheus' histogram): fixed memory, never reset."""

    def __init__(self) -> None:
        self._counts = [0] * (len(BUCKETS) + 1)  # the last one: above every bound
        self.sum = 0.0

    def add(self, seconds: float) -> None:
        self._counts[bisect_left(BUCKETS, seconds)] += 1  # a sample equal to a bound counts in it (le)
        self.sum += seconds

    def cumulative(self) -> tuple[list[tuple[float, int]], float]:
        """[(upper bound, samples at or below it)] ending with (inf, all samples), and their sum."""
        counts, total = list(self._counts), self.sum
        out, running = [], 0
        for bound, n in zip((*BUCKETS, float("inf")), counts):
            running += n
            out.append((bound, running))
        return out, total


class StageTimer:
    """Durations (seconds) of named stages: the last `window` of each (for percentiles) and a histogram
    of all of them since start (for Prometheus). Several threads add (capture, prepare, the frame loop,
    the outputs) while others read (the API, MQTT stats): the timer owns one lock that every write and
    every read holds, so a read never sees a stage half made nor a dict changing under it."""

    def __init__(self, window: int = 10000) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._samples: dict[str, Ring] = {}
        self._histograms: dict[str, Histogram] = {}

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            q = self._samples.get(stage)
            if q is None:
                self._histograms[stage] = Histogram()
                q = self._samples[stage] = Ring(self.window)
            q.append(seconds)
            self._histograms[stage].add(seconds)

    def stages(self) -> list[str]:
        """The stages measured so far."""
        with self._lock:
            return list(self._samples)

    def values(self, stage: str) -> np.ndarray:
        """A copy of the stage's kept samples (seconds; empty when none)."""
        with self._lock:
            q = self._samples.get(stage)
            return q.values() if q is not None else np.empty(0)

    def histogram(self, stage: str) -> tuple[list[tuple[float, int]], float] | None:
        """The stage's histogram (Histogram.cumulative), None when the stage has no sample."""
        with self._lock:
            h = self._histograms.get(stage)
            return h.cumulative() if h is not None else None

    def percentiles(self, stage: str, ps=(50, 95)) -> list[float]:
        """Milliseconds at the given percentiles (NaN when no samples)."""
        vals = self.values(stage)
        if not len(vals):
            return [float("nan")] * len(ps)
        return [float(v) * 1000 for v in np.percentile(vals, ps)]

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"p50": ms, "p95": ms, "count": n}}."""
        out = {}
        for stage in self.stages():
            vals = self.values(stage)
            p50, p95 = self.percentiles(stage)
            out[stage] = {"p50": p50, "p95": p95, "count": len(vals)}
        return out
