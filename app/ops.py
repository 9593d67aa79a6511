"""Vectorised box arithmetic: conversions, IoU matrices and non-maximum suppression."""
from __future__ import annotations

import numpy as np


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """(cx, cy, w, h) -> (x1, y1, x2, y2), any leading shape."""
    half = b[..., 2:4] / 2
    return np.concatenate([b[..., 0:2] - half, b[..., 0:2] + half], axis=-1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes a (n,4) and b (m,4) -> (n,m); 0 where the union is empty."""
    a, b = _float(a), _float(b)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    # per-coordinate broadcasting and in-place steps: ~4x faster than an (n, m, 2) layout at n = 200
    # (this is the tracker's hot path)
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 2:3], a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    inter = np.minimum(ax2, bx2)
    inter -= np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2)
    ih -= np.maximum(ay1, by1)
    np.maximum(inter, 0, out=inter)
    np.maximum(ih, 0, out=ih)
    inter *= ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1)
    union -= inter
    if union.min() > 0:  # the usual case; the masked divide below costs as much again
        inter /= union
        return inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _float(x) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def ios_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over the smaller box's area (n,m); 1.0 when one box contains the other."""
    inter = _intersection(a, b)
    smaller = np.minimum(_area(a)[:, None], _area(b)[None, :])
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    return wh[..., 0] * wh[..., 1]


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    class_ids: np.ndarray | None = None,
    metric: str = "iou",
    max_keep: int | None = None,
) -> np.ndarray:
    """Greedy NMS; returns kept indices in descending score order.

    With `class_ids`, boxes of different classes never suppress each other.
    `metric="ios"` suppresses by intersection over the smaller box, which also
    removes the partial boxes that tiling produces at tile borders.
    """
    n = len(boxes)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-np.asarray(scores), kind="stable")
    boxes = np.asarray(boxes, np.float64)[order]
    overlap = (ios_matrix if metric == "ios" else iou_matrix)(boxes, boxes)
    if class_ids is not None:
        cls = np.asarray(class_ids)[order]
        overlap = np.where(cls[:, None] == cls[None, :], overlap, 0.0)
    suppressed = np.zeros(n, bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        if max_keep is not None and len(keep) >= max_keep:
            break
        suppressed |= overlap[i] > iou_threshold
    return order[np.asarray(keep, np.int64)]
