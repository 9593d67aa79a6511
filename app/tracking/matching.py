"""Association helpers: IoU as one matrix, gated minimum-cost assignment."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

_EMPTY = np.zeros(0, np.intp)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (n,4 xyxy) with every box in b (m,4 xyxy), shape (n, m).

    Boxes must have positive area (the trackers drop others on input).
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    # Per-coordinate broadcasting: about 4x faster than an (n, m, 2) layout at n = 200.
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 2:3], a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    iw = np.minimum(ax2, bx2)
    iw -= np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2)
    ih -= np.maximum(ay1, by1)
    np.maximum(iw, 0, out=iw)
    np.maximum(ih, 0, out=ih)
    iw *= ih  # intersection
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1)
    union -= iw
    iw /= union
    return iw


def linear_assignment(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one matching keeping only pairs with cost <= thresh; (rows, cols)."""
    if cost.size == 0:
        return _EMPTY, _EMPTY
    valid = cost <= thresh
    per_row = valid.sum(axis=1)
    per_col = valid.sum(axis=0)
    if per_row.max() <= 1 and per_col.max() <= 1:
        # Already one-to-one (the common case with separated objects): nothing to solve.
        return valid.nonzero()
    # A pair that is the only candidate of both its row and its column is a component of
    # its own and belongs to every optimal matching; solve only what is left.
    lone = valid & (per_row == 1)[:, None] & (per_col == 1)[None, :]
    lone_rows, lone_cols = lone.nonzero()
    rest_rows = (per_row - lone.sum(axis=1)).nonzero()[0]
    rest_cols = (per_col - lone.sum(axis=0)).nonzero()[0]
    sub = cost.take(rest_rows, 0).take(rest_cols, 1)
    # Clipping gated-out costs to just above the gate makes "assign a gated pair" cost the
    # same as "leave both unmatched", which is ByteTrack's lapjv cost_limit behaviour.
    r, c = linear_sum_assignment(np.minimum(sub, thresh + 1e-4))
    keep = sub[r, c] <= thresh
    rows = np.concatenate((lone_rows, rest_rows.take(r[keep])))
    cols = np.concatenate((lone_cols, rest_cols.take(c[keep])))
    return rows, cols
