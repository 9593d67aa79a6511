"""app.timing: stage timings in fixed memory."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from app.timing import StageTimer


def test_stage_timings_keep_the_last_window_and_never_grow_after_the_first_sample():
    timer = StageTimer(window=1000)
    tracemalloc.start()
    try:
        timer.add("invoke", 0.0)
        first = tracemalloc.get_traced_memory()[0]
        for i in range(1, 5000):
            timer.add("invoke", i / 1000)
        grown = tracemalloc.get_traced_memory()[0] - first
    finally:
        tracemalloc.stop()
    assert grown < 1024  # a deque of floats would hold ~32 KiB more per 1000 samples
    kept = timer.samples["invoke"].values()
    assert len(kept) == 1000 and np.array_equal(np.sort(kept), np.arange(4000, 5000) / 1000)
    assert timer.percentiles("invoke", (50,))[0] == pytest.approx(4499.5)
    assert timer.summary()["invoke"]["count"] == 1000
