"""The gated assignment as Vigil had it with scipy (lone pairs taken, the rest in one scipy solve): the
reference the tracker's own solver is held to, by tests/test_tracking_matching.py and bench/assignment.py.
scipy is a test/bench extra, not a runtime dependency."""
from __future__ import annotations

import numpy as np


def scipy_linear_assignment(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """The gated assignment as it was with scipy: lone pairs, then the rest in one solve."""
    from scipy.optimize import linear_sum_assignment

    if cost.size == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    valid = cost <= thresh
    per_row, per_col = valid.sum(axis=1), valid.sum(axis=0)
    if per_row.max() <= 1 and per_col.max() <= 1:
        return valid.nonzero()
    lone = valid & (per_row == 1)[:, None] & (per_col == 1)[None, :]
    lone_rows, lone_cols = lone.nonzero()
    rest_rows = (per_row - lone.sum(axis=1)).nonzero()[0]
    rest_cols = (per_col - lone.sum(axis=0)).nonzero()[0]
    sub = cost.take(rest_rows, 0).take(rest_cols, 1)
    r, c = linear_sum_assignment(np.minimum(sub, thresh + 1e-4))
    keep = sub[r, c] <= thresh
    return (np.concatenate((lone_rows, rest_rows.take(r[keep]))),
            np.concatenate((lone_cols, rest_cols.take(c[keep]))))
