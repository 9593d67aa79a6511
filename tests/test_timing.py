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
    kept = timer.values("invoke")
    assert len(kept) == 1000 and np.array_equal(np.sort(kept), np.arange(4000, 5000) / 1000)
    assert timer.percentiles("invoke", (50,))[0] == pytest.approx(4499.5)
    assert timer.summary()["invoke"]["count"] == 1000


def test_stage_histogram_counts_every_sample_at_or_below_each_bound_since_start():
    from app.timing import BUCKETS, StageTimer

    t = StageTimer(window=2)  # the percentile window forgets; the histogram does not
    for v in (0.0005, 0.0006, 0.02, 30.0):
        t.add("invoke", v)
    buckets, total = t.histogram("invoke")
    by_bound = dict(buckets)
    assert by_bound[0.0005] == 1  # a sample equal to a bound is in it (Prometheus' le)
    assert by_bound[0.001] == 2 and by_bound[0.025] == 3 and by_bound[BUCKETS[-1]] == 3
    assert buckets[-1] == (float("inf"), 4) and total == 0.0005 + 0.0006 + 0.02 + 30.0
    assert len(t.values("invoke")) == 2


def test_threads_adding_stages_while_others_read_lose_no_sample_and_never_break_a_read():
    # four threads (capture, prepare, the frame loop, the outputs) add while the API reads: summary()
    # used to iterate a dict another thread was adding a stage to
    import threading

    t = StageTimer(window=50)
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(w: int) -> None:
        for i in range(300):
            t.add(f"stage-{w}-{i % 100}", 0.001)
            t.add("shared", 0.002)

    def reader() -> None:
        try:
            while not done.is_set():
                t.summary()
                t.histogram("shared")
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    r = threading.Thread(target=reader)
    r.start()
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    r.join()
    assert errors == []
    assert len(t.stages()) == 401
    buckets, _ = t.histogram("shared")
    assert buckets[-1][1] == 1200  # every sample of the stage all four threads added to
    assert sum(t.histogram(s)[0][-1][1] for s in t.stages() if s != "shared") == 1200
