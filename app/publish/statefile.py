"""Line counts kept in a JSON file, so a restart (container, camera reboot, upgrade) does not zero them.

A consumer of the publish worker: it remembers the latest line states and writes them at most
every `interval` seconds while they change, at once after a reset, and at exit. Writes go to a
temporary file that then replaces the old one, so a power cut leaves either version, never half.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from pathlib import Path

from app.analytics import FrameResult
from app.errors import ConfigError
from app.types import Detections, Frame

log = logging.getLogger(__name__)

VERSION = 1


class LineStateFile:
    """Saves and restores `FrameResult.lines` ({line: {"in", "out", "since", "labels"}})."""

    def __init__(self, path: str | Path, interval: float = 60.0) -> None:
        self.path = Path(path)
        self.interval = interval
        self._lock = threading.Lock()
        self._latest: dict | None = None
        self._saved: dict | None = None
        self._saved_at = float("-inf")

    def load(self) -> dict[str, dict]:
        """The saved line states; {} when there is no file. A damaged regular file is set aside, not
        fatal; anything else at the path (a directory, a device) or a file that cannot be read is a
        ConfigError, and nothing is moved."""
        try:
            mode = self.path.stat().st_mode
            if stat.S_ISDIR(mode):
                raise ConfigError(f"state.file: {self.path} is a directory; name a file in it, e.g. "
                                  f"{self.path / 'state.json'}")
            if not stat.S_ISREG(mode):
                raise ConfigError(f"state.file: {self.path} is not a regular file")
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise ConfigError(f"state.file: cannot read {self.path}: {e.strerror or e}") from None
        try:
            doc = json.loads(raw)
            lines = doc["lines"]
            if doc.get("version") != VERSION or not isinstance(lines, dict):
                raise ValueError(f"unknown layout (version {doc.get('version')!r})")
        except (ValueError, KeyError, TypeError) as e:  # UnicodeDecodeError is a ValueError
            aside = self.path.with_name(self.path.name + ".bad")
            try:
                os.replace(self.path, aside)
                kept = f"moved to {aside}"
            except OSError:
                kept = "left in place"
            log.warning("state.file %s is unreadable (%s); line counts start from 0 (%s)", self.path, e, kept)
            return {}
        return lines

    def save(self, lines: dict[str, dict]) -> None:
        """Write these line states now (any thread); ConfigError when the file cannot be written."""
        with self._lock:
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            try:
                tmp.write_text(json.dumps({"version": VERSION, "saved": round(time.time(), 3), "lines": lines}))
                os.replace(tmp, self.path)
            except OSError as e:
                raise ConfigError(f"state.file: cannot write {self.path}: {e.strerror or e}") from None
            self._saved, self._saved_at = lines, time.monotonic()

    def on_result(self, frame: Frame, tracked: Detections, result: FrameResult) -> None:
        self._latest = result.lines
        if result.lines != self._saved and time.monotonic() - self._saved_at >= self.interval:
            self.save_or_warn(result.lines)

    def close(self) -> None:
        """Save what changed since the last write."""
        if self._latest is not None and self._latest != self._saved:
            self.save_or_warn(self._latest)

    def save_or_warn(self, lines: dict[str, dict]) -> None:
        """save(), logging instead of raising: counting goes on when the disk fails mid-run."""
        self._saved_at = time.monotonic()  # a failing disk is retried once per interval, not every frame
        try:
            self.save(lines)
        except ConfigError as e:  # the disk filled up or went read-only mid-run: keep counting
            log.warning("%s", e)
