"""The emulator's camera: one VideoCapture stream served from a video file, paced like VDO."""
from __future__ import annotations

import collections
import threading
import time

import cv2
import numpy as np

from app.acap.nv12 import bgr_to_nv12

MAX_SAVED_FRAMES = 5  # frames kept for GetFrame(frame_reference=…), like MAX_NBR_SAVED_FRAMES


class Abort(Exception):
    """An answer given as a gRPC status (code name, message), as the real server would."""

    def __init__(self, code, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class EmulatedStream:
    """One VideoCapture stream: the video file at the requested size, format and frame rate.

    Like VDO behind ACAP Runtime, GetFrame (and Predict with stream_id) waits for a frame this
    stream has not delivered yet and never hands out the same frame twice. Sequence numbers
    count every frame the camera produced, so a client that falls behind sees the gaps.
    realtime: the camera makes `framerate` frames per second from the moment the stream opens,
    showing the file at the wall clock's position; a late client gets the newest frame.
    lockstep: every frame of the file in order, as soon as it is asked for.
    """

    def __init__(self, sid: int, video: str, width: int, height: int, fmt: int, framerate: int, pace: str, loop: bool):
        self.id, self.video, self.width, self.height, self.fmt = sid, video, width, height, fmt
        self.framerate, self.pace, self.loop = framerate, pace, loop
        self.cap = cv2.VideoCapture(video)
        if not self.cap.isOpened():
            raise ValueError(f"cannot open video {video}")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.file_fps = fps if fps and 0 < fps < 1000 else 25.0
        self.index = -1  # index of the last frame read from the file, over all loops
        self.delivered = -1  # sequence number of the last frame handed out
        self.start = time.monotonic()
        self.start_wall = time.time()
        self.image: np.ndarray | None = None
        self.saved: collections.deque = collections.deque(maxlen=MAX_SAVED_FRAMES)
        self.next_id = 1
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def _advance(self, target: int) -> bool:
        """Read the file up to frame `target` (counted over all loops); False when the file has ended."""
        moved = False
        while self.index < target:
            if not self.cap.grab():
                if not (self.loop and self.index >= 0):
                    return False
                self.cap.release()
                self.cap = cv2.VideoCapture(self.video)
                if not self.cap.grab():
                    return False
            self.index += 1
            moved = True
        if moved:
            ok, img = self.cap.retrieve()
            if not ok:
                return False
            self.image = img
        return self.image is not None

    def _next_tick(self) -> int | None:
        """realtime: the sequence number of the next frame to deliver, after waiting for it to be
        made (None when the stream was deleted meanwhile)."""
        now = int((time.monotonic() - self.start) * self.framerate)
        if now > self.delivered:
            return now  # the newest frame; the ones before it were never fetched
        seq = self.delivered + 1
        if self.closed.wait(max(0.0, self.start + seq / self.framerate - time.monotonic())):
            return None
        return seq

    def next_frame(self) -> tuple[int, np.ndarray, float, int]:
        """(frame id, BGR image at the stream size, timestamp in s, sequence number) of a frame not
        delivered before, waiting for the camera to make it."""
        with self.lock:
            if self.pace == "lockstep":
                seq = self.delivered + 1
                if not self._advance(seq):
                    raise Abort("OUT_OF_RANGE", f"end of video {self.video}")
                ts = seq / self.file_fps
            else:
                seq = self._next_tick()
                if seq is None:
                    raise Abort("FAILED_PRECONDITION", "Getting frame failed. Stream not found")
                # the file frame showing when the camera made frame `seq`
                if not self._advance(int(seq * self.file_fps / self.framerate + 1e-9)):
                    raise Abort("OUT_OF_RANGE", f"end of video {self.video}")
                ts = self.start_wall + seq / self.framerate
            self.delivered = seq
            img = self.image
            if (img.shape[1], img.shape[0]) != (self.width, self.height):
                img = cv2.resize(img, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            fid = self.next_id
            self.next_id += 1
            self.saved.append((fid, img))
            return fid, img, ts, seq

    def saved_frame(self, fid: int) -> np.ndarray:
        with self.lock:
            for item in self.saved:
                if item[0] == fid:
                    return item[1]
        raise Abort("NOT_FOUND", f"frame {fid} is no longer kept (the server keeps {MAX_SAVED_FRAMES})")

    def encode(self, img: np.ndarray) -> bytes:
        if self.fmt == 3:  # YUV
            return bgr_to_nv12(img).tobytes()
        if self.fmt == 8:  # RGB
            return cv2.cvtColor(img, cv2.COLOR_BGR2RGB).tobytes()
        if self.fmt == 9:  # planar RGB
            return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)).tobytes()
        ok, jpg = cv2.imencode(".jpg", img)  # JPEG
        return jpg.tobytes()

    def close(self) -> None:
        self.closed.set()  # wakes a GetFrame waiting for the next frame
        with self.lock:
            self.cap.release()
