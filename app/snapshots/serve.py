"""A stored snapshot as the API hands it out: as stored, or smaller and/or at a lower quality (never upscaled).

The caller makes one at a time (app/api/images.py's Images holds the lock), so concurrent requests queue
instead of multiplying the work."""
from __future__ import annotations

from app.render import decode_jpeg, encode_jpeg


def sized(data: bytes, stored_quality: int, h: int | None, quality: int | None) -> bytes:
    """`data` (a JPEG) at most `h` pixels high and at most `quality`; the stored bytes when that changes nothing."""
    if h is None and (quality is None or quality >= stored_quality):
        return data
    img = decode_jpeg(data)
    if img is None:
        return data
    h = min(h or img.shape[0], img.shape[0])
    q = min(quality or stored_quality, stored_quality)  # more quality than stored is only more bytes
    if h == img.shape[0] and q == stored_quality:
        return data
    try:
        return encode_jpeg(img, q, h)
    except ValueError:
        return data
