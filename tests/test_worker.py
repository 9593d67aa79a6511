"""The one worker: items in order to every consumer; a failing consumer ends alone; errors surface at close."""
import threading

import pytest

from app.errors import ConfigError, OutputClosed
from app.worker import Worker


class Keep:
    def __init__(self, fail_at=None, error=None):
        self.items, self.closed, self.fail_at, self.error = [], 0, fail_at, error

    def on_result(self, item):
        if item == self.fail_at:
            raise self.error
        self.items.append(item)

    def close(self):
        self.closed += 1


def test_every_consumer_gets_every_item_in_order_and_is_closed_once():
    a, b = Keep(), Keep()
    w = Worker([a, b])
    for i in range(100):
        w.put(i)
    w.close()
    assert a.items == b.items == list(range(100)) and a.closed == b.closed == 1


def test_a_failing_consumer_ends_alone_the_others_go_on_and_close_raises_its_error():
    bad, good = Keep(fail_at=3, error=ConfigError("output.jsonl: cannot write x: No space left on device")), Keep()
    w = Worker([bad, good])
    for i in range(10):
        w.put(i)
    with pytest.raises(ConfigError, match="No space left"):
        w.close()
    assert bad.items == [0, 1, 2] and bad.closed == 1
    assert good.items == list(range(10)) and good.closed == 1
    assert w.snapshot().failed == ("Keep",)


def test_a_closed_pipe_ends_that_output_without_an_error_and_ended_is_set_when_none_is_left():
    gone = Keep(fail_at=2, error=OutputClosed("stdout"))
    w = Worker([gone])
    for i in range(5):
        w.put(i)
    assert w.ended.wait(10)
    w.close()  # no error: a reader going away is a normal end
    assert gone.items == [0, 1] and gone.closed == 1


def test_put_with_wait_returns_after_every_consumer_had_the_item():
    seen = threading.Event()

    class Slow(Keep):
        def on_result(self, item):
            super().on_result(item)
            seen.set()

    s = Slow()
    w = Worker([s])
    w.put("reset", wait=10)
    assert seen.is_set() and s.items == ["reset"]
    w.close()


def test_consumers_are_closed_in_reverse_order():
    order = []

    class Named(Keep):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def close(self):
            order.append(self.name)

    w = Worker([Named("files"), Named("tracks file"), Named("mqtt")])
    w.close()
    assert order == ["mqtt", "tracks file", "files"]


def test_prefetch_yields_every_item_with_its_result_in_order_one_ahead_on_another_thread():
    from app.worker import Prefetch

    threads = set()

    def square(x):
        threads.add(threading.current_thread().name)
        return x * x

    p = Prefetch(range(50), square, name="prep")
    assert list(p) == [(x, x * x) for x in range(50)]
    p.close()
    assert threads == {"prep"}


def test_prefetch_hands_over_the_items_before_an_error_then_raises_it():
    from app.errors import SourceError
    from app.worker import Prefetch

    def frames():
        yield from range(3)
        raise SourceError("the stream ended badly")

    got = []
    p = Prefetch(frames(), lambda x: -x)
    with pytest.raises(SourceError, match="ended badly"):
        for item in p:
            got.append(item)
    assert got == [(0, 0), (1, -1), (2, -2)]
    p.close()

    def bad(x):
        if x == 2:
            raise ValueError("bug at 2")
        return x

    got = []
    q = Prefetch(range(5), bad)
    with pytest.raises(ValueError, match="bug at 2"):
        for item in q:
            got.append(item)
    assert got == [(0, 0), (1, 1)]
    q.close()


def test_an_error_making_the_item_ends_every_consumer_and_close_raises_it():
    a, b = Keep(), Keep()

    def make(x):
        if x == 3:
            raise RuntimeError("analytics bug")
        return x

    w = Worker([a, b], make=make)
    for i in range(6):
        w.put(i)
    assert w.ended.wait(10)
    with pytest.raises(RuntimeError, match="analytics bug"):
        w.close()
    assert a.items == b.items == [0, 1, 2] and a.closed == b.closed == 1


def test_prefetch_hands_over_an_item_before_the_next_one_arrives_and_takes_at_most_one_ahead():
    # a live source: frame N+1 only comes once frame N has been seen (here: handed to the caller).
    # Holding N back until N+1 arrived would add a frame interval to every frame's latency.
    from app.worker import Prefetch

    handed = [threading.Event() for _ in range(6)]
    waited_in_vain, taken_when_handed = [], []

    def live_frames():
        for i in range(6):
            yield i
            if i + 1 < 6 and not handed[i].wait(10):
                waited_in_vain.append(i)

    produced = []

    def prepare(x):
        produced.append(x)
        return x * 10

    p = Prefetch(live_frames(), prepare)
    got = []
    for item, out in p:
        taken_when_handed.append(len(produced))
        handed[item].set()
        got.append((item, out))
    p.close()
    assert got == [(i, i * 10) for i in range(6)]
    assert waited_in_vain == []  # every frame was handed over without waiting for the next
    # when frame k is handed over, at most frame k+1 has been taken from the source as well
    assert all(n <= k + 2 for k, n in enumerate(taken_when_handed)), taken_when_handed
