"""IoU matrix and gated assignment agree with straightforward versions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.tracking.matching import iou_matrix, linear_assignment


def iou_one(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def random_boxes(rng, n):
    xy = rng.uniform(0, 200, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(5, 60, (n, 2))], axis=1)


def test_iou_matrix_matches_pairwise_iou():
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 9), random_boxes(rng, 6)
    expected = np.array([[iou_one(x, y) for y in b] for x in a])
    np.testing.assert_allclose(iou_matrix(a, b), expected, atol=1e-12)
    assert iou_matrix(a, b[:0]).shape == (9, 0) and iou_matrix(a[:0], b).shape == (0, 6)


def best_gated_matching(cost, thresh):
    """Brute force over all matchings of gated pairs: the one maximising sum(thresh - cost).

    That is the objective of ByteTrack's lapjv with cost_limit: leaving a track and a
    detection unmatched costs `thresh`, so a pair is worth taking by how far it is below it.
    """
    n, m = cost.shape
    best, best_gain = [], 0.0
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                pairs = list(zip(rows, cols))
                if any(cost[r, c] > thresh for r, c in pairs):
                    continue
                gain = sum(thresh - cost[r, c] for r, c in pairs)
                if gain > best_gain + 1e-12:
                    best, best_gain = pairs, gain
    return sorted(best)


@pytest.mark.parametrize("seed", range(30))
def test_gated_assignment_is_optimal(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 6, 2)
    # Sparse gates like real scenes: most pairs far apart, a few ambiguous clusters.
    cost = np.where(rng.random((n, m)) < 0.4, rng.uniform(0.0, 0.3, (n, m)), 1.0)
    rows, cols = linear_assignment(cost, 0.5)
    got = sorted(zip(rows.tolist(), cols.tolist()))
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    assert all(cost[r, c] <= 0.5 for r, c in got)
    expected = best_gated_matching(cost, 0.5)
    gain = lambda pairs: sum(0.5 - cost[r, c] for r, c in pairs)  # noqa: E731
    assert gain(got) == pytest.approx(gain(expected), abs=1e-3)  # clipping adds 1e-4 per gated pair


def test_assignment_resolves_a_contested_detection():
    # Track 0 fits detection 0 well and detection 1 slightly better; track 1 fits only detection 1.
    cost = np.array([[0.2, 0.1], [0.9, 0.3]])
    rows, cols = linear_assignment(cost, 0.5)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 0), (1, 1)]


def test_assignment_of_empty_matrices():
    for shape in ((0, 3), (3, 0), (0, 0)):
        rows, cols = linear_assignment(np.zeros(shape), 0.5)
        assert len(rows) == len(cols) == 0


@pytest.mark.parametrize("seed", range(20))
def test_solver_is_scipys_linear_sum_assignment(seed):
    from scipy.optimize import linear_sum_assignment as scipy_lsa

    from app.tracking.matching import linear_sum_assignment

    rng = np.random.default_rng(seed)
    cost = rng.random(tuple(rng.integers(1, 9, 2)))
    got, want = linear_sum_assignment(cost), scipy_lsa(cost)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_contested_assignment_does_not_import_scipy_optimize():
    """scipy.optimize's package import costs ~50 MiB of RSS; the solver is its small extension only."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import json, sys\nimport numpy as np\nfrom app.tracking.matching import linear_assignment\n"
            "r, c = linear_assignment(np.array([[0.2, 0.1], [0.9, 0.3]]), 0.5)\n"
            "print(json.dumps([r.tolist(), c.tolist(), sorted(m for m in sys.modules if m.startswith('scipy'))]))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    rows, cols, scipy_modules = json.loads(p.stdout)
    assert sorted(zip(rows, cols)) == [(0, 0), (1, 1)]
    assert scipy_modules == ["scipy.optimize._lsap"]
