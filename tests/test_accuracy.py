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


def test_average_precision_is_the_area_under_the_precision_envelope():
    from app.accuracy import FP, IGNORED, TP, average_precision

    # ranked TP, FP, TP with 4 labelled boxes: recall 0.25 at precision 1, then 0.5 at 2/3
    flags = np.array([TP, FP, TP, IGNORED], np.int8)
    assert np.isclose(average_precision(np.array([0.9, 0.8, 0.7, 0.95]), flags, 4), 0.25 * 1 + 0.25 * 2 / 3)
    assert average_precision(np.zeros(0), np.zeros(0, np.int8), 2) == 0.0  # nothing found


def test_average_precision_of_tied_scores_does_not_depend_on_their_order():
    from app.accuracy import FP, TP, average_precision

    # an INT8 model gives few score levels: a TP and an FP at the same score pass every threshold together
    scores = np.array([0.8, 0.6, 0.6, 0.4])
    a = average_precision(scores, np.array([TP, TP, FP, TP], np.int8), 3)
    b = average_precision(scores, np.array([TP, FP, TP, TP], np.int8), 3)
    assert a == b
    assert np.isclose(a, 1 / 3 + 2 / 3 * 3 / 4)  # the envelope lifts 2/3 recall to the 3/4 precision after it
