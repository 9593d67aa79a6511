"""Association helpers: IoU as one matrix, gated minimum-cost assignment."""
from __future__ import annotations

import numpy as np

from app.ops import iou_matrix  # noqa: F401 - re-exported: the trackers' IoU

_EMPTY = np.zeros(0, np.intp)


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of a 2-D cost matrix, the same pairs as scipy's (rows ascending).

    The shortest augmenting path method (Crouse 2016) step for step as scipy.optimize's
    rectangular LSAP does it, ties included, so the tracker assigns exactly as it did with scipy
    (tests/test_tracking_matching.py compares them). It is plain Python, 10-30x slower than
    scipy's C++ per call, but linear_assignment only hands it small clusters of contested pairs:
    a few µs per frame for 10 objects, 0.3-0.7 ms for 200 (bench/assignment.py), against the
    150 MB scipy adds to the camera image.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"expected a matrix (2-D array), got a {cost.ndim}-D array")
    if cost.size == 0:
        return _EMPTY, _EMPTY
    if np.isnan(cost).any() or np.isneginf(cost).any():
        raise ValueError("matrix contains invalid numeric entries")
    transpose = cost.shape[1] < cost.shape[0]
    col4row = _lsap((cost.T if transpose else cost).tolist())
    nr = len(col4row)
    if transpose:
        order = sorted(range(nr), key=col4row.__getitem__)
        return np.array([col4row[k] for k in order], np.intp), np.array(order, np.intp)
    return np.arange(nr, dtype=np.intp), np.array(col4row, np.intp)


def _lsap(c: list[list[float]]) -> list[int]:
    """The column of each row in a minimum-cost assignment of c (rows <= columns, finite costs)."""
    nr, nc = len(c), len(c[0])
    inf = float("inf")
    u = [0.0] * nr
    v = [0.0] * nc
    path = [-1] * nc
    col4row = [-1] * nr
    row4col = [-1] * nc
    for cur in range(nr):
        # Dijkstra over the columns from row `cur` with reduced costs, up to a free column.
        remaining = list(range(nc - 1, -1, -1))  # reversed, as scipy: a constant matrix gives the identity
        spc = [inf] * nc
        sr = [False] * nr
        sc = [False] * nc
        min_val = 0.0
        i = cur
        sink = -1
        while sink == -1:
            sr[i] = True
            row, ui = c[i], u[i]
            index, lowest = -1, inf
            for it, j in enumerate(remaining):
                r = min_val + row[j] - ui - v[j]
                if r < spc[j]:
                    path[j] = i
                    spc[j] = r
                # among equal costs prefer a free column: it ends the path
                if spc[j] < lowest or (spc[j] == lowest and row4col[j] == -1):
                    lowest = spc[j]
                    index = it
            min_val = lowest
            if min_val == inf:
                raise ValueError("cost matrix is infeasible")
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            sc[j] = True
            remaining[index] = remaining[-1]
            remaining.pop()
        u[cur] += min_val
        for i in range(nr):
            if sr[i] and i != cur:
                u[i] += min_val - spc[col4row[i]]
        for j in range(nc):
            if sc[j]:
                v[j] -= min_val - spc[j]
        j = sink
        while True:  # augment along the path
            i = path[j]
            row4col[j] = i
            col4row[i], j = j, col4row[i]
            if i == cur:
                break
    return col4row


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
    # same as "leave both unmatched", which is ByteTrack's lapjv cost_limit behaviour. Then
    # the best matching is the best one of each cluster of contested pairs, solved on its own:
    # a crowd is many small problems, not one big one (bench/assignment.py).
    clipped = np.minimum(sub, thresh + 1e-4)
    pairs = []
    for comp_rows, comp_cols in _clusters(sub <= thresh):
        part = clipped.take(comp_rows, 0).take(comp_cols, 1)
        if len(comp_rows) == 1 or len(comp_cols) == 1:  # one row or column: its cheapest pair
            k = int(part.argmin())
            r, c = divmod(k, part.shape[1])
            pairs.append((comp_rows[r], comp_cols[c]))
            continue
        transpose = part.shape[1] < part.shape[0]
        col4row = _lsap((part.T if transpose else part).tolist())
        for i, j in enumerate(col4row):
            r, c = (j, i) if transpose else (i, j)
            if part[r, c] <= thresh:
                pairs.append((comp_rows[r], comp_cols[c]))
    pairs.sort()  # rows ascending, as one solve of the whole matrix gives them
    r = np.array([p[0] for p in pairs], np.intp)
    c = np.array([p[1] for p in pairs], np.intp)
    rows = np.concatenate((lone_rows, rest_rows.take(r)))
    cols = np.concatenate((lone_cols, rest_cols.take(c)))
    return rows, cols


def _clusters(valid: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """(rows, cols), each ascending, of every connected component of the bipartite graph `valid`
    (every row and column has an edge)."""
    n, m = valid.shape
    big = n
    row_label = np.arange(n)
    while True:  # each component ends labelled by its smallest row
        col_label = np.where(valid, row_label[:, None], big).min(axis=0)
        new = np.minimum(row_label, np.where(valid, col_label[None, :], big).min(axis=1))
        if np.array_equal(new, row_label):
            break
        row_label = new
    row_order = np.argsort(row_label, kind="stable")
    col_order = np.argsort(col_label, kind="stable")
    labels, row_starts = np.unique(row_label[row_order], return_index=True)
    col_starts = np.searchsorted(col_label[col_order], labels)
    rows, cols = row_order.tolist(), col_order.tolist()
    rs, cs = [*row_starts.tolist(), n], [*col_starts.tolist(), m]
    return [(rows[rs[k]:rs[k + 1]], cols[cs[k]:cs[k + 1]]) for k in range(len(labels))]
