import numpy as np

from app.ops import cxcywh_to_xyxy, ios_matrix, iou_matrix, nms


def test_iou_of_hand_computed_pairs():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0]], float)
    # overlap 5x10=50, union 150
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 1.0, 0.0, 0.0]])


def test_ios_is_one_when_a_box_contains_another():
    outer = np.array([[0, 0, 100, 200]], float)
    inner = np.array([[10, 10, 50, 100]], float)
    assert ios_matrix(outer, inner)[0, 0] == 1.0
    assert iou_matrix(outer, inner)[0, 0] < 0.2


def test_cxcywh_to_xyxy():
    np.testing.assert_allclose(cxcywh_to_xyxy(np.array([[0.5, 0.5, 0.2, 0.4]])), [[0.4, 0.3, 0.6, 0.7]])


def test_nms_keeps_best_of_overlapping_pair_and_distant_box():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.6, 0.9, 0.5])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]


def test_nms_is_class_aware_unless_told_otherwise():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8])
    classes = np.array([0, 1])
    assert sorted(nms(boxes, scores, 0.5, classes).tolist()) == [0, 1]
    assert nms(boxes, scores, 0.5).tolist() == [0]


def test_nms_with_ios_removes_partial_box_inside_full_one():
    full = [0, 0, 40, 100]
    cut = [0, 0, 40, 45]  # the same person cut by a tile edge: IoU 0.45, IoS 1.0
    boxes = np.array([full, cut], float)
    scores = np.array([0.8, 0.9])
    assert len(nms(boxes, scores, 0.6, metric="iou")) == 2
    assert nms(boxes, scores, 0.6, metric="ios").tolist() == [1]


def test_nms_empty_and_max_keep():
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(5)], float)
    assert len(nms(boxes, np.linspace(0.9, 0.5, 5), 0.5, max_keep=3)) == 3
