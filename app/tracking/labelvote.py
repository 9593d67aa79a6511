"""The label a track publishes: a score-weighted vote with hysteresis over the labels of its detections.

A parked van is seen as truck 0.51 in one frame and car 0.46 in the next. Publishing each frame's
label (or a plain majority, which flips whenever the two are even) makes a truck count come and go.
Here each track holds its label and one rival with their weights: a detection adds its score to its
label's weight, older evidence fades by DECAY per detection, and the rival takes over only once its
weight is MARGIN times the label's. A label that is really wrong (the first frames of a van seen as a
car, then a truck for good) is replaced once; two labels that keep alternating leave the first one in
place. A third label wears the rival down (weighted Misra-Gries), so the state stays two per track.
"""
from __future__ import annotations

import numpy as np

DECAY = 0.98  # per matched detection: evidence half as strong after ~35 detections (~1.4 s at 25 fps)
MARGIN = 1.5  # the rival's weight over the label's that changes the label


def vote(label: np.ndarray, rival: np.ndarray, w_label: np.ndarray, w_rival: np.ndarray,
         cls: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Add one detection (class `cls`, `score`) to each track's vote, in place; rows follow the arrays.
    Returns the mask of tracks whose label changed."""
    score = np.asarray(score, np.float64)
    w_label *= DECAY
    w_rival *= DECAY
    same = cls == label
    w_label += np.where(same, score, 0.0)
    as_rival = ~same & (cls == rival)
    w_rival += np.where(as_rival, score, 0.0)
    other = ~same & ~as_rival  # a third label: takes the rival's place only when that has faded below it
    take = other & (w_rival <= score)
    rival[take] = cls[take]
    w_rival[:] = np.where(take, score - w_rival, np.where(other, w_rival - score, w_rival))
    flip = w_rival > MARGIN * w_label
    if flip.any():
        label[flip], rival[flip] = rival[flip], label[flip].copy()
        w_label[flip], w_rival[flip] = w_rival[flip], w_label[flip].copy()
    return flip
