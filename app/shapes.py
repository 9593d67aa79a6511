"""Points and polygons in normalised image coordinates (x right, y down, 0..1, origin top-left): the
checks every config section that holds one runs (zones, lines, motion masks) and their pixels in an
image of a given size (drawing, masks)."""
from __future__ import annotations

import math

import numpy as np

Point = tuple[float, float]


def check_point(p: Point) -> Point:
    """`p` itself when both coordinates are finite and within 0..1; ValueError otherwise."""
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in p):
        raise ValueError(f"coordinates are normalised to 0..1 (got {list(p)})")
    return p


def check_polygon(v: list[Point]) -> list[Point]:
    """`v` itself when every corner is a normalised point and the polygon has some area."""
    for p in v:
        check_point(p)
    area = 0.0
    for (x1, y1), (x2, y2) in zip(v, v[1:] + v[:1]):
        area += x1 * y2 - x2 * y1
    if abs(area) < 1e-9:
        raise ValueError("polygon has no area (points on one line?)")
    return v


def to_pixels(points, w: int, h: int) -> np.ndarray:
    """Normalised points as integer pixel coordinates in a w × h image (1.0 is the last pixel)."""
    return np.round(np.asarray(points, np.float64) * [w - 1, h - 1]).astype(np.int32)
