"""JSON Lines sink: one record per frame, to a file or stdout."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from app.errors import ConfigError
from app.sinks import record
from app.types import Detections, Frame


class JsonlSink:
    def __init__(self, target: str, labels: list[str]) -> None:
        self.labels = labels
        self.target = target
        if target == "-":
            self._f = sys.stdout
        else:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self._f = open(target, "w", buffering=1 << 16)
            except OSError as e:
                raise ConfigError(f"output.jsonl: cannot write {target}: {e.strerror}") from None

    def write(self, frame: Frame, dets: Detections) -> None:
        self._f.write(json.dumps(record(frame, dets, self.labels), separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._f is sys.stdout:
            self._f.flush()
        else:
            self._f.close()
