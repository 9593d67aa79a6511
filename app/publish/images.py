"""The latest annotated frame as JPEG for MQTT (`<prefix>/latest_image`, Home Assistant's 'Latest frame').

Encoded on the outputs thread at most every `mqtt.latest_image.interval` s of wall time, scaled to
its height first, so its cost is one small JPEG per interval whatever the frame rate."""
from __future__ import annotations

import time

from app.annotate import annotate, draw_lines, draw_zones
from app.publish.config import LatestImageConfig
from app.snapshots.consumer import encode_jpeg
from app.types import FrameResult


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
        return render(result, self.labels, self.zones, self.lines, self.cfg.height, self.cfg.quality)


def render(result: FrameResult, labels: list[str], zones: dict, lines: dict, height: int, quality: int) -> bytes:
    """The frame with its objects, zones and lines drawn, as JPEG `height` pixels high at most."""
    img = annotate(result.frame.image, result.objects, labels)
    if zones:
        draw_zones(img, [(n, z.polygon, result.zones.get(n, {}).get("all", 0)) for n, z in zones.items()])
    if lines:
        draw_lines(img, [(n, c.start, c.end, result.lines.get(n, {}).get("in", 0), result.lines.get(n, {}).get("out", 0))
                         for n, c in lines.items()])
    return encode_jpeg(img, quality, height)
