"""Per-stage wall-clock timings kept in bounded windows, for stats and benchmarks."""
from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager
from typing import Iterator

import numpy as np


class StageTimer:
    """Durations (seconds) of named stages, the last `window` of each."""

    def __init__(self, window: int = 10000) -> None:
        self.window = window
        self.samples: dict[str, deque] = {}

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
            q = self.samples[stage] = deque(maxlen=self.window)
        q.append(seconds)

    def percentiles(self, stage: str, ps=(50, 95)) -> list[float]:
        """Milliseconds at the given percentiles (NaN when no samples)."""
        q = self.samples.get(stage)
        if not q:
            return [float("nan")] * len(ps)
        return [float(v) * 1000 for v in np.percentile(np.fromiter(q, float), ps)]

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"p50": ms, "p95": ms, "count": n}}."""
        out = {}
        for stage, q in self.samples.items():
            p50, p95 = self.percentiles(stage)
            out[stage] = {"p50": p50, "p95": p95, "count": len(q)}
        return out
