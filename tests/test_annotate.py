"""Tag placement on annotated frames: tags stay inside the frame and do not cover each other."""
import numpy as np

from app.annotate import annotate, place_tags
from app.types import Detections


def _overlap(a, b, size_a, size_b):
    (ax, ay), (bx, by) = a, b
    (aw, ah), (bw, bh) = size_a, size_b
    return min(ax + aw, bx + bw) > max(ax, bx) and min(ay + ah, by + bh) > max(ay, by)


def test_tags_of_neighbours_do_not_cover_each_other():
    # three narrow people side by side, tags three times wider than their boxes (a crowd)
    boxes = [(100, 100, 130, 180), (135, 102, 165, 182), (170, 98, 200, 178)]
    sizes = [(90, 16)] * 3
    spots = place_tags(boxes, sizes, 768, 576)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not _overlap(spots[i], spots[j], sizes[i], sizes[j]), (i, j, spots)


def test_tags_stay_inside_the_frame():
    # a car cut by the right edge and a person at the very top
    boxes = [(740, 50, 767, 95), (10, 0, 40, 60)]
    sizes = [(80, 16), (90, 16)]
    for (x, y), (w, h) in zip(place_tags(boxes, sizes, 768, 576), sizes):
        assert 0 <= x and x + w < 768 and 0 <= y and y + h < 576


def test_the_more_confident_tag_gets_the_place_above_its_box():
    boxes = [(100, 100, 130, 180), (110, 100, 140, 180)]
    sizes = [(90, 16)] * 2
    spots = place_tags(boxes, sizes, 768, 576, order=[1, 0])
    assert spots[1] == (110, 84)  # first placed: just above its box
    assert spots[0] != (100, 84)


def test_annotate_draws_a_tag_for_a_box_at_the_right_edge():
    image = np.zeros((200, 300, 3), np.uint8)
    dets = Detections(xyxy=np.array([[280, 50, 299, 120]], np.float32), scores=np.array([0.9], np.float32),
                      class_ids=np.array([0]), track_ids=np.array([7]))
    out = annotate(image, dets, ["person"])
    # the filled tag (about 100 px wide) was moved left into the frame, above the box
    row = out[40]
    assert (row.max(axis=1) > 0).sum() > 80
