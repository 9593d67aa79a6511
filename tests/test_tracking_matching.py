"""IoU matrix and gated assignment agree with straightforward versions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.tracking.matching import iou_matrix, linear_assignment
from tests.scipy_reference import scipy_linear_assignment


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


def random_costs(rng, kind: int) -> np.ndarray:
    """Uniform, small integers (many ties), gated like the trackers' (ties at the gate), constant."""
    shape = tuple(rng.integers(1, 9, 2))
    if kind == 0:
        return rng.random(shape)
    if kind == 1:
        return rng.integers(0, 3, shape).astype(float)
    if kind == 2:
        return np.where(rng.random(shape) < 0.4, rng.uniform(0.0, 0.3, shape), 0.5 + 1e-4)
    return np.full(shape, 0.7)


@pytest.mark.parametrize("kind", range(4))
def test_solver_gives_scipys_exact_assignment_ties_and_rectangles_included(kind):
    """Vigil's own solver replaces scipy's linear_sum_assignment: the same pairs, in the same order."""
    from scipy.optimize import linear_sum_assignment as scipy_lsa

    from app.tracking.matching import linear_sum_assignment

    rng = np.random.default_rng(kind)
    for _ in range(500):
        cost = random_costs(rng, kind)
        got, want = linear_sum_assignment(cost), scipy_lsa(cost)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), cost
        assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype


def test_solver_refuses_what_scipy_refuses():
    from app.tracking.matching import linear_sum_assignment

    for bad in (np.array([[np.nan, 1.0]]), np.array([[-np.inf, 1.0]]), np.array([[np.inf, np.inf], [1.0, 2.0]])):
        with pytest.raises(ValueError):
            linear_sum_assignment(bad)
    with pytest.raises(ValueError):
        linear_sum_assignment(np.zeros(3))
    rows, cols = linear_sum_assignment(np.zeros((0, 4)))
    assert rows.size == cols.size == 0


@pytest.mark.parametrize("seed", range(10))
def test_gated_assignment_gives_the_pairs_scipy_gave(seed):
    """Clusters solved one by one with Vigil's solver: the same pairs, same order, as one scipy solve."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        n, m = rng.integers(1, 30, 2)
        cost = np.where(rng.random((n, m)) < 0.08, rng.uniform(0.0, 0.5, (n, m)), 1.0)
        got, want = linear_assignment(cost, 0.5), scipy_linear_assignment(cost, 0.5)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), cost


@pytest.mark.parametrize("tracker", ["sort", "bytetrack"])
def test_trackers_assign_the_same_ids_with_vigils_solver_as_with_scipys(tracker, monkeypatch):
    """A crowded synthetic scene through each tracker, once per solver: identical ids every frame."""
    import app.tracking.bytetrack
    import app.tracking.sort
    from app.tracking import build_tracker
    from app.types import Detections

    rng = np.random.default_rng(3)
    n = 25
    pos = rng.uniform(0, 600, (n, 2))
    vel = rng.uniform(-6, 6, (n, 2))
    size = rng.uniform(20, 60, (n, 2))
    frames = []
    for _ in range(120):
        pos += vel
        keep = rng.random(n) > 0.1
        xy = pos[keep] + rng.normal(0, 2, (keep.sum(), 2))
        boxes = np.concatenate([xy, xy + size[keep]], axis=1)
        frames.append(Detections(boxes.astype(np.float32), rng.uniform(0.3, 0.95, keep.sum()).astype(np.float32),
                                 np.zeros(keep.sum(), np.int32)))

    def run(assign):
        contested = []

        def spy(cost, thresh):
            valid = cost <= thresh
            contested.append(valid.size and (valid.sum(0).max() > 1 or valid.sum(1).max() > 1))
            return assign(cost, thresh)

        for module in (app.tracking.sort, app.tracking.bytetrack):
            monkeypatch.setattr(module, "linear_assignment", spy)
        trk = build_tracker({"type": tracker})
        return [trk.update(d, k / 10).track_ids.tolist() for k, d in enumerate(frames)], sum(map(bool, contested))

    ours, n_ours = run(linear_assignment)
    theirs, n_theirs = run(scipy_linear_assignment)
    assert ours == theirs and n_ours == n_theirs > 10  # a solver really had to choose


def test_contested_assignment_imports_no_scipy():
    """The solver is Vigil's own: scipy is no runtime dependency (150 MB on the camera image)."""
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
    assert scipy_modules == []
