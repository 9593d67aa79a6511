"""Camera frames through ACAP Runtime's VideoCapture service (VDO behind gRPC).

NewStream asks for a size, rate and format; GetFrame(frame_reference=0) waits for a frame
the stream has not delivered yet; DeleteStream on close. NV12 ("yuv", every chip) is converted
to BGR here; "rgb" is taken as delivered where the chip offers it (ARTPEC-9). VDO numbers every
frame it makes, so frames the camera made while Vigil was busy show as gaps and are counted.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Sequence

import grpc
import numpy as np

from app.acap.client import AcapClient, AcapRuntimeError, Endpoint, status_of
from app.acap.nv12 import FORMATS, decode_frame
from app.errors import SourceError
from app.health import Health
from app.retry import RetryPolicy

log = logging.getLogger(__name__)
# GetFrame on a stream the server does not know: ACAP Runtime says FAILED_PRECONDITION ("Stream not found")
LOST_STREAM = ("FAILED_PRECONDITION", "NOT_FOUND", "INVALID_ARGUMENT")
DELETE_TIMEOUT = 2.0  # s: DeleteStream at close; a healthy server answers in milliseconds


class FrameNumbers:
    """Which camera frames are new, by VDO sequence number (and timestamp), and how many the camera
    made that never arrived. Frame.seq stays increasing when a new stream starts counting again."""

    def __init__(self) -> None:
        self.last: tuple[int, int] | None = None  # (sequence_nbr, timestamp) of the last frame taken
        self.offset = 0  # added to the stream's numbers: the first frame of a new stream follows on
        self.seq = -1  # the last Frame.seq handed out
        self.missed = 0  # frames the camera made between two we took (we were busy)

    def new_stream(self) -> None:
        """A new stream (or server) counts from its own start."""
        self.last = None

    def take(self, sequence_nbr: int, timestamp: int) -> int | None:
        """The Frame.seq for this frame, or None when it is the frame taken last."""
        key = (sequence_nbr, timestamp)
        if self.last is not None:
            if key == self.last and key != (0, 0):  # (0, 0): a server that numbers nothing
                return None  # delivered again: never processed again
            gap = sequence_nbr - self.last[0] - 1
            if gap >= 0:
                self.missed += gap
            else:  # counting started again (or the server does not count): carry on from the last
                self.offset = self.seq + 1 - sequence_nbr
        else:
            self.offset = self.seq + 1 - sequence_nbr if self.seq >= 0 else 0
        self.last = key
        self.seq = sequence_nbr + self.offset
        return self.seq


class VideoStream:
    """One VideoCapture stream: opened (waiting up to connect_timeout s for the server), reopened when a
    restarted server forgot it, deleted on close. `settings` has format ("yuv"/"rgb"), width, height and
    framerate; opening failures are SourceErrors."""

    def __init__(self, endpoint: Endpoint, settings, policy: RetryPolicy, *, connect_timeout: float,
                 timeout: float, health: Health | None = None, stops: Sequence[threading.Event | None] = ()) -> None:
        self.settings = settings
        self.timeout = timeout
        self.numbers = FrameNumbers()
        self.stream_id = 0
        self.reopened = 0  # new streams opened after the server forgot ours (it restarted)
        self._client = AcapClient(endpoint, policy, health, stops)
        self.health = self._client.health
        self.pb = self._client.pb
        self._stub = self.pb.videocapture_pb2_grpc.VideoCaptureStub(self._client.channel)
        s = settings
        try:
            self._new_stream(connect_timeout, "acap_runtime.connect_timeout")
        except AcapRuntimeError as e:
            self._client.close()
            raise SourceError(str(e)) from None
        except grpc.RpcError as e:
            self._client.close()
            raise SourceError(f"camera refused stream {s.width}x{s.height}@{s.framerate} {s.format}: "
                              f"{self._client.describe(e)}") from None

    def _new_stream(self, limit: float, setting: str) -> None:
        s = self.settings
        vc = self.pb.videocapture_pb2
        request = vc.NewStreamRequest(settings=vc.StreamSettings(
            format=FORMATS[s.format], width=s.width, height=s.height, framerate=s.framerate,
            timestamp_type=vc.VDO_TIMESTAMP_UTC))
        self.health.set("connecting")
        reply = self._client.call("opening the camera stream",
                                  lambda: self._stub.NewStream(request, timeout=self.timeout),
                                  timeout=limit, setting=setting)
        self.stream_id = reply.stream_id
        self.numbers.new_stream()
        self.health.set("ready")
        log.info("camera stream %d: %dx%d @ %d fps, %s", self.stream_id, s.width, s.height, s.framerate, s.format)

    def read(self) -> tuple[int, float, np.ndarray] | None:
        """(Frame.seq, timestamp in s, BGR image) of the next frame never delivered before, or None when
        the stream ended (the emulator's video file). Waits through server restarts for retry_timeout s."""
        s = self.settings
        vc = self.pb.videocapture_pb2
        while True:
            request = vc.GetFrameRequest(stream_id=self.stream_id, frame_reference=0)
            try:
                # a close or SIGTERM cancels a GetFrame in flight: a stalled server would hold it for `timeout`
                reply = self._client.call("reading a camera frame",
                                          lambda: self._client.result(
                                              self._stub.GetFrame.future(request, timeout=self.timeout),
                                              "reading a camera frame"),
                                          setting="acap_runtime.retry_timeout")
            except grpc.RpcError as e:
                code, details = status_of(e)
                if code == grpc.StatusCode.OUT_OF_RANGE:  # the emulator's video file ended
                    log.info("camera stream ended: %s", details)
                    return None
                if getattr(code, "name", "") in LOST_STREAM and not self._client.retry.stopped():
                    # a restarted server forgot our stream: ask for a new one
                    log.warning("stream %d lost (%s); opening a new one", self.stream_id, details)
                    self._new_stream(self._client.policy.timeout, "acap_runtime.retry_timeout")
                    self.reopened += 1
                    continue
                raise AcapRuntimeError(f"reading a camera frame failed: {self._client.describe(e)}") from None
            self.health.set("ready")
            first = self.numbers.last is None
            seq = self.numbers.take(int(reply.sequence_nbr), int(reply.timestamp))
            if seq is None:  # the frame we already have: never processed twice
                continue
            image = decode_frame(reply.data, s.format, s.width, s.height)
            # VDO timestamps are microseconds; a server that sends none gets the clock instead
            ts = reply.timestamp / 1e6 if (reply.timestamp or first) else time.time()
            return seq, ts, image

    def close(self) -> None:
        """Delete the stream on the server and release the connection. A server that does not answer
        within DELETE_TIMEOUT s is not waited for: stopping (SIGTERM) must not hang on a stalled server."""
        if self.stream_id:
            try:
                self._stub.DeleteStream(self.pb.videocapture_pb2.DeleteStreamRequest(stream_id=self.stream_id),
                                        timeout=min(self.timeout, DELETE_TIMEOUT))
                log.info("camera stream %d deleted", self.stream_id)
            except grpc.RpcError as e:  # the server may be gone already; nothing left to free then
                log.warning("could not delete camera stream %d: %s", self.stream_id, self._client.describe(e))
            self.stream_id = 0
        self._client.close()
