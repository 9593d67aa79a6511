"""A result's frame with its overlays, and JPEG encoding: written once for every picture Vigil hands out.

`/api/latest.jpg` (app/api/images.py) and MQTT's `latest_image` (app/publish/images.py) draw with
`overlaid` and encode with `encode_jpeg`, the annotated video or image (app/sinks/video.py) draws with
`overlaid`, and the snapshots (app/snapshots/consumer.py) encode with `encode_jpeg`: a picture looks the
same wherever it is seen and is scaled the same way (down only, INTER_AREA).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from app.annotate import annotate, draw_lines, draw_motion, draw_regions, draw_zones
from app.types import FrameResult


@dataclass(frozen=True, slots=True)
class Layers:
    """What is drawn over a frame: the tracked objects, zones, lines, the model's views, the motion seen."""
    bbox: bool = True
    zones: bool = True
    lines: bool = True
    regions: bool = False
    motion: bool = False


def overlaid(result: FrameResult, labels: list[str], zones: dict | None, lines: dict | None,
             layers: Layers = Layers()) -> np.ndarray:
    """A copy of the result's frame with `layers` drawn; `zones`/`lines` are the configured ones by name."""
    image = result.frame.image
    img = annotate(image, result.objects, labels) if layers.bbox else image.copy()
    overlay = result.overlay
    if layers.motion and overlay is not None and overlay.motion is not None:
        draw_motion(img, overlay.motion)
    if layers.regions and overlay is not None:
        draw_regions(img, overlay.views, overlay.reason)
    if layers.zones and zones:
        draw_zones(img, [(n, z.polygon, result.zones.get(n, {}).get("all", 0)) for n, z in zones.items()])
    if layers.lines and lines:
        draw_lines(img, [(n, c.start, c.end, result.lines.get(n, {}).get("in", 0), result.lines.get(n, {}).get("out", 0))
                         for n, c in lines.items()])
    return img


def encode_jpeg(image: np.ndarray, quality: int, height: int | None = None) -> bytes:
    """JPEG of `image`, scaled down to `height` pixels high (never up, aspect kept); ValueError if it fails."""
    if height and height < image.shape[0]:
        w = max(1, round(image.shape[1] * height / image.shape[0]))
        image = cv2.resize(image, (w, height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """The image in a JPEG, or None when `data` is not one."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def result_jpeg(result: FrameResult, labels: list[str], zones: dict | None, lines: dict | None, layers: Layers,
                quality: int, height: int | None = None) -> bytes:
    """The result's frame with `layers` drawn, as JPEG at most `height` pixels high."""
    return encode_jpeg(overlaid(result, labels, zones, lines, layers), quality, height)
