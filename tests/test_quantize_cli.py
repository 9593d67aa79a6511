"""`vigil quantize`: float model + calibration folder -> INT8, compared with float, then checked."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from app.backends.tflite import TFLiteModel
from app.modeltools import dlpu_check
from app.modeltools import flatbuffer as fb
from app.modeltools import graph_edits as edits
from tests.conftest import BLAZEPOSE_MODEL, DEFAULT_MODEL, FIXTURE_MODELS, SAMPLE_CLIP, run_vigil

FLOAT_MODEL = FIXTURE_MODELS / "tiny_float.tflite"


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory):
    """105 small frames of the sample clip (Axis asks for about 100 calibration images)."""
    d = tmp_path_factory.mktemp("calib")
    cap = cv2.VideoCapture(str(SAMPLE_CLIP))
    for i in range(105):
        ok, frame = cap.read()
        assert ok
        cv2.imwrite(str(d / f"{i:03d}.png"), cv2.resize(frame, (64, 48), interpolation=cv2.INTER_AREA))
    cap.release()
    return d


def test_quantize_writes_full_integer_model_reports_agreement_and_checks_it(calib_dir, tmp_path):
    out = tmp_path / "tiny_int8.tflite"
    r = run_vigil("quantize", str(FLOAT_MODEL), "--calib", str(calib_dir), "--granularity", "per-tensor", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "calibrating on 95 images, comparing on 10 held out" in r.stderr
    m = re.search(r"\((\d+\.\d+) % of its range", r.stderr)
    assert m and float(m.group(1)) < 10  # INT8 close to float on images it was not calibrated on
    assert "SQNR" in r.stderr and "weights per-tensor" in r.stderr
    assert r.stdout.splitlines()[-1].startswith("summary: ARTPEC-8:")
    report = dlpu_check.check_model(out, "artpec8")
    assert not any(f.rule == "G-01" for f in report.findings)  # no float ops left
    assert not any(f.rule == "Q-A8" for f in report.findings)  # per-tensor weights


def test_io_is_uint8_as_axis_makes_it_unless_int8_is_asked_for(calib_dir, tmp_path):
    outs = {}
    for io in ("uint8", "int8"):
        outs[io] = tmp_path / f"tiny_{io}.tflite"
        r = run_vigil("quantize", str(FLOAT_MODEL), "--calib", str(calib_dir), "--io", io, "-o", str(outs[io]))
        assert r.returncode == 0, r.stderr
    u8, i8 = TFLiteModel(outs["uint8"], 1), TFLiteModel(outs["int8"], 1)
    assert {s.dtype for s in u8.inputs + u8.outputs} == {np.dtype(np.uint8)}
    assert {s.dtype for s in i8.inputs + i8.outputs} == {np.dtype(np.int8)}
    assert [s.scale for s in u8.inputs] == [s.scale for s in i8.inputs]
    assert [s.zero_point for s in u8.inputs] == [s.zero_point + 128 for s in i8.inputs]
    # the same network: uint8 in = int8 in + 128, and the outputs shift the same way
    x = np.random.default_rng(0).integers(-128, 128, i8.inputs[0].shape).astype(np.int8)
    for a, b in zip(i8.run([x]), u8.run([(x.astype(np.int16) + 128).astype(np.uint8)])):
        np.testing.assert_array_equal(a.astype(np.int16) + 128, b.astype(np.int16))


def pad_then_max_pool_model(pad_value: float) -> bytes:
    """A float model: PADV2 by 1 with pad_value, then a 3x3 stride-2 VALID max pool (4x4 -> 2x2)."""
    def tensor(name, shape, ttype, buffer):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, ttype, buffer
        return t

    def buffer(data: bytes | None):
        b = schema.BufferT()
        b.data = None if data is None else np.frombuffer(data, np.uint8)
        return b

    T = schema.TensorType
    m = schema.ModelT()
    m.version = 3
    m.buffers = [buffer(None), buffer(np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32).tobytes()),
                 buffer(np.array([pad_value], np.float32).tobytes())]
    sg = schema.SubGraphT()
    sg.tensors = [tensor("x", [1, 4, 4, 1], T.FLOAT32, 0), tensor("pads", [4, 2], T.INT32, 1),
                  tensor("value", [1], T.FLOAT32, 2), tensor("padded", [1, 6, 6, 1], T.FLOAT32, 0),
                  tensor("y", [1, 2, 2, 1], T.FLOAT32, 0)]
    sg.inputs, sg.outputs = [0], [4]
    pad, pool = schema.OperatorT(), schema.OperatorT()
    pad.opcodeIndex, pad.inputs, pad.outputs = 0, [0, 1, 2], [3]
    pad.builtinOptionsType, pad.builtinOptions = schema.BuiltinOptions.PadV2Options, schema.PadV2OptionsT()
    options = schema.Pool2DOptionsT()
    options.padding, options.strideW, options.strideH = schema.Padding.VALID, 2, 2
    options.filterWidth = options.filterHeight = 3
    pool.opcodeIndex, pool.inputs, pool.outputs = 1, [3], [4]
    pool.builtinOptionsType, pool.builtinOptions = schema.BuiltinOptions.Pool2DOptions, options
    sg.operators = [pad, pool]
    m.subgraphs = [sg]
    codes = []
    for code in (schema.BuiltinOperator.PADV2, schema.BuiltinOperator.MAX_POOL_2D):
        c = schema.OperatorCodeT()
        c.builtinCode = c.deprecatedBuiltinCode = code
        c.version = 1
        codes.append(c)
    m.operatorCodes = codes
    return fb.serialize(m)


def test_minus_inf_max_pool_padding_is_made_finite_before_calibration(tmp_path):
    src = tmp_path / "pool.tflite"
    src.write_bytes(pad_then_max_pool_model(-np.inf))
    model = fb.load_model(src)
    assert edits.finite_max_pool_pads(model) == ["value"]
    fixed = tmp_path / "fixed.tflite"
    fixed.write_bytes(fb.serialize(model))
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1) + 1  # positive, as after a ReLU
    run = lambda path, x: TFLiteModel(path, 1).run([x])[0]  # noqa: E731
    np.testing.assert_array_equal(run(src, x), run(fixed, x))  # exact on non-negative input
    assert np.isfinite(run(fixed, -x)).all()  # and nothing is -inf any more
    # a finite pad value is the user's choice and is left alone
    assert edits.finite_max_pool_pads(fb.load_model(pad_then_max_pool_model(-1.0))) == []


def test_per_channel_granularity_gives_per_channel_weights_checked_for_artpec9(calib_dir, tmp_path):
    out = tmp_path / "pc.tflite"
    r = run_vigil("quantize", str(FLOAT_MODEL), "--calib", str(calib_dir), "--granularity", "per-channel", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "weights per-channel" in r.stderr and "summary: ARTPEC-9" in r.stdout
    assert any(f.rule == "Q-A8" for f in dlpu_check.check_model(out, "artpec8").findings)


def test_too_few_calibration_images_is_a_config_error(tmp_path):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.zeros((8, 8, 3), np.uint8))
    r = run_vigil("quantize", str(FLOAT_MODEL), "--calib", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"vigil: config error: --calib: 5 images in {tmp_path}; calibration needs at least 100 "
        "(Axis: about 100 representative images)"
    )


def test_an_output_that_cannot_be_written_is_one_config_error_line_before_calibrating(calib_dir):
    # was a FileNotFoundError traceback (exit 1) after the whole calibration
    r = run_vigil("quantize", str(FLOAT_MODEL), "--calib", str(calib_dir), "-o", "/proc/vigil-none/q.tflite")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == ["vigil: config error: --output: cannot write /proc/vigil-none/q.tflite: "
                                             "No such file or directory"]


def test_a_full_disk_for_the_output_is_one_config_error_line(calib_dir):
    r = run_vigil("quantize", str(FLOAT_MODEL), "--calib", str(calib_dir), "-o", "/dev/full")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "vigil: config error: cannot write model /dev/full: No space left on device"


def test_an_output_that_is_the_float_model_is_refused_and_the_model_kept(calib_dir, tmp_path):
    model = tmp_path / "float.tflite"
    model.write_bytes(FLOAT_MODEL.read_bytes())
    r = run_vigil("quantize", str(model), "--calib", str(calib_dir), "-o", str(tmp_path / "." / "float.tflite"))
    assert r.returncode == 2 and "is the float model itself" in r.stderr.strip().splitlines()[-1], r.stderr
    assert model.read_bytes() == FLOAT_MODEL.read_bytes()


def test_already_quantised_model_is_refused(calib_dir):
    r = run_vigil("quantize", str(BLAZEPOSE_MODEL), "--calib", str(calib_dir))
    assert r.returncode == 3 and "input is already INT8; quantize takes a float model" in r.stderr
    r = run_vigil("quantize", str(DEFAULT_MODEL), "--calib", str(calib_dir))
    assert r.returncode == 3 and "input is already UINT8; quantize takes a float model" in r.stderr


def test_quantize_input_range_accepts_a_negative_low_as_its_help_shows(tmp_path):
    empty = tmp_path / "calib"
    empty.mkdir()
    for form in (["--input-range", "-1,1"], ["--input-range=-1,1"]):
        r = run_vigil("quantize", str(FLOAT_MODEL), "--calib", str(empty), *form)
        # the range was parsed: the run goes on to count the calibration images
        assert r.returncode == 2 and "--calib: 0 images" in r.stderr, r.stderr
    r = run_vigil("quantize", str(FLOAT_MODEL), "--calib", str(empty), "--input-range", "-1,x")
    assert "--input-range expects LOW,HIGH" in r.stderr, r.stderr
