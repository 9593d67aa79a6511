"""Annotated output: a video file (.mp4/.avi/.mkv) or the latest frame as an image (.jpg/.png)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2

from app.annotate import annotate
from app.errors import ConfigError
from app.types import FrameResult

VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


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
        img = annotate(frame.image, result.objects, self.labels)
        if self.image_mode:
            tmp = self.path.with_name(f".{self.path.name}.tmp{self.path.suffix}")
            cv2.imwrite(str(tmp), img)
            os.replace(tmp, self.path)  # readers never see a half-written image
            return
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, frame.size)
            if not self._writer.isOpened():
                raise ConfigError(f"output.video: cannot open {self.path} for writing")
        self._writer.write(img)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
