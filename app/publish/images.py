"""The latest annotated frame as JPEG for MQTT (`<prefix>/latest_image`, Home Assistant's 'Latest frame').

Encoded on the outputs thread at most every `mqtt.latest_image.interval` s of wall time, scaled to
its height first, so its cost is one small JPEG per interval whatever the frame rate."""
from __future__ import annotations

import time

from app.publish.config import LatestImageConfig
from app.render import Layers, result_jpeg
from app.types import FrameResult

LAYERS = Layers(bbox=True, zones=True, lines=True)  # what Home Assistant's 'Latest frame' shows


class LatestImage:
    """Makes the JPEG of a result's frame when one is due."""

    def __init__(self, cfg: LatestImageConfig, labels: list[str], zones: dict | None = None,
                 lines: dict | None = None) -> None:
        self.cfg = cfg
        self.labels = labels
        self.zones = zones or {}
        self.lines = lines or {}
        self._next = 0.0

    def due(self, result: FrameResult) -> bytes | None:
        """The JPEG when the interval has passed and the result has a frame, else None."""
        now = time.monotonic()
        if self.cfg.interval <= 0 or result.frame is None or now < self._next:
            return None
        self._next = now + self.cfg.interval
        return result_jpeg(result, self.labels, self.zones, self.lines, LAYERS, self.cfg.quality, self.cfg.height)
