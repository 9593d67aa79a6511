"""The one background worker: a bounded queue drained by a thread that hands each item to consumers.

Error policy (the only one in Vigil): an exception from a consumer ends *that consumer* — it is
logged once, closed, and gets nothing more — while the others carry on (a full disk stops the
JSON Lines file, not the MQTT feed); an exception from `make` (which turns what is put into what
consumers get) ends them all. `OutputClosed` (the reader of a pipe went away) ends a
consumer the same way without being an error. The first real error is raised again by `close()`,
so a run that lost output exits non-zero. When every consumer has ended, `ended` is set and the
pipeline stops as at the end of its source. Consumers get items in list order and are closed in
the reverse order.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, Iterator, Protocol, TypeVar

from app.errors import OutputClosed, VigilError
from app.timing import StageTimer
from app.watchdog import STUCK_AFTER

log = logging.getLogger(__name__)
_END = object()  # Prefetch: the items are exhausted

T = TypeVar("T", contravariant=True)
Item = TypeVar("Item")


class Consumer(Protocol[T]):
    """Takes every item in order on the worker's thread; close() once at the end."""

    def on_result(self, item: T) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    """What the worker is doing: items waiting, consumers still running, the first failure."""

    depth: int
    running: int
    failed: tuple[str, ...]


_STOP = object()


class Worker(Generic[Item]):
    """Calls every running consumer with each put() item, in order, on one thread of its own."""

    def __init__(self, consumers: list[Consumer], timer: StageTimer | None = None, size: int = 64,
                 name: str = "outputs", stage: str | None = "output", make: Callable | None = None) -> None:
        self.consumers = list(consumers)
        self.make = make  # turns each put() item into what the consumers get, on this thread
        self.timer = timer or StageTimer()
        self.stage = stage
        self.name = name
        self.error: BaseException | None = None
        self.ended = threading.Event()  # every consumer has ended (set at once when there are none)
        self._running = list(self.consumers)
        self._failed: list[str] = []
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self._busy: tuple[str, float] | None = None  # the consumer (or make) at work now, and since when
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        if not self._running:
            self.ended.set()

    # ---- for the watchdog (app/watchdog.py) ------------------------------------------------

    @property
    def watch_name(self) -> str:
        return self.name

    def thread_problem(self) -> str | None:
        """The worker's thread ended while it should run, or has been on one item for STUCK_AFTER s."""
        if self._closing or self.ended.is_set():
            return None
        if not self._thread.is_alive():
            return f"the {self.name} thread has ended: results reach no output"
        busy = self._busy
        if busy is not None and time.monotonic() - busy[1] >= STUCK_AFTER:
            return f"the {self.name} thread has been in {busy[0]} for {time.monotonic() - busy[1]:.0f} s (stuck)"
        return None

    def revive(self) -> str | None:
        """A new thread on the same queue when the old one died (the item it was on is lost)."""
        if self._closing or self._thread.is_alive():
            return None
        self._busy = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return f"the {self.name} thread"

    def put(self, item: Item, wait: float = 0.0, timeout: float | None = None) -> bool:
        """Queue an item for every consumer; blocks while the queue is full (back-pressure), at most
        `timeout` s when given (False: not queued). With `wait`, also wait up to that many seconds
        until every consumer has had it."""
        if self.ended.is_set():
            return True  # nobody left to get it: as good as handed on
        done = threading.Event() if wait > 0 else None
        try:
            self._q.put((item, done), timeout=timeout)
        except queue.Full:
            return False
        if done is not None:
            done.wait(wait)
        return True

    def snapshot(self) -> WorkerSnapshot:
        return WorkerSnapshot(self._q.qsize(), len(self._running), tuple(self._failed))

    def _run(self) -> None:
        while True:
            entry = self._q.get()
            if entry is _STOP:
                return
            item, done = entry
            if self.make is not None:
                self._busy = ("analytics", time.monotonic())
                try:
                    item = self.make(item)
                except Exception as e:  # noqa: BLE001 - nothing to hand on: every consumer ends with it
                    for c in list(self._running):
                        self._end(c, e)
                    self._busy = None
                    if done is not None:
                        done.set()
                    continue
            with self.timer.measure(self.stage) if self.stage else nullcontext():
                for c in list(self._running):
                    self._busy = (type(c).__name__, time.monotonic())
                    try:
                        c.on_result(item)
                    except Exception as e:  # noqa: BLE001 - the policy above: this consumer ends, the rest go on
                        self._end(c, e)
            self._busy = None
            if done is not None:
                done.set()

    def _end(self, consumer: Consumer, error: BaseException | None) -> None:
        name = type(consumer).__name__
        self._running.remove(consumer)
        if isinstance(error, OutputClosed):
            log.info("the reader of %s went away; that output stops", error)
        elif error is not None:
            self._failed.append(name)
            self.error = self.error or error
            log.error("%s stopped: %s", name, error, exc_info=not _user_error(error))
        try:
            consumer.close()
        except Exception as e:  # noqa: BLE001 - closing after a failure: report, don't mask the first error
            if not isinstance(e, OutputClosed):
                log.warning("closing %s failed too: %s", name, e)
        if not self._running:
            self.ended.set()

    def close(self, timeout: float | None = None) -> None:
        """Hand over what is queued, close every consumer still running (each flushes what it can),
        then raise the first error any consumer had."""
        self._closing = True
        self._q.put(_STOP)
        self._thread.join(timeout)
        for c in reversed(self._running):  # the reverse of the order they get results: MQTT before the
            self._running.remove(c)           # open-tracks file that waits for its acknowledgements
            try:
                c.close()
            except OutputClosed:
                pass
            except Exception as e:  # noqa: BLE001 - every consumer is closed even after one fails
                self._failed.append(type(c).__name__)
                self.error = self.error or e
        self.ended.set()
        if self.error is not None:
            raise self.error


def _user_error(e: BaseException) -> bool:
    """A VigilError names the problem in its message; anything else is a bug and gets its traceback."""
    return isinstance(e, VigilError)


Out = TypeVar("Out")


class Prefetch(Generic[Item, Out]):
    """Yields (item, fn(item)) in order, taking the items and computing fn on a thread of its own, `ahead`
    items ahead: while the caller works on item N, item N+1 is taken and prepared (the interpreter
    releases the GIL, so on two cores the two overlap). Item N is handed over as soon as it is ready,
    never held back until N+1 arrives: from a live source that would add a frame interval to every
    frame's latency. An error of fn, or of the items, reaches the caller in its place, after every
    item before it."""

    def __init__(self, items: Iterable[Item], fn: Callable[[Item], Out], name: str = "prefetch",
                 ahead: int = 1) -> None:
        self._items = items
        self._fn = fn
        self._done: queue.Queue = queue.Queue()
        self._slot = threading.Semaphore(ahead)  # items taken from the source and not yet handed over
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        it = iter(self._items)
        while True:
            self._slot.acquire()
            if self._stop.is_set():
                return
            try:
                item = next(it)
            except StopIteration:
                self._done.put(_END)
                return
            except BaseException as e:  # noqa: BLE001 - the items before it are handed over first
                self._done.put((None, None, e))
                return
            try:
                self._done.put((item, self._fn(item), None))
            except BaseException as e:  # noqa: BLE001 - reaches the caller in the item's place
                self._done.put((item, None, e))
                return

    def __iter__(self) -> Iterator[tuple[Item, Out]]:
        self._thread.start()
        while True:
            got = self._done.get()
            if got is _END:
                return
            item, out, error = got
            if error is not None:
                raise error
            self._slot.release()  # the next item may be taken while the caller works on this one
            yield item, out

    def close(self) -> None:
        """Stop the thread (after the item it is on; close the items' source first if it may block)."""
        self._stop.set()
        self._slot.release()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

