"""The hand-over between a capture thread and the inference thread, shared by every source."""
from __future__ import annotations

import queue
import threading
from typing import Iterator

from app.types import Frame

_END = object()


class FrameQueue:
    """Bounded frame queue. Live sources: newest frame wins (the oldest waiting frame is dropped and
    counted). Files: the producer waits for the consumer and no frame is ever discarded."""

    def __init__(self, size: int, live: bool, stop: threading.Event) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self.live = live
        self.stop = stop  # set when the consumer closes the source
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        """Hand over a frame (from the capture thread)."""
        if self.live:
            while True:
                try:
                    self._q.put_nowait(frame)
                    return
                except queue.Full:
                    try:
                        self._q.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
        self._put_waiting(frame, force=False)

    def end(self) -> None:
        """Mark the end of the stream (always delivered, after every frame already queued)."""
        self._put_waiting(_END, force=True)

    def _put_waiting(self, item, force: bool) -> None:
        while True:
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self.stop.is_set():
                    continue  # the consumer is slow, not gone: wait
                if not force:
                    return
                try:  # closed while full: make room for the end marker
                    self._q.get_nowait()
                except queue.Empty:
                    pass

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self._q.get()
            if item is _END:
                return
            yield item

    @property
    def depth(self) -> int:
        """Frames decoded and waiting for inference."""
        return self._q.qsize()

    def drain(self) -> None:
        """Discard whatever waits (on close, so a blocked producer can finish)."""
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                return


class QueuedSource:
    """What every threaded source exposes from its FrameQueue (`self._frames`)."""

    _frames: FrameQueue

    @property
    def dropped(self) -> int:
        """Live frames discarded because inference was busy."""
        return self._frames.dropped

    @property
    def depth(self) -> int:
        """Frames captured and waiting for inference."""
        return self._frames.depth
