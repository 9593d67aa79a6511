"""Constant-velocity Kalman filter for boxes, run over all tracks at once.

State per track: centre x, centre y, width, height and their velocities (px/s).
Every noise matrix is diagonal and each coordinate moves independently of the
others, so the 8x8 covariance of each track is exactly four independent 2x2
blocks (position, velocity) — one per coordinate. The filter therefore keeps
three (n, 4) arrays (position variance, cross-covariance, velocity variance)
and does predict and update as a handful of array operations over all tracks:
the same numbers as the full matrix filter, without a per-track loop or a
matrix inverse.

Noise is proportional to box size, as in ByteTrack's filter (position weight
1/20, velocity weight 1/160 per 30 fps frame), applied per coordinate as in
BoT-SORT's xywh variant. Process noise grows with elapsed time, so a frame
dropped by a live source widens the prediction instead of breaking it.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

STD_WEIGHT_POSITION = 1.0 / 20
STD_WEIGHT_VELOCITY = 1.0 / 160
REFERENCE_FPS = 30.0  # the frame rate the weights above are specified at
MIN_SIZE = 1.0  # px; a predicted width/height never shrinks below this

# Columns of the (n, 20) float64 state block, the first 20 columns of a track table.
POS = slice(0, 4)  # cx, cy, w, h
VEL = slice(4, 8)  # d/dt of the above, px/s
P00 = slice(8, 12)  # variance of position
P01 = slice(12, 16)  # position/velocity covariance
P11 = slice(16, 20)  # variance of velocity
STATE_COLUMNS = 20


@lru_cache(maxsize=64)
def _transition(dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, N) such that predicted state = state @ T + [w², h²] @ N for a step of dt seconds."""
    t = np.eye(STATE_COLUMNS)
    noise = np.zeros((2, STATE_COLUMNS))
    steps = dt * REFERENCE_FPS  # noise is specified per reference frame
    for j in range(4):
        t[4 + j, j] = dt  # position += dt * velocity
        # P' = F P F^T for F = [[1, dt], [0, 1]], per coordinate block [[p00, p01], [p01, p11]]
        t[12 + j, 8 + j] = 2 * dt
        t[16 + j, 8 + j] = dt * dt
        t[16 + j, 12 + j] = dt
        size = j % 2  # x and w scale with width, y and h with height
        noise[size, 8 + j] = steps * STD_WEIGHT_POSITION**2
        noise[size, 16 + j] = steps * (STD_WEIGHT_VELOCITY * REFERENCE_FPS) ** 2
    t.setflags(write=False)
    noise.setflags(write=False)
    return t, noise


def initiate(z: np.ndarray) -> np.ndarray:
    """State block (n, 20) for new tracks at measurements z (n, 4 as cx, cy, w, h)."""
    wh = z[:, 2:4]
    size = np.concatenate((wh, wh), axis=1)
    state = np.zeros((len(z), STATE_COLUMNS))
    state[:, POS] = z
    state[:, P00] = np.square(2 * STD_WEIGHT_POSITION * size)
    state[:, P11] = np.square(10 * STD_WEIGHT_VELOCITY * REFERENCE_FPS * size)
    return state


def predict(table: np.ndarray, dt: float) -> None:
    """Advance every track in table (its first 20 columns) by dt seconds, in place."""
    if dt <= 0 or len(table) == 0:
        return
    t, noise = _transition(round(dt, 9))  # rounding lets jittery timestamps share a cache entry
    state = table[:, :STATE_COLUMNS]
    sq = np.square(state[:, 2:4])  # noise scales with the size before the step, as in ByteTrack
    table[:, :STATE_COLUMNS] = state @ t + sq @ noise
    np.maximum(table[:, 2:4], MIN_SIZE, out=table[:, 2:4])


def advanced(table: np.ndarray, dt: float) -> np.ndarray:
    """Positions (n, 4 as cx, cy, w, h) of every track dt seconds on, leaving table as it is."""
    pos = table[:, POS] + dt * table[:, VEL]
    np.maximum(pos[:, 2:4], MIN_SIZE, out=pos[:, 2:4])
    return pos


def update(rows: np.ndarray, z: np.ndarray) -> None:
    """Correct track rows in place with measurements z (n,4 cx,cy,w,h).

    rows must be a C-contiguous (n, k) float64 array with k a multiple of 4 (a
    gathered copy of table rows), so it can be viewed as (n, k/4, 2, 2) blocks:
    block 0 = [[cx, cy], [w, h]], 1 = velocities, 2 = p00, 3 = p01, 4 = p11. In that
    view every coordinate's size scale is simply [w, h] broadcast over the pair axis.
    """
    n, k = rows.shape
    v = rows.reshape(n, k // 4, 2, 2)
    wh = v[:, 0, 1]
    s = v[:, 2] + (STD_WEIGHT_POSITION**2) * (wh * wh)[:, None, :]  # innovation variance
    gain = v[:, 2:4] / s[:, None]  # position and velocity gains, (n, 2, 2, 2)
    innovation = z.reshape(n, 2, 2) - v[:, 0]
    v[:, 0:2] += gain * innovation[:, None]
    v[:, 4] -= gain[:, 1] * v[:, 3]  # p11 -= k1 * p01, before p01 changes
    v[:, 2:4] *= 1.0 - gain[:, 0:1]  # p00, p01 scale by 1 - k0


# xyxy = state[:, :4] @ _TO_XYXY, and back.
_TO_XYXY = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]])
_TO_CXCYWH = np.linalg.inv(_TO_XYXY)


def xyxy(table: np.ndarray) -> np.ndarray:
    """Box corners (n,4) of the current state estimates."""
    return table[:, :4] @ _TO_XYXY


def cxcywh(boxes: np.ndarray) -> np.ndarray:
    """Convert xyxy boxes (n,4) to centre/size form as float64."""
    return boxes @ _TO_CXCYWH
