"""The hand-over between a capture thread and the inference thread, shared by every source.

Every source reports its end the same way: the capture thread calls `end(error)` once, with
None when the stream simply ended (or the source was closed) and the SourceError it failed
with otherwise; the consumer gets every frame queued before, then the error is raised.
"""
from __future__ import annotations

import collections
import logging
import threading
from typing import Callable, Iterator

from app.capture import SourceSnapshot
from app.errors import SourceError, VigilError
from app.types import Frame

log = logging.getLogger(__name__)
CANCEL_POLL = 0.2  # s between looks at the run's stop while no frame comes


class FrameQueue:
    """Bounded frame queue. Live sources: newest frame wins (the oldest waiting frame is dropped and
    counted). Files: the producer waits for the consumer and no frame is ever discarded."""

    def __init__(self, size: int, live: bool, cancel: threading.Event | None = None) -> None:
        self.size = size
        self.live = live
        self.cancel = cancel  # the run's stop (SIGTERM): the consumer stops waiting for frames
        self.dropped = 0
        self._frames: collections.deque[Frame] = collections.deque()
        self._changed = threading.Condition()
        self._ended = False  # the producer is done (the end marker, after the frames queued before it)
        self._error: BaseException | None = None  # what the producer failed with, raised after the last frame
        self._closed = False  # the consumer is gone

    def put(self, frame: Frame) -> None:
        """Hand over a frame (from the capture thread); dropped when the queue was closed."""
        with self._changed:
            if self.live:
                while len(self._frames) >= self.size:
                    self._frames.popleft()
                    self.dropped += 1
            else:
                while len(self._frames) >= self.size and not self._closed:
                    self._changed.wait()  # the consumer is slow, not gone: wait
            if self._closed:
                return
            self._frames.append(frame)
            self._changed.notify_all()

    def end(self, error: BaseException | None = None) -> None:
        """Mark the end of the stream, after every frame already queued; `error` is raised to the consumer
        once it has taken them."""
        with self._changed:
            self._ended = True
            self._error = error
            self._changed.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        """The frames in order, then the producer's error. Ends early when the run is stopped: a stalled
        live source (a camera rebooting) must not hold a SIGTERM until its next frame."""
        while True:
            with self._changed:
                while not (self._frames or self._ended or self._closed):
                    if self.cancel is None:
                        self._changed.wait()
                    elif self.cancel.is_set():
                        return
                    else:
                        self._changed.wait(CANCEL_POLL)
                if not self._frames:
                    if self._error is not None and not self._closed:
                        raise self._error
                    return
                frame = self._frames.popleft()
                self._changed.notify_all()
            yield frame

    @property
    def depth(self) -> int:
        """Frames decoded and waiting for inference."""
        with self._changed:
            return len(self._frames)

    def close(self) -> None:
        """Discard whatever waits and wake a blocked producer (the consumer is closing the source)."""
        with self._changed:
            self._closed = True
            self._frames.clear()
            self._changed.notify_all()


class QueuedSource:
    """What every threaded source shares: its FrameQueue (`self._frames`) and how its capture thread ends."""

    _frames: FrameQueue
    _stop: threading.Event  # set by close()
    _cancel: threading.Event | None = None  # the run's stop (SIGTERM), when the source was given it
    read = 0  # counters a source sets on itself as it goes
    skipped = 0
    reconnects = 0
    ended_early = 0
    early_end = ""

    @property
    def dropped(self) -> int:
        """Live frames discarded because inference was busy."""
        return self._frames.dropped

    @property
    def depth(self) -> int:
        """Frames captured and waiting for inference."""
        return self._frames.depth

    def _run_capture(self, loop: Callable[[], None]) -> None:
        """The capture thread: run `loop`, then end the queue with the SourceError it failed with (none
        when it returned or the source or the run was stopped), so the consumer raises it after the last
        frame."""
        error: SourceError | None = None
        try:
            loop()
        except SourceError as e:
            error = e
        except VigilError as e:  # e.g. the inference server gave up: still the source failing
            error = SourceError(str(e))
        except Exception as e:  # a bug here must neither hang the consumer nor end the run as a success
            error = SourceError(f"capture failed: {type(e).__name__}: {e}")
            error.__cause__ = e  # the traceback, for --debug
        finally:
            if error is not None and (self._stop.is_set() or (self._cancel is not None and self._cancel.is_set())):
                log.debug("capture ended while closing: %s", error)
                error = None
            self._frames.end(error)

    def __iter__(self) -> Iterator[Frame]:
        return iter(self._frames)

    def snapshot(self) -> SourceSnapshot:
        """The counters now (any thread)."""
        return SourceSnapshot(self.read, self.skipped, self.dropped, self.reconnects, self.depth, self.ended_early,
                              self.early_end)
