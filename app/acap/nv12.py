"""NV12 (VDO's YUV format) to and from BGR/RGB, and GetFrame bytes as a BGR image."""
from __future__ import annotations

import cv2
import numpy as np

from app.errors import SourceError

FORMATS = {"yuv": 3, "rgb": 8}  # config name -> videocapture.v1.StreamFormat value


def nv12_size(width: int, height: int) -> int:
    """Bytes in an unpadded NV12 frame."""
    return width * height * 3 // 2


def nv12_to_bgr(data: bytes | np.ndarray, width: int, height: int) -> np.ndarray:
    """An NV12 frame (Y plane, then interleaved U/V at half resolution) as BGR HxWx3 uint8.

    Rows may be padded: the row pitch is then worked out from the buffer size.
    """
    buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    rows = height * 3 // 2
    if width % 2 or height % 2:
        raise SourceError(f"NV12 needs even width and height, got {width}x{height}")
    if buf.size % rows or buf.size < nv12_size(width, height):
        raise SourceError(f"NV12 frame of {buf.size} bytes does not fit {width}x{height}")
    pitch = buf.size // rows
    yuv = buf.reshape(rows, pitch)[:, :width]
    return cv2.cvtColor(np.ascontiguousarray(yuv), cv2.COLOR_YUV2BGR_NV12)


def nv12_to_rgb(data: bytes | np.ndarray, width: int, height: int) -> np.ndarray:
    """An NV12 frame as RGB HxWx3 uint8 (what Axis's VideoCaptureClient returns)."""
    return cv2.cvtColor(nv12_to_bgr(data, width, height), cv2.COLOR_BGR2RGB)


def bgr_to_nv12(image: np.ndarray) -> np.ndarray:
    """A BGR image (even width and height) as NV12 bytes (flat uint8), as VDO delivers YUV frames."""
    h, w = image.shape[:2]
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    y, u, v = i420[: w * h], i420[w * h : w * h * 5 // 4], i420[w * h * 5 // 4 :]
    out = np.empty(nv12_size(w, h), np.uint8)
    out[: w * h] = y
    out[w * h :: 2] = u
    out[w * h + 1 :: 2] = v
    return out


def decode_frame(data: bytes, fmt: str, width: int, height: int) -> np.ndarray:
    """GetFrame bytes in the stream's format ("yuv" or "rgb") as a BGR image."""
    if fmt == "yuv":
        return nv12_to_bgr(data, width, height)
    rgb = np.frombuffer(data, np.uint8)
    if rgb.size != width * height * 3:
        raise SourceError(f"RGB frame of {rgb.size} bytes does not fit {width}x{height}")
    return cv2.cvtColor(rgb.reshape(height, width, 3), cv2.COLOR_RGB2BGR)
