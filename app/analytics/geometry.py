"""Geometry over arrays in normalised image coordinates (x right, y down, 0..1)."""
from __future__ import annotations

import numpy as np

# Fraction of the box width and height from its top-left corner.
ANCHORS: dict[str, tuple[float, float]] = {
    "bottom_center": (0.5, 1.0), "center": (0.5, 0.5), "top_center": (0.5, 0.0),
    "center_left": (0.0, 0.5), "center_right": (1.0, 0.5),
    "bottom_left": (0.0, 1.0), "bottom_right": (1.0, 1.0), "top_left": (0.0, 0.0), "top_right": (1.0, 0.0),
}


def anchor_points(xyxy: np.ndarray, anchor: str) -> np.ndarray:
    """(n,2) anchor point of each box."""
    fx, fy = ANCHORS[anchor]
    x = xyxy[:, 0] + fx * (xyxy[:, 2] - xyxy[:, 0])
    y = xyxy[:, 1] + fy * (xyxy[:, 3] - xyxy[:, 1])
    return np.stack((x, y), axis=1)


def polygon_edges(polygon: np.ndarray) -> tuple[np.ndarray, ...]:
    """Edge arrays of a polygon (x1, y1, x2, y2, dy) for inside_polygon, computed once per zone."""
    x1, y1 = polygon[:, 0].astype(np.float64), polygon[:, 1].astype(np.float64)
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    return x1, y1, x2, y2, np.where(y2 == y1, 1.0, y2 - y1)  # horizontal edges never straddle; avoid 0/0


def inside_polygon(points: np.ndarray, polygon: np.ndarray | tuple) -> np.ndarray:
    """(n,) whether each point is inside the polygon (even-odd rule; points on an edge may go either way).

    `polygon` is an (m,2) array or its polygon_edges().
    """
    if len(points) == 0:
        return np.zeros(0, bool)
    x1, y1, x2, y2, dy = polygon if isinstance(polygon, tuple) else polygon_edges(polygon)
    x, y = points[:, 0:1], points[:, 1:2]
    straddles = (y1 > y) != (y2 > y)  # (n, m): edge crosses the horizontal through the point
    x_cross = x1 + (y - y1) * (x2 - x1) / dy
    return (np.count_nonzero(straddles & (x < x_cross), axis=1) % 2) == 1


def signed_distance(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(n,) distance of each point from the infinite line start→end; positive on the right-hand side.

    'Right-hand' as seen on the image while walking from start to end (y points down), so for a
    line drawn left to right, points below it are positive.
    """
    d = end - start
    rel = points - start
    return (d[0] * rel[:, 1] - d[1] * rel[:, 0]) / float(np.hypot(*d))


def along(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(n,) position of each point's projection on the segment: 0 at start, 1 at end."""
    d = end - start
    return ((points - start) @ d) / float(d @ d)


def crossing_points(p0: np.ndarray, s0: np.ndarray, p1: np.ndarray, s1: np.ndarray) -> np.ndarray:
    """(n,2) where the paths p0→p1 cross a line, given their signed distances s0, s1 of opposite sign."""
    u = s0 / (s0 - s1)
    return p0 + u[:, None] * (p1 - p0)


def row_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) IoU of a[i] with b[i] (boxes xyxy)."""
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:], b[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
