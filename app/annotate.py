"""Draw tracked boxes, ids, labels and scores on a frame (for the video sink and previews)."""
from __future__ import annotations

import cv2
import numpy as np

from app.types import Detections, NO_TRACK


def _color(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct colour per track id."""
    h = (int(track_id) * 47) % 180
    hsv = np.uint8([[[h, 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def annotate(image: np.ndarray, dets: Detections, labels: list[str]) -> np.ndarray:
    """A copy of `image` with each detection's box and 'id label score' tag."""
    out = image.copy()
    for box, score, cls, tid in zip(dets.xyxy, dets.scores, dets.class_ids, dets.track_ids):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = _color(tid) if tid != NO_TRACK else (200, 200, 200)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        label = labels[cls] if 0 <= cls < len(labels) else str(cls)
        tag = f"{'#' + str(tid) + ' ' if tid != NO_TRACK else ''}{label} {score:.2f}"
        (tw, th), base = cv2.getTextSize(tag, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        ty = max(y1, th + base + 2)
        cv2.rectangle(out, (x1, ty - th - base - 2), (x1 + tw + 4, ty), color, -1)
        cv2.putText(out, tag, (x1 + 2, ty - base - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return out
