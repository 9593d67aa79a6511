"""Committed fixture detectors (SSD post-process, YOLOv5, YOLOv8; INT8) through the real runtime and
Vigil's decoders, against the detections their generator designed (tests/fixtures/models/*.json)."""
import json

import cv2
import numpy as np
import pytest

from app.backends import load
from app.decoders import build_decoder
from app.preprocess import InputConverter, make_view
from tests.conftest import FIXTURE_MODELS, SAMPLE_CLIP

SETTINGS = {  # decoding name in the JSON -> Vigil decoder settings
    "score_threshold": {},
    "obj_x_cls_class_aware": {},
    "obj_x_cls_class_agnostic": {"nms_agnostic": True},
    "axis_objectness": {"type": "yolov5", "nms_agnostic": True, "yolo_score": "objectness"},  # a YOLOv5 key
    "class_aware": {},
    "class_agnostic": {"nms_agnostic": True},
}
CASES = [
    (name, d["name"])
    for name in ("ssd_postprocess_int8", "yolov5_int8", "yolov8_int8")
    for d in json.loads((FIXTURE_MODELS / f"{name}.json").read_text())["decodings"]
]


@pytest.fixture(scope="module")
def frame():
    cap = cv2.VideoCapture(str(SAMPLE_CLIP))
    ok, img = cap.read()
    assert ok
    return img


@pytest.mark.parametrize("model_name,decoding", CASES)
def test_fixture_model_decodes_to_designed_detections(model_name, decoding, frame):
    spec = json.loads((FIXTURE_MODELS / f"{model_name}.json").read_text())
    expected = next(d for d in spec["decodings"] if d["name"] == decoding)
    model = load(FIXTURE_MODELS / f"{model_name}.tflite")
    assert model.inputs[0].dtype == np.uint8
    conv = InputConverter(model.inputs[0])
    cfg = {
        "score_threshold": expected["score_threshold"],
        "iou_threshold": expected.get("iou_threshold", 0.45),
        **SETTINGS[decoding],
    }
    labels = [f"class{i}" for i in range(spec["num_classes"])]
    decoder = build_decoder(cfg, model.outputs, labels, conv.size)  # type auto-detected unless set
    view = make_view(0, 0, frame.shape[1], frame.shape[0], *conv.size, "stretch")
    dets = decoder.decode(model.run([conv(view.render(frame, rgb=True))]))
    want = expected["detections"]
    assert len(dets) == len(want), (dets, want)
    order = np.argsort(-dets.scores, kind="stable")
    tol = spec["tolerance"]
    for got_i, w in zip(order, want):
        assert dets.class_ids[got_i] == w["class_id"], w["object"]
        assert dets.scores[got_i] == pytest.approx(w["score"], abs=tol["score"] + 1e-6), w["object"]
        np.testing.assert_allclose(dets.xyxy[got_i], w["box_xyxy"], atol=tol["box"] + 1e-6, err_msg=w["object"])


def test_ssd_fixture_output_order_is_coral_order():
    model = load(FIXTURE_MODELS / "ssd_postprocess_int8.tflite")
    assert [list(s.shape) for s in model.outputs] == [[1, 10, 4], [1, 10], [1, 10], [1]]
    assert all(s.dtype == np.float32 for s in model.outputs)
