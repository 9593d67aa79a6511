"""Annotated output: a video file (.mp4/.avi/.mkv) or the latest frame as an image (.jpg/.png)."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import cv2

from app.errors import ConfigError
from app.render import Layers, overlaid
from app.types import FrameResult

VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
LAYERS = Layers(zones=False, lines=False)  # the objects only


def numbered(target: str | None, run: int) -> str | None:
    """Where run number `run` (2, 3, … of one process) writes output.video: a video in a file of its own
    (clip.2.mp4; a video cannot be added to), the latest image where it was."""
    if target is None or run < 2 or Path(target).suffix.lower() in IMAGE_SUFFIXES:
        return target
    p = Path(target)
    return str(p.with_name(f"{p.stem}.{run}{p.suffix}"))


class VideoSink:
    def __init__(self, target: str, labels: list[str], fps: float | None) -> None:
        self.path = Path(target)
        self.labels = labels
        self.fps = fps or 10.0
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_FOURCC and suffix not in IMAGE_SUFFIXES:
            raise ConfigError(
                f"output.video: unsupported file type {suffix or '(none)'!r}; use one of "
                f"{', '.join(sorted(VIDEO_FOURCC) + sorted(IMAGE_SUFFIXES))}"
            )
        self.image_mode = suffix in IMAGE_SUFFIXES
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"output.video: cannot create {self.path.parent}: {e.strerror}") from None
        self._writer = None

    def on_result(self, result: FrameResult) -> None:
        frame = result.frame
        if frame is None:
            return
        img = overlaid(result, self.labels, None, None, LAYERS)
        if self.image_mode:
            ok, data = cv2.imencode(self.path.suffix, img)
            if not ok:
                raise ConfigError(f"output.video: OpenCV could not encode a {self.path.suffix} image")
            tmp = self.path.with_name(f".{self.path.name}.tmp{self.path.suffix}")
            try:  # written here, not by cv2.imwrite, which only returns False and says nothing of why
                tmp.write_bytes(data.tobytes())
                os.replace(tmp, self.path)  # readers never see a half-written image
            except OSError as e:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)  # the last complete image stays; no half-written one beside it
                raise ConfigError(f"output.video: cannot write {self.path}: {e.strerror or e}") from None
            return
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, frame.size)
            if not self._writer.isOpened():
                raise self._open_failed(fourcc, frame.size)
        if self._writer.write(img) is False:  # e.g. a full disk: OpenCV only logs a warning and goes on
            raise self._write_failed()

    def _open_failed(self, fourcc: int, size: tuple[int, int]) -> ConfigError:
        """The error for a writer OpenCV would not open: it says no reason, so the same path is tried at an
        ordinary size; when that opens, the encoder refused this frame size, not the file."""
        probe = cv2.VideoWriter(str(self.path), fourcc, self.fps, (64, 64))
        size_refused = probe.isOpened()
        probe.release()
        if size_refused:
            with contextlib.suppress(OSError):
                self.path.unlink()  # the probe's empty video: nothing of this run is in it
            codec = VIDEO_FOURCC[self.path.suffix.lower()]
            return ConfigError(f"output.video: the {codec} encoder for {self.path.suffix} refuses "
                               f"{size[0]}x{size[1]} frames ({self.path} is writable); use .avi or an image "
                               "(.jpg, .png) for a source this small")
        return ConfigError(f"output.video: cannot open {self.path} for writing")

    def _write_failed(self) -> ConfigError:
        """The error for a frame OpenCV's writer refused; it gives no reason, so a full disk is looked for."""
        try:
            disk = shutil.disk_usage(self.path.parent)
            full = disk.total > 0 and disk.free < (1 << 20)
        except OSError:
            full = False
        why = "No space left on device" if full else "OpenCV's writer failed (a full or read-only disk?)"
        return ConfigError(f"output.video: cannot write {self.path}: {why}")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
