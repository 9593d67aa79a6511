"""Association helpers: IoU as one matrix, gated minimum-cost assignment."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from app.ops import iou_matrix  # noqa: F401 - re-exported: the trackers' IoU

_EMPTY = np.zeros(0, np.intp)


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
