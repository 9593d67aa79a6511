"""Per-stage wall-clock timings kept in bounded windows, for stats and benchmarks."""
from __future__ import annotations

import time
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
        """A copy of the kept samples (oldest first is not guaranteed); safe while another thread appends."""
        return self._buf[: len(self)].copy()


class StageTimer:
    """Durations (seconds) of named stages, the last `window` of each."""

    def __init__(self, window: int = 10000) -> None:
        self.window = window
        self.samples: dict[str, Ring] = {}

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0)

    def add(self, stage: str, seconds: float) -> None:
        q = self.samples.get(stage)
        if q is None:
            q = self.samples[stage] = Ring(self.window)
        q.append(seconds)

    def percentiles(self, stage: str, ps=(50, 95)) -> list[float]:
        """Milliseconds at the given percentiles (NaN when no samples)."""
        q = self.samples.get(stage)
        if not q:
            return [float("nan")] * len(ps)
        return [float(v) * 1000 for v in np.percentile(q.values(), ps)]

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"p50": ms, "p95": ms, "count": n}}."""
        out = {}
        for stage, q in self.samples.items():
            p50, p95 = self.percentiles(stage)
            out[stage] = {"p50": p50, "p95": p95, "count": len(q)}
        return out
