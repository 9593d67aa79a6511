import numpy as np

from app.accuracy import match


def test_match_counts_tp_fp_fn_and_one_match_per_truth():
    truth = [[0, 0, 10, 20], [100, 0, 110, 20]]
    pred = [[0, 0, 10, 20], [1, 0, 11, 20], [50, 50, 60, 60]]  # duplicate of first truth, and a stray
    c = match(np.array(pred), np.array([0.9, 0.8, 0.7]), np.array(truth))
    assert (c.tp, c.fp, c.fn) == (1, 2, 1)
    assert c.recall == 0.5 and c.precision == 1 / 3


def test_predictions_in_ignore_regions_are_not_false_positives():
    c = match(np.array([[50, 50, 60, 60]]), np.array([0.9]), np.zeros((0, 4)), ignore=np.array([[45, 45, 65, 65]]))
    assert (c.tp, c.fp, c.fn) == (0, 0, 0)
