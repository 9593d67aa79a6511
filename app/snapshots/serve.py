"""A stored snapshot as the API hands it out: as stored, or smaller and/or at a lower quality (never upscaled)."""
from __future__ import annotations

import threading

import cv2
import numpy as np

_lock = threading.Lock()  # one re-encode at a time: concurrent requests queue instead of multiplying the work


def sized(data: bytes, stored_quality: int, h: int | None, quality: int | None) -> bytes:
    """`data` (a JPEG) at most `h` pixels high and at most `quality`; the stored bytes when that changes nothing."""
    if h is None and (quality is None or quality >= stored_quality):
        return data
    with _lock:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            return data
        h = min(h or img.shape[0], img.shape[0])
        q = min(quality or stored_quality, stored_quality)  # more quality than stored is only more bytes
        if h == img.shape[0] and q == stored_quality:
            return data
        if h != img.shape[0]:
            w = max(1, round(img.shape[1] * h / img.shape[0]))
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        return buf.tobytes() if ok else data
