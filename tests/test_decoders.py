"""Each decoder against hand-computed tensors (the real-model runs are in test_fixture_models.py)."""
import numpy as np
import pytest

from app.decoders import DECODERS, build_decoder
from app.decoders.mediapipe import AnchorOptions, anchor_boxes, anchor_keypoints, generate_anchors
from app.errors import ConfigError, ModelError
from app.modelfile import TensorSpec

F32 = np.dtype(np.float32)
U8 = np.dtype(np.uint8)


def cfg_of(**keys):
    """A decoder section as the config tree validates it (type auto unless given)."""
    return DECODERS.parse(keys)


def ssd_specs(n=3):
    op = "TFLite_Detection_PostProcess"
    return [TensorSpec(op, (1, n, 4), F32), TensorSpec(op + ":1", (1, n), F32),
            TensorSpec(op + ":2", (1, n), F32), TensorSpec(op + ":3", (1,), F32)]


def ssd_outputs():
    boxes = np.array([[[0.1, 0.2, 0.5, 0.4], [0.0, 0.5, 1.0, 1.0], [0.3, 0.3, 0.4, 0.4]]], np.float32)
    classes = np.array([[0, 2, 1]], np.float32)
    scores = np.array([[0.9, 0.6, 0.55]], np.float32)
    count = np.array([2], np.float32)  # the third row is beyond the count and must be ignored
    return [boxes, classes, scores, count]


def test_ssd_postprocess_swaps_yx_and_respects_count():
    dec = build_decoder(cfg_of(score_threshold=0.5), ssd_specs(), ["person", "bicycle", "car"], (300, 300))
    d = dec.decode(ssd_outputs())
    np.testing.assert_allclose(d.xyxy, [[0.2, 0.1, 0.4, 0.5], [0.5, 0.0, 1.0, 1.0]])
    assert d.class_ids.tolist() == [0, 2]
    np.testing.assert_allclose(d.scores, [0.9, 0.6])


def test_ssd_per_class_threshold_by_label():
    cfg = cfg_of(score_threshold=0.5, class_thresholds={"car": 0.7})
    d = build_decoder(cfg, ssd_specs(), ["person", "bicycle", "car"], (300, 300)).decode(ssd_outputs())
    assert d.class_ids.tolist() == [0]


def test_unknown_label_in_class_thresholds_is_a_config_error():
    with pytest.raises(ConfigError, match="decoder.class_thresholds: unknown label 'persn'"):
        build_decoder(cfg_of(class_thresholds={"persn": 0.7}), ssd_specs(), ["person"], (300, 300))


def quantized_yolo_v5(rows_real, scale=1 / 255, zp=0):
    spec = TensorSpec("out", (1, len(rows_real), len(rows_real[0])), U8, scale, zp)
    return spec, spec.quantize(np.array([rows_real], np.float32))


def test_yolov5_dequantises_scores_obj_times_class_and_suppresses_duplicates():
    rows = [
        [0.5, 0.5, 0.2, 0.4, 0.9, 0.1, 0.95],   # class 1, score 0.855
        [0.51, 0.5, 0.2, 0.4, 0.8, 0.1, 0.95],  # same object, weaker: NMS removes it
        [0.2, 0.2, 0.1, 0.1, 0.7, 0.9, 0.2],    # class 0, score 0.63
        [0.8, 0.8, 0.1, 0.1, 0.3, 0.9, 0.9],    # objectness below threshold
    ] + [[0, 0, 0, 0, 0, 0, 0]] * 20
    spec, q = quantized_yolo_v5(rows)
    dec = build_decoder(cfg_of(score_threshold=0.5), [spec], ["a", "b"], (640, 640))
    d = dec.decode([q])
    assert len(d) == 2
    assert d.class_ids.tolist() == [1, 0]
    np.testing.assert_allclose(d.xyxy[0], [0.4, 0.3, 0.6, 0.7], atol=2 / 255)
    np.testing.assert_allclose(d.scores, [0.9 * 0.95, 0.7 * 0.9], atol=3 / 255)


def test_yolov5_zero_point_is_subtracted():
    rows = [[0.5, 0.5, 0.2, 0.2, 0.9, 0.9]] + [[0, 0, 0, 0, 0, 0]] * 10
    spec, q = quantized_yolo_v5(rows, scale=0.0042464, zp=1)
    d = build_decoder(cfg_of(), [spec], ["a"], (640, 640)).decode([q])
    np.testing.assert_allclose(d.xyxy[0], [0.4, 0.4, 0.6, 0.6], atol=0.005)


def test_yolov8_channels_first_pixel_coordinates():
    n = 50
    out = np.zeros((1, 6, n), np.float32)
    out[0, :, 7] = [320, 160, 64, 128, 0.1, 0.8]   # class 1 at 0.8
    out[0, :, 9] = [100, 100, 20, 20, 0.3, 0.2]     # below threshold
    spec = TensorSpec("output0", (1, 6, n), F32)
    d = build_decoder(cfg_of(score_threshold=0.5), [spec], ["a", "b"], (640, 640)).decode([out])
    assert d.class_ids.tolist() == [1]
    np.testing.assert_allclose(d.xyxy[0], [0.45, 0.15, 0.55, 0.35], atol=1e-6)


def test_anchor_generation_matches_mediapipe_pose_layout():
    a = generate_anchors(AnchorOptions(), 224, 224)
    assert a.shape == (2254, 4)
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28, 1, 1])
    np.testing.assert_allclose(a[1], a[0])  # two anchors per cell (interpolated scale)
    np.testing.assert_allclose(a[2], [1.5 / 28, 0.5 / 28, 1, 1])
    np.testing.assert_allclose(a[1568], [0.5 / 14, 0.5 / 14, 1, 1])  # first stride-16 anchor
    np.testing.assert_allclose(a[2253], [6.5 / 7, 6.5 / 7, 1, 1])
    np.testing.assert_allclose(a[1568 + 392:1568 + 392 + 6, :2], [[0.5 / 7, 0.5 / 7]] * 6)  # 3 layers share stride 32


def test_anchor_regressors_are_offsets_in_input_pixels_scaled_by_the_anchor_size():
    anchors = np.array([[0.5, 0.25, 1.0, 1.0], [0.1, 0.1, 0.5, 2.0]], np.float32)
    reg = np.array([[22.4, 0, 44.8, 89.6, 0, 0, -22.4, 44.8], [0, 22.4, 44.8, 44.8, 22.4, 0, 0, 0]], np.float32)
    boxes = anchor_boxes(reg, anchors, (224.0, 224.0))
    # centre (0.6, 0.25), size 0.2 x 0.4; then centre (0.1, 0.3), size 0.1 x 0.4 (anchor w 0.5, h 2)
    np.testing.assert_allclose(boxes, [[0.5, 0.05, 0.7, 0.45], [0.05, 0.1, 0.15, 0.5]], atol=1e-6)
    kp = anchor_keypoints(reg, anchors, (224.0, 224.0))
    assert kp.shape == (2, 2, 2)
    np.testing.assert_allclose(kp, [[[0.5, 0.25], [0.4, 0.45]], [[0.15, 0.1], [0.1, 0.1]]], atol=1e-6)


def mediapipe_specs(quantized=False):
    if quantized:
        return [TensorSpec("Identity", (1, 2254, 12), np.dtype(np.int8), 2.0, 0),
                TensorSpec("Identity_1_sigmoid", (1, 2254, 1), np.dtype(np.int8), 1 / 256, -128)]
    return [TensorSpec("Identity", (1, 2254, 12), F32), TensorSpec("Identity_1", (1, 2254, 1), F32)]


def mediapipe_outputs(i=2):
    reg = np.zeros((1, 2254, 12), np.float32)
    logits = np.full((1, 2254, 1), -20.0, np.float32)
    reg[0, i, :4] = [0, 0, 44.8, 44.8]      # box 0.2 x 0.2 at the anchor centre
    reg[0, i, 4:8] = [0, 0, 0, 22.4]        # hip at the centre, circle point 0.1 below
    logits[0, i, 0] = 3.0
    return reg, logits


def test_mediapipe_regressed_box_and_sigmoid_score():
    reg, logits = mediapipe_outputs()
    dec = build_decoder(cfg_of(type="mediapipe_ssd", person_box="regressed"), mediapipe_specs(), ["person"], (224, 224))
    d = dec.decode([reg, logits])
    cx, cy = 1.5 / 28, 0.5 / 28
    np.testing.assert_allclose(d.xyxy, [[cx - 0.1, cy - 0.1, cx + 0.1, cy + 0.1]], atol=1e-6)
    np.testing.assert_allclose(d.scores, [1 / (1 + np.exp(-3.0))], rtol=1e-5)


def test_mediapipe_body_box_from_keypoints():
    reg, logits = mediapipe_outputs()
    dec = build_decoder(cfg_of(type="mediapipe_ssd", person_box="body", body_aspect=0.5, body_scale=1.0), mediapipe_specs(), ["person"], (224, 224))
    d = dec.decode([reg, logits])
    cx, cy = 1.5 / 28, 0.5 / 28
    np.testing.assert_allclose(d.xyxy, [[cx - 0.05, cy - 0.1, cx + 0.05, cy + 0.1]], atol=1e-6)


def test_mediapipe_quantised_probability_scores_are_not_squashed_again():
    specs = mediapipe_specs(quantized=True)
    reg = np.zeros((1, 2254, 12), np.int8)
    reg[0, 5, 6:8] = [0, 11]  # 22 px at scale 2
    scores = np.full((1, 2254, 1), -128, np.int8)
    scores[0, 5, 0] = specs[1].quantize(np.float32(0.75))
    d = build_decoder(cfg_of(), specs, ["person"], (224, 224)).decode([reg, scores])
    np.testing.assert_allclose(d.scores, [0.75], atol=1 / 256)


def test_mediapipe_wrong_anchor_options_name_the_mismatch():
    with pytest.raises(ModelError, match="generate .* anchors but the model has 2254"):
        build_decoder(cfg_of(type="mediapipe_ssd", anchors=AnchorOptions(strides=[8, 16, 16, 16], num_layers=4)),
                       mediapipe_specs(), ["person"], (224, 224))


@pytest.mark.parametrize("specs,expected", [
    (ssd_specs(), "SsdPostprocessDecoder"),
    ([TensorSpec("o", (1, 25200, 85), U8, 0.004, 0)], "YoloDecoder"),
    ([TensorSpec("o", (1, 84, 8400), F32)], "YoloDecoder"),
    (mediapipe_specs(), "MediapipeDecoder"),
])
def test_auto_detection_picks_the_one_matching_decoder(specs, expected):
    labels = [str(i) for i in range(80)]
    assert type(build_decoder(cfg_of(), specs, labels, (640, 640) if expected == "YoloDecoder" else (224, 224))).__name__ == expected


def test_yolo_auto_detection_tells_v5_from_v8():
    v5 = build_decoder(cfg_of(), [TensorSpec("o", (1, 25200, 85), U8, 0.004, 0)], ["x"] * 80, (640, 640))
    v8 = build_decoder(cfg_of(), [TensorSpec("o", (1, 84, 8400), F32)], ["x"] * 80, (640, 640))
    assert not v5.v8 and v8.v8


def test_outputs_matching_no_decoder_is_a_model_error_listing_tensors():
    with pytest.raises(ModelError, match=r"match no decoder .*logits \[1, 1001\]"):
        build_decoder(cfg_of(), [TensorSpec("logits", (1, 1001), F32)], ["x"], (224, 224))


def test_forcing_a_decoder_that_does_not_fit_is_a_model_error():
    with pytest.raises(ModelError, match="do not fit decoder 'yolov5'"):
        build_decoder(cfg_of(type="yolov5"), ssd_specs(), ["x"], (300, 300))


# -- NanoDet (GFL) ------------------------------------------------------------------------------------
def nanodet_specs(size=64, classes=3, bins=11, quant=None, flat=False):
    """cls and box specs per stride 8/16/32, in the committed model's order (box tensors first)."""
    specs = []
    for kind, c in (("box", 4 * bins), ("cls", classes)):
        for s in (8, 16, 32):
            g = size // s
            shape = (1, g * g, c) if flat else (1, g, g, c)
            dtype, scale, zp = (U8, *quant[kind]) if quant else (F32, 0.0, 0)
            specs.append(TensorSpec(f"{kind}_s{s}", shape, dtype, scale, zp))
    return specs


def nanodet_outputs(specs, hits):
    """Outputs with background logits -8 and, per hit (stride, row, col, class, logit, (l, t, r, b) bins),
    one confident point whose side distributions put all mass on the given bin."""
    real = []
    for spec in specs:
        c = spec.shape[-1]
        a = np.full(spec.shape, -8.0 if spec.name.startswith("cls") else 0.0, np.float32).reshape(-1, c)
        real.append(a)
    by_name = {s.name: i for i, s in enumerate(specs)}
    for stride, row, col, cls, logit, sides in hits:
        g = int(np.sqrt(real[by_name[f"cls_s{stride}"]].shape[0]))
        p = row * g + col
        real[by_name[f"cls_s{stride}"]][p, cls] = logit
        box = real[by_name[f"box_s{stride}"]][p].reshape(4, -1)
        box[:] = -10.0
        box[np.arange(4), sides] = 10.0
    return [s.quantize(a.reshape(s.shape)) for s, a in zip(specs, real)]


@pytest.mark.parametrize("flat", [False, True])
def test_nanodet_point_centre_plus_expected_side_distances(flat):
    specs = nanodet_specs(flat=flat)
    dec = build_decoder(cfg_of(score_threshold=0.5, classes=[]), specs, ["a", "b", "c"], (64, 64))
    # stride 8, row 2, col 3: centre (28, 20); sides l=2, t=1, r=3, b=4 bins of 8 px
    d = dec.decode(nanodet_outputs(specs, [(8, 2, 3, 1, 3.0, (2, 1, 3, 4))]))
    assert d.class_ids.tolist() == [1]
    np.testing.assert_allclose(d.scores, [1 / (1 + np.exp(-3.0))], rtol=1e-5)
    np.testing.assert_allclose(d.xyxy * 64, [[28 - 16, 20 - 8, 28 + 24, 20 + 32]], atol=1e-2)


def test_nanodet_quantised_logits_thresholded_like_float():
    quant = {"cls": (10 / 255, 153), "box": (0.1, 128)}
    specs = nanodet_specs(quant=quant)
    hits = [(16, 1, 1, 0, 0.5, (1, 1, 1, 1)), (32, 0, 1, 2, -0.5, (0, 0, 1, 1)), (8, 5, 5, 1, -2.0, (1, 1, 1, 1))]
    cfg = cfg_of(score_threshold=0.3, classes=[])
    d = build_decoder(cfg, specs, ["a", "b", "c"], (64, 64)).decode(nanodet_outputs(specs, hits))
    # sigmoid(0.5) = 0.62 and sigmoid(-0.5) = 0.38 pass 0.3; sigmoid(-2) = 0.12 does not
    assert sorted(d.class_ids.tolist()) == [0, 2]
    assert np.all(d.scores >= 0.3)


def test_nanodet_classes_keep_only_the_named_labels():
    specs = nanodet_specs()
    hits = [(8, 1, 1, 0, 2.0, (1, 1, 1, 1)), (8, 5, 5, 2, 2.0, (1, 1, 1, 1))]
    cfg = cfg_of(score_threshold=0.3, classes=["c", "not-in-this-model"])
    d = build_decoder(cfg, specs, ["a", "b", "c"], (64, 64)).decode(nanodet_outputs(specs, hits))
    assert d.class_ids.tolist() == [2]


def test_nanodet_is_auto_detected_and_tells_boxes_from_classes_by_bin_count():
    for flat in (False, True):
        dec = build_decoder(cfg_of(), nanodet_specs(classes=80, flat=flat), [], (64, 64))
        assert type(dec).__name__ == "NanoDetDecoder"
        assert [lv.stride for lv in dec.levels] == [8, 16, 32] and dec.num_classes == 80 and dec.bins == 11
    # a level without its partner tensor is not NanoDet's layout
    with pytest.raises(ModelError, match="match no decoder"):
        build_decoder(cfg_of(), nanodet_specs()[:-1], [], (64, 64))


def test_nanodet_float_probabilities_are_not_sigmoided_twice():
    # NanoDet's ONNX export and the TF.js graph end in a sigmoid; Vigil's own builds give logits.
    # A float model of either kind must give the same detections.
    specs = nanodet_specs()
    hits = [(8, 2, 3, 1, 3.0, (2, 1, 3, 4)), (16, 1, 2, 0, -0.2, (1, 1, 1, 1))]
    logits = nanodet_outputs(specs, hits)
    probs = [1 / (1 + np.exp(-a)) if s.name.startswith("cls") else a for s, a in zip(specs, logits)]
    cfg = cfg_of(score_threshold=0.4, classes=[])
    a = build_decoder(cfg, specs, ["a", "b", "c"], (64, 64)).decode(logits)
    b = build_decoder(cfg, specs, ["a", "b", "c"], (64, 64)).decode(probs)
    assert a.class_ids.tolist() == b.class_ids.tolist() == [1, 0]
    np.testing.assert_allclose(b.scores, a.scores, rtol=1e-5)
    np.testing.assert_allclose(b.scores, [1 / (1 + np.exp(-3.0)), 1 / (1 + np.exp(0.2))], rtol=1e-5)
    np.testing.assert_allclose(b.xyxy, a.xyxy)


def test_fewer_labels_than_model_classes_is_warned_naming_both_counts(caplog):
    # e.g. a 1-label file with an 80-class model: classes 1..79 came out as bare numbers without a word
    from app.decoders import ScoreFilter

    ScoreFilter(cfg_of(), ["person", "bicycle"], 80)
    assert "model.labels has 2 labels but the model has 80 classes; classes 2 to 79 are reported by number" in caplog.text
    caplog.clear()
    ScoreFilter(cfg_of(), ["person", "bicycle"], 2)
    assert "model.labels" not in caplog.text


def test_nanodet_gate_on_the_classes_that_can_pass_finds_what_every_class_finds_on_real_outputs():
    """The real INT8 model on frames of the sample clip: decoding only decoder.classes' columns (in the
    output's own dtype) gives exactly the detections of those classes that decoding all 80 gives."""
    import cv2

    from app.backends import load
    from app.preprocess import InputConverter, make_view
    from tests.conftest import ROOT

    model = load(ROOT / "models" / "nanodet_int8_pertensor.tflite")
    labels = (ROOT / "app" / "labels" / "coco_labels.txt").read_text().split("\n")[:80]
    conv = InputConverter(model.inputs[0])
    view = make_view(0, 0, 768, 576, 416, 416, "letterbox")
    wanted = ["person", "car", "bicycle"]
    some = build_decoder(cfg_of(score_threshold=0.3, classes=wanted, max_detections=1000), model.outputs, labels,
                         (416, 416))
    every = build_decoder(cfg_of(score_threshold=0.3, classes=[], max_detections=1000), model.outputs, labels,
                          (416, 416))
    assert some.gates[0][0] is not None and every.gates[0][0] is None  # the gate is in use, and not in the other
    cap = cv2.VideoCapture(str(ROOT / "samples" / "vtest.mp4"))
    found = 0
    for _ in range(0, 40, 8):
        for _ in range(8):
            ok, image = cap.read()
        outputs = model.run([conv.tensor(view, image, False)])
        a, b = some.decode(outputs), every.decode(outputs)
        keep = np.isin(b.class_ids, [labels.index(w) for w in wanted])
        assert a.class_ids.tolist() == b.class_ids[keep].tolist()
        assert np.array_equal(a.scores, b.scores[keep]) and np.array_equal(a.xyxy, b.xyxy[keep])
        found += len(a)
    assert found > 10  # people walk through every one of these frames
