"""Detection accuracy against hand-labelled boxes: greedy matching at an IoU threshold with ignore regions."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.ops import ios_matrix, iou_matrix


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __iadd__(self, other: "Counts") -> "Counts":
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0


def match(pred: np.ndarray, scores: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None,
          iou: float = 0.5) -> Counts:
    """TP/FP/FN of predicted boxes against true boxes (all xyxy), best score first, one match per truth.

    Unmatched predictions that lie mostly (> 50 %) inside an ignore region count as neither.
    """
    pred = np.asarray(pred, np.float64).reshape(-1, 4)
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores))
    overlaps = iou_matrix(pred[order], truth) if len(truth) else np.zeros((len(pred), 0))
    taken = np.zeros(len(truth), bool)
    unmatched = []
    tp = 0
    for row, i in enumerate(order):
        cand = np.where(taken, -1.0, overlaps[row]) if len(truth) else np.zeros(0)
        if len(cand) and cand.max() >= iou:
            taken[int(cand.argmax())] = True
            tp += 1
        else:
            unmatched.append(i)
    fp = len(unmatched)
    if unmatched and ignore is not None and len(ignore):
        ign = np.asarray(ignore, np.float64).reshape(-1, 4)
        inside = _fraction_inside(pred[unmatched], ign).max(axis=1) > 0.5
        fp -= int(inside.sum())
    return Counts(tp, fp, int((~taken).sum()))


def _fraction_inside(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,m): share of each box in a covered by each box in b."""
    inter = ios_matrix(a, b) * np.minimum(_area(a)[:, None], _area(b)[None, :])
    return np.divide(inter, _area(a)[:, None], out=np.zeros_like(inter), where=_area(a)[:, None] > 0)


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
