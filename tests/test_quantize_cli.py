"""`vigil quantize`: float model + calibration folder -> INT8, compared with float, then checked."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from app.modeltools import dlpu
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
    report = dlpu.check_model(out, "artpec8")
    assert not any(f.rule == "G-01" for f in report.findings)  # no float ops left
    assert not any(f.rule == "Q-A8" for f in report.findings)  # per-tensor weights


def test_per_channel_granularity_gives_per_channel_weights_checked_for_artpec9(calib_dir, tmp_path):
    out = tmp_path / "pc.tflite"
    r = run_vigil("quantize", str(FLOAT_MODEL), "--calib", str(calib_dir), "--granularity", "per-channel", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "weights per-channel" in r.stderr and "summary: ARTPEC-9" in r.stdout
    assert any(f.rule == "Q-A8" for f in dlpu.check_model(out, "artpec8").findings)


def test_too_few_calibration_images_is_a_config_error(tmp_path):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.zeros((8, 8, 3), np.uint8))
    r = run_vigil("quantize", str(FLOAT_MODEL), "--calib", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"vigil: config error: --calib: 5 images in {tmp_path}; calibration needs at least 100 "
        "(Axis: about 100 representative images)"
    )


def test_already_quantised_model_is_refused(calib_dir):
    r = run_vigil("quantize", str(BLAZEPOSE_MODEL), "--calib", str(calib_dir))
    assert r.returncode == 3 and "input is already INT8; quantize takes a float model" in r.stderr
    r = run_vigil("quantize", str(DEFAULT_MODEL), "--calib", str(calib_dir))
    assert r.returncode == 3 and "input is already UINT8; quantize takes a float model" in r.stderr
