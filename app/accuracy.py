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


TP, FP, IGNORED = 1, 0, -1


def match_flags(pred: np.ndarray, scores: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None,
                iou: float = 0.5) -> np.ndarray:
    """Per prediction (in input order) TP, FP or IGNORED: best score first, one match per truth box.

    Unmatched predictions that lie mostly (> 50 %) inside an ignore region are IGNORED. Greedy by score,
    so the flags of the predictions scoring at least t are the flags a run at threshold t would get.
    """
    pred = np.asarray(pred, np.float64).reshape(-1, 4)
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    flags = np.full(len(pred), FP, np.int8)
    order = np.argsort(-np.asarray(scores), kind="stable")
    overlaps = iou_matrix(pred[order], truth) if len(truth) else np.zeros((len(pred), 0))
    taken = np.zeros(len(truth), bool)
    for row, i in enumerate(order):
        if len(truth):
            cand = np.where(taken, -1.0, overlaps[row])
            if cand.max() >= iou:
                taken[int(cand.argmax())] = True
                flags[i] = TP
    unmatched = np.flatnonzero(flags == FP)
    if len(unmatched) and ignore is not None and len(ignore):
        ign = np.asarray(ignore, np.float64).reshape(-1, 4)
        inside = _fraction_inside(pred[unmatched], ign).max(axis=1) > 0.5
        flags[unmatched[inside]] = IGNORED
    return flags


def match(pred: np.ndarray, scores: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None,
          iou: float = 0.5) -> Counts:
    """TP/FP/FN of predicted boxes against true boxes (all xyxy); see match_flags."""
    flags = match_flags(pred, scores, truth, ignore, iou)
    tp = int((flags == TP).sum())
    return Counts(tp, int((flags == FP).sum()), len(np.asarray(truth).reshape(-1, 4)) - tp)


def average_precision(scores: np.ndarray, flags: np.ndarray, num_truth: int) -> float:
    """Area under the precision-recall curve (all-point interpolation, as PASCAL VOC 2010+ and COCO's
    AP50 without its 101-point sampling) of pooled predictions with match_flags results."""
    if num_truth == 0:
        return float("nan")
    keep = flags != IGNORED
    scores, flags = np.asarray(scores)[keep], flags[keep]
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(flags[order] == TP)
    fp = np.cumsum(flags[order] == FP)
    # one point per distinct score: boxes with equal scores (common with an INT8 model's few output
    # levels) pass any threshold together, so the order they were pooled in must not matter
    last = np.r_[np.diff(scores[order]) != 0, True][: len(order)]
    tp, fp = tp[last], fp[last]
    recall = np.concatenate([[0.0], tp / num_truth])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1)])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope
    return float(np.sum(np.diff(recall) * precision[1:]))


def _fraction_inside(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,m): share of each box in a covered by each box in b."""
    inter = ios_matrix(a, b) * np.minimum(_area(a)[:, None], _area(b)[None, :])
    return np.divide(inter, _area(a)[:, None], out=np.zeros_like(inter), where=_area(a)[:, None] > 0)


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
