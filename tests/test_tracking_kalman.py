"""The batched block-diagonal Kalman filter gives the same numbers as the textbook 8x8 filter."""
from __future__ import annotations

import numpy as np

from app.tracking import kalman

WP, WV, FPS = kalman.STD_WEIGHT_POSITION, kalman.STD_WEIGHT_VELOCITY, kalman.REFERENCE_FPS


def _size(mean):
    w, h = mean[2], mean[3]
    return np.array([w, h, w, h])


def ref_initiate(z):
    size = _size(z)
    mean = np.concatenate([z, np.zeros(4)])
    cov = np.diag(np.concatenate([(2 * WP * size) ** 2, (10 * WV * FPS * size) ** 2]))
    return mean, cov


def ref_predict(mean, cov, dt):
    f = np.eye(8)
    f[:4, 4:] = dt * np.eye(4)
    size = _size(mean)
    steps = dt * FPS
    q = np.diag(np.concatenate([steps * (WP * size) ** 2, steps * (WV * FPS * size) ** 2]))
    return f @ mean, f @ cov @ f.T + q


def ref_update(mean, cov, z):
    h = np.hstack([np.eye(4), np.zeros((4, 4))])
    r = np.diag((WP * _size(mean)) ** 2)
    s = h @ cov @ h.T + r
    k = cov @ h.T @ np.linalg.inv(s)
    return mean + k @ (z - h @ mean), (np.eye(8) - k @ h) @ cov


def to_block(table_row):
    """8-vector mean and 8x8 covariance from one row of the block state."""
    mean = table_row[:8].copy()
    cov = np.zeros((8, 8))
    for j in range(4):
        cov[j, j] = table_row[8 + j]
        cov[j, 4 + j] = cov[4 + j, j] = table_row[12 + j]
        cov[4 + j, 4 + j] = table_row[16 + j]
    return mean, cov


def test_batched_filter_matches_full_matrix_filter():
    rng = np.random.default_rng(3)
    n = 7
    z0 = np.column_stack([rng.uniform(0, 600, (n, 2)), rng.uniform(60, 120, (n, 2))])
    table = kalman.initiate(z0)
    refs = [ref_initiate(z) for z in z0]
    for step in range(12):
        dt = float(rng.choice([1 / 30, 2 / 30, 0.2]))  # includes dropped frames
        kalman.predict(table, dt)
        refs = [ref_predict(m, c, dt) for m, c in refs]
        rows = rng.choice(n, size=4, replace=False)  # only some tracks are matched
        z = table[rows, :4] + rng.normal(0, [5, 5, 1, 1], (4, 4))  # sizes stay far above MIN_SIZE
        upd = table[rows]
        kalman.update(upd, z)
        table[rows] = upd
        for r, zr in zip(rows, z):
            refs[r] = ref_update(*refs[r], zr)
        for r in range(n):
            mean, cov = to_block(table[r])
            # (I - KH)P and the block form round differently; 1e-7 relative is far below any effect
            np.testing.assert_allclose(mean, refs[r][0], rtol=1e-7, atol=1e-7)
            np.testing.assert_allclose(cov, refs[r][1], rtol=1e-7, atol=1e-7)


def test_prediction_follows_elapsed_time():
    table = kalman.initiate(np.array([[100.0, 100.0, 40.0, 80.0]]))
    table[0, 4] = 300.0  # 300 px/s to the right
    kalman.predict(table, 0.5)
    assert table[0, 0] == 250.0
    kalman.predict(table, 0.0)  # same timestamp twice: nothing moves
    assert table[0, 0] == 250.0


def test_box_conversions_round_trip():
    boxes = np.array([[10, 20, 50, 100], [0, 0, 1, 1]], np.float32)
    table = kalman.initiate(kalman.cxcywh(boxes))
    np.testing.assert_allclose(kalman.xyxy(table), boxes)
