"""app.modeltools.compare: an INT8 model against its float original, on the app's backend and decoder."""
import cv2
import numpy as np
import pytest

from app.backends.tflite import TFLiteModel
from app.decoders.mediapipe import AnchorOptions, generate_anchors
from app.modeltools import compare
from tests.conftest import BLAZEPOSE_MODEL, BLAZEPOSE_PERCHANNEL, SAMPLE_CLIP


@pytest.fixture(scope="module")
def crops():
    """Four sample-clip frames as BlazePose inputs: 224 x 224 RGB in [-1, 1]."""
    cap = cv2.VideoCapture(str(SAMPLE_CLIP))
    frames = []
    for _ in range(4):
        ok, bgr = cap.read()
        assert ok
        rgb = cv2.cvtColor(cv2.resize(bgr, (224, 224)), cv2.COLOR_BGR2RGB)
        frames.append((rgb.astype(np.float32) / 127.5 - 1)[None])
        for _ in range(20):
            cap.read()
    cap.release()
    return frames


def test_real_outputs_are_the_backends_raw_outputs_dequantised(crops):
    model = TFLiteModel(BLAZEPOSE_MODEL, 1)
    (spec,) = model.inputs
    raw = model.run([spec.quantize(crops[0])])
    for out, r, s in zip(compare.real_outputs(model, crops[0]), raw, model.outputs):
        np.testing.assert_array_equal(out, (r.astype(np.float32) - s.zero_point) * np.float32(s.scale))


def test_a_detector_agrees_fully_with_itself_and_not_with_its_other_quantisation(crops):
    anchors = generate_anchors(AnchorOptions(), 224, 224)
    same = compare.compare_detectors(TFLiteModel(BLAZEPOSE_MODEL, 1), TFLiteModel(BLAZEPOSE_MODEL, 1), crops,
                                     anchors, threshold=0.05, reference_logits=False, keypoint_box=(0, 1))
    assert same.images == 4 and same.float_detections > 0
    assert same.matched == same.float_detections and same.missed == same.extra == 0
    assert same.box_err_px_max == 0 and same.score_abs_diff_max == 0 and same.keypoint_box_iou_min == 1.0
    other = compare.compare_detectors(TFLiteModel(BLAZEPOSE_PERCHANNEL, 1), TFLiteModel(BLAZEPOSE_MODEL, 1), crops,
                                      anchors, threshold=0.05, reference_logits=False)
    assert other.box_err_px_mean > 0 and other.keypoint_box_iou_mean is None


def test_kernel_differences_are_counted_in_quantisation_steps_per_output(crops):
    steps = compare.kernel_step_differences(BLAZEPOSE_MODEL, crops[:2])
    assert len(steps) == 2
    for mean, top in steps:
        assert 0 <= mean <= top and float(top).is_integer()  # whole steps: both runs are int8
