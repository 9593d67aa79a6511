"""Constant-velocity Kalman filter for boxes, run over all tracks at once.

State per track: centre x, centre y, width, height and their velocities (px/s).
Every noise matrix is diagonal and each coordinate moves independently of the
others, so the 8x8 covariance of each track is exactly four independent 2x2
blocks (position, velocity) — one per coordinate. The filter therefore keeps
three (n, 4) arrays (position variance, cross-covariance, velocity variance)
and does predict and update as a handful of element-wise array operations:
the same numbers as the full matrix filter, without a per-track loop or a
matrix inverse.

Noise is proportional to box size, as in ByteTrack's filter (position weight
1/20, velocity weight 1/160 per 30 fps frame), applied per coordinate as in
BoT-SORT's xywh variant. Process noise grows with elapsed time, so a frame
dropped by a live source widens the prediction instead of breaking it.
"""
from __future__ import annotations

import numpy as np

STD_WEIGHT_POSITION = 1.0 / 20
STD_WEIGHT_VELOCITY = 1.0 / 160
REFERENCE_FPS = 30.0  # the rate the weights above were tuned at
MIN_SIZE = 1.0  # px; a predicted width/height never shrinks below this

# Column layout of the (n, 20) float64 state block. Callers hold it inside a
# wider table, so these are column offsets into that table.
POS = slice(0, 4)  # cx, cy, w, h
VEL = slice(4, 8)  # d/dt of the above, px/s
P00 = slice(8, 12)  # variance of position
P01 = slice(12, 16)  # position/velocity covariance
P11 = slice(16, 20)  # variance of velocity
STATE_COLUMNS = 20


def _size4(state: np.ndarray) -> np.ndarray:
    """Per-coordinate size scale (w, h, w, h) for size-proportional noise."""
    wh = state[:, 2:4]
    return np.concatenate((wh, wh), axis=1)


def initiate(state: np.ndarray, z: np.ndarray) -> None:
    """Write fresh tracks for measurements z (n,4 cx,cy,w,h) into state rows (in place)."""
    size = np.concatenate((z[:, 2:4], z[:, 2:4]), axis=1)
    state[:, POS] = z
    state[:, VEL] = 0.0
    state[:, P00] = np.square(2 * STD_WEIGHT_POSITION * size)
    state[:, P01] = 0.0
    state[:, P11] = np.square(10 * STD_WEIGHT_VELOCITY * REFERENCE_FPS * size)


def predict(state: np.ndarray, dt: float) -> None:
    """Advance every track by dt seconds (in place)."""
    if dt <= 0 or len(state) == 0:
        return
    steps = dt * REFERENCE_FPS  # noise is specified per reference frame
    size_sq = np.square(_size4(state))
    pos, vel = state[:, POS], state[:, VEL]
    p00, p01, p11 = state[:, P00], state[:, P01], state[:, P11]
    pos += vel * dt
    # F P F^T + Q for F = [[1, dt], [0, 1]]; order matters: each line uses the old values.
    p00 += dt * (2 * p01 + dt * p11) + (steps * STD_WEIGHT_POSITION**2) * size_sq
    p01 += dt * p11
    p11 += (steps * (STD_WEIGHT_VELOCITY * REFERENCE_FPS) ** 2) * size_sq
    np.maximum(state[:, 2:4], MIN_SIZE, out=state[:, 2:4])


def update(rows: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Return state rows corrected by measurements z (n,4 cx,cy,w,h); rows is a copy."""
    r = np.square(STD_WEIGHT_POSITION * _size4(rows))
    p00, p01, p11 = rows[:, P00], rows[:, P01], rows[:, P11]
    s = p00 + r
    k0 = p00 / s
    k1 = p01 / s
    innovation = z - rows[:, POS]
    rows[:, POS] += k0 * innovation
    rows[:, VEL] += k1 * innovation
    p11 -= k1 * p01
    p01 *= 1 - k0
    p00 *= 1 - k0
    return rows


def xyxy(state: np.ndarray) -> np.ndarray:
    """Box corners (n,4) of the current state estimates."""
    c, half = state[:, 0:2], state[:, 2:4] * 0.5
    return np.concatenate((c - half, c + half), axis=1)


def cxcywh(boxes: np.ndarray) -> np.ndarray:
    """Convert xyxy boxes (n,4) to centre/size form as float64."""
    b = boxes.astype(np.float64, copy=False)
    return np.concatenate(((b[:, 0:2] + b[:, 2:4]) * 0.5, b[:, 2:4] - b[:, 0:2]), axis=1)
