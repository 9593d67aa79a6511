"""How good a box is as a picture of its object: the score that picks each track's best view.

The view kept is the one a person would pick: big (more pixels of the object), confidently
detected (not a blur or a half-hidden shape), not cut off by the frame edge, and not hidden
behind another object. Score alone favours small, crisp views far away and saturates near the
model's ceiling; area alone favours close-ups that run off the frame or merge with a neighbour.
So the quality is score × sqrt(area fraction), halved for a box touching the frame edge and
scaled down by how much of it is covered by objects in front of it (a box whose bottom edge is
lower in the image is nearer the camera, so in front).
"""
from __future__ import annotations

import numpy as np

EDGE_PX = 2.0  # a box within this many pixels of the frame edge is taken as cut off
EDGE_FACTOR = 0.5


def view_quality(xyxy: np.ndarray, scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Quality of each box (n,4 in source pixels) as a view of its object; higher is better."""
    w, h = size
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if not len(b):
        return np.zeros(0)
    bw = np.clip(b[:, 2] - b[:, 0], 0, None)
    bh = np.clip(b[:, 3] - b[:, 1], 0, None)
    area = bw * bh
    q = np.asarray(scores, np.float64) * np.sqrt(area / max(w * h, 1))
    edge = (b[:, 0] <= EDGE_PX) | (b[:, 1] <= EDGE_PX) | (b[:, 2] >= w - EDGE_PX) | (b[:, 3] >= h - EDGE_PX)
    q[edge] *= EDGE_FACTOR
    if len(b) > 1:
        ix = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
        iy = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
        inter = ix * iy
        in_front = b[None, :, 3] > b[:, None, 3]  # [i, j]: j is nearer the camera than i
        covered = (inter * in_front).max(axis=1) / np.maximum(area, 1e-9)
        q *= 1.0 - np.clip(covered, 0.0, 1.0)
    return q
