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
from typing import Iterator

import cv2
import numpy as np

from app.backends.acap_runtime_client import AcapRuntimeError, Endpoint, Health, Retrier, RetryPolicy
from app.capture.framequeue import FrameQueue, QueuedSource
from app.errors import SourceError
from app.timing import StageTimer
from app.types import Frame

log = logging.getLogger(__name__)
FORMATS = {"yuv": 3, "rgb": 8}  # videocapture.v1.StreamFormat values
# GetFrame on a stream the server does not know: ACAP Runtime says FAILED_PRECONDITION ("Stream not found")
LOST_STREAM = ("FAILED_PRECONDITION", "NOT_FOUND", "INVALID_ARGUMENT")


def nv12_size(width: int, height: int) -> int:
    """Bytes in an unpadded NV12 frame."""
    return width * height * 3 // 2


def nv12_to_bgr(data: bytes | np.ndarray, width: int, height: int) -> np.ndarray:
    """An NV12 frame (Y plane, then interleaved U/V at half resolution) as BGR HxWx3 uint8.

    Rows may be padded: the row pitch is then worked out from the buffer size.
    """
    buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    rows = height * 3 // 2
    if width % 2 or height % 2:
        raise SourceError(f"NV12 needs even width and height, got {width}x{height}")
    if buf.size % rows or buf.size < nv12_size(width, height):
        raise SourceError(f"NV12 frame of {buf.size} bytes does not fit {width}x{height}")
    pitch = buf.size // rows
    yuv = buf.reshape(rows, pitch)[:, :width]
    return cv2.cvtColor(np.ascontiguousarray(yuv), cv2.COLOR_YUV2BGR_NV12)


def nv12_to_rgb(data: bytes | np.ndarray, width: int, height: int) -> np.ndarray:
    """An NV12 frame as RGB HxWx3 uint8 (what Axis's VideoCaptureClient returns)."""
    return cv2.cvtColor(nv12_to_bgr(data, width, height), cv2.COLOR_BGR2RGB)


def bgr_to_nv12(image: np.ndarray) -> np.ndarray:
    """A BGR image (even width and height) as NV12 bytes (flat uint8), as VDO delivers YUV frames."""
    h, w = image.shape[:2]
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    y, u, v = i420[: w * h], i420[w * h : w * h * 5 // 4], i420[w * h * 5 // 4 :]
    out = np.empty(nv12_size(w, h), np.uint8)
    out[: w * h] = y
    out[w * h :: 2] = u
    out[w * h + 1 :: 2] = v
    return out


def decode_frame(data: bytes, fmt: str, width: int, height: int) -> np.ndarray:
    """GetFrame bytes in the stream's format as a BGR image."""
    if fmt == "yuv":
        return nv12_to_bgr(data, width, height)
    rgb = np.frombuffer(data, np.uint8)
    if rgb.size != width * height * 3:
        raise SourceError(f"RGB frame of {rgb.size} bytes does not fit {width}x{height}")
    return cv2.cvtColor(rgb.reshape(height, width, 3), cv2.COLOR_RGB2BGR)


class FrameNumbers:
    """Which camera frames are new, by VDO sequence number (and timestamp), and how many the camera
    made that never arrived. Frame.seq stays increasing when a new stream starts counting again."""

    def __init__(self) -> None:
        self.last: tuple[int, int] | None = None  # (sequence_nbr, timestamp) of the last frame taken
        self.offset = 0  # added to the stream's numbers: the first frame of a new stream follows on
        self.seq = -1  # the last Frame.seq handed out
        self.missed = 0  # frames the camera made between two we took (we were busy)
        self.repeats = 0  # frames delivered again, not processed again

    def new_stream(self) -> None:
        """A new stream (or server) counts from its own start."""
        self.last = None

    def take(self, sequence_nbr: int, timestamp: int) -> int | None:
        """The Frame.seq for this frame, or None when it is the frame taken last."""
        key = (sequence_nbr, timestamp)
        if self.last is not None:
            if key == self.last and key != (0, 0):  # (0, 0): a server that numbers nothing
                self.repeats += 1
                return None
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


class AcapRuntimeSource(QueuedSource):
    """Frames from a VideoCapture stream, fetched in a thread of their own."""

    def __init__(self, cfg, timer: StageTimer | None = None, acap=None, health: Health | None = None,
                 cancel=None) -> None:
        import grpc

        from app import protos
        from app.config import AcapRuntimeConfig

        self.cfg = cfg
        acap = acap or AcapRuntimeConfig()
        self.pb = protos.load()
        self.timer = timer or StageTimer()
        s = cfg.stream
        if s.format == "yuv" and (s.width % 2 or s.height % 2):
            raise SourceError(f"source.stream: NV12 needs an even width and height (got {s.width}x{s.height})")
        self.size = (s.width, s.height)
        self.fps = float(s.framerate)
        self.total = None
        self.live = True if cfg.live is None else cfg.live
        self.skipped = 0
        self.read = 0
        self.numbers = FrameNumbers()
        self.endpoint = Endpoint.from_config(acap)
        self.health = health or Health()
        self._stop = threading.Event()
        self._retry = Retrier(self.endpoint, RetryPolicy(timeout=acap.retry_timeout), self.health, self._stop, cancel)
        self.timeout = acap.timeout
        self._channel = self.endpoint.channel()
        self._stub = self.pb.videocapture_pb2_grpc.VideoCaptureStub(self._channel)
        self.stream_id = 0
        self.error: Exception | None = None
        try:
            self._new_stream(acap.connect_timeout)
        except AcapRuntimeError as e:
            self._channel.close()
            raise SourceError(str(e)) from None
        except grpc.RpcError as e:
            self._channel.close()
            raise SourceError(f"camera refused stream {s.width}x{s.height}@{s.framerate} {s.format}: "
                              f"{self._retry.describe(e)}") from None
        self._frames = FrameQueue(cfg.queue_size, self.live, self._stop)
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def _new_stream(self, limit: float) -> None:
        s = self.cfg.stream
        vc = self.pb.videocapture_pb2
        settings = vc.StreamSettings(format=FORMATS[s.format], width=s.width, height=s.height,
                                     framerate=s.framerate, timestamp_type=vc.VDO_TIMESTAMP_UTC)
        self.health.set("connecting")
        reply = self._retry.call(
            "opening the camera stream",
            lambda: self._stub.NewStream(vc.NewStreamRequest(settings=settings), timeout=self.timeout),
            timeout=limit,
        )
        self.stream_id = reply.stream_id
        self.numbers.new_stream()
        self.health.set("ready")
        log.info("camera stream %d: %dx%d @ %d fps, %s", self.stream_id, s.width, s.height, s.framerate, s.format)

    # -- capture thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except AcapRuntimeError as e:
            log.error("%s", e)
            self.error = e
        except SourceError as e:
            log.error("%s", e)
            self.error = e
        except Exception:  # a bug here must not hang the consumer
            log.exception("capture thread failed")
        finally:
            self._frames.end()

    def _loop(self) -> None:
        import grpc

        s = self.cfg.stream
        vc = self.pb.videocapture_pb2
        while not self._stop.is_set():
            def get():
                return self._stub.GetFrame(vc.GetFrameRequest(stream_id=self.stream_id, frame_reference=0),
                                           timeout=self.timeout)

            t0 = time.perf_counter()
            try:
                reply = self._retry.call("reading a camera frame", get)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.OUT_OF_RANGE:  # the emulator's video file ended
                    log.info("camera stream ended: %s", e.details())
                    return
                if getattr(e.code(), "name", "") in LOST_STREAM and not self._stop.is_set():
                    # a restarted server forgot our stream: ask for a new one
                    log.warning("stream %d lost (%s); opening a new one", self.stream_id, e.details())
                    self._new_stream(self._retry.policy.timeout)
                    continue
                raise AcapRuntimeError(f"reading a camera frame failed: {self._retry.describe(e)}") from None
            self.health.set("ready")
            first = self.numbers.last is None
            seq = self.numbers.take(int(reply.sequence_nbr), int(reply.timestamp))
            if seq is None:  # the frame we already have: never processed twice
                continue
            self.read += 1
            image = decode_frame(reply.data, s.format, s.width, s.height)
            self.timer.add("capture", time.perf_counter() - t0)
            # VDO timestamps are microseconds; a server that sends none gets the clock instead
            ts = reply.timestamp / 1e6 if (reply.timestamp or first) else time.time()
            self._frames.put(Frame(image, ts, seq))

    # -- consumer side -------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        yield from self._frames
        if self.error is not None:
            raise SourceError(str(self.error))

    @property
    def dropped(self) -> int:
        """Camera frames never processed: never fetched (gaps in the sequence numbers) or fetched and
        then replaced by a newer one while inference was busy."""
        return self.numbers.missed + self._frames.dropped

    def status(self) -> dict:
        """Health of the camera stream."""
        return {"source": "acap-runtime", "stream_id": self.stream_id, "frames": self.read,
                "dropped": self.dropped, "repeated": self.numbers.repeats, **self.health.as_dict()}

    def close(self) -> None:
        """Stop fetching and delete the stream on the server."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._frames.drain()
        self._thread.join(timeout=self.timeout + 5)
        if self.stream_id:
            try:
                self._stub.DeleteStream(self.pb.videocapture_pb2.DeleteStreamRequest(stream_id=self.stream_id),
                                        timeout=self.timeout)
                log.info("camera stream %d deleted", self.stream_id)
            except Exception as e:  # the server may be gone already; nothing left to free then
                log.warning("could not delete camera stream %d: %s", self.stream_id, e)
        self.health.set("closed")
        self._channel.close()


def open(cfg, timer: StageTimer | None = None, acap=None, health: Health | None = None,  # noqa: A001
         cancel=None, **_options) -> AcapRuntimeSource:
    """Open a VideoCapture stream on ACAP Runtime, reporting progress into `health`; `cancel` ends waiting."""
    return AcapRuntimeSource(cfg, timer, acap, health, cancel)
