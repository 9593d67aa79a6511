"""The x86 TFLite backend: tensor specs, typed inputs only, and the tflite-runtime fallback."""
import builtins
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from app.backends import load
from app.backends import tflite as tflite_backend
from app.errors import ConfigError, ModelError
from tests.conftest import BLAZEPOSE_MODEL, DEFAULT_MODEL, FIXTURE_MODELS, ROOT


def test_specs_of_the_default_model():
    m = load(DEFAULT_MODEL)
    (inp,) = m.inputs
    # uint8 BGR pixels as they are: scale 1, zero point 0 (the normalisation is inside the model)
    assert (inp.name, inp.shape, inp.dtype, inp.zero_point, inp.scale) == ("image", (1, 416, 416, 3), np.uint8, 0, 1.0)
    assert sorted((o.name, o.shape, o.dtype) for o in m.outputs) == [
        (f"{kind}_s{s}", (1, 416 // s, 416 // s, c), np.uint8)
        for kind, c in (("box", 44), ("cls", 80)) for s in (16, 32, 8)
    ]
    assert m.runtime == "ai-edge-litert"


def test_specs_of_the_blazepose_model():
    m = load(BLAZEPOSE_MODEL)
    (inp,) = m.inputs
    assert (inp.name, inp.shape, inp.dtype, inp.zero_point) == ("input_1", (1, 224, 224, 3), np.int8, -1)
    assert inp.scale == pytest.approx(2 / 255) and inp.quantized
    assert sorted(o.shape for o in m.outputs) == [(1, 2254, 1), (1, 2254, 12)]


def test_float_input_to_integer_model_is_refused():
    with pytest.raises(ModelError, match="expects uint8, got float32"):
        load(DEFAULT_MODEL).run([np.zeros((1, 416, 416, 3), np.float32)])
    with pytest.raises(ModelError, match="expects int8, got float32"):
        load(BLAZEPOSE_MODEL).run([np.zeros((1, 224, 224, 3), np.float32)])


def test_outputs_are_copies_not_views_of_interpreter_memory():
    m = load(FIXTURE_MODELS / "yolov5_int8.tflite")
    x = np.zeros(m.inputs[0].shape, np.uint8)
    first = m.run([x])[0]
    snapshot = first.copy()
    m.run([np.full(m.inputs[0].shape, 255, np.uint8)])
    np.testing.assert_array_equal(first, snapshot)


def test_no_runtime_installed_is_a_clear_model_error(monkeypatch):
    real_import = builtins.__import__

    def no_tflite(name, *args, **kwargs):
        if name.startswith(("ai_edge_litert", "tflite_runtime")):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tflite)
    with pytest.raises(ModelError, match="no TFLite runtime installed: pip install ai-edge-litert"):
        tflite_backend._interpreter_module()


def test_device_other_than_cpu_is_refused():
    with pytest.raises(ConfigError, match=r"^model\.backend\.device: Input should be 'cpu' \(got 'dlpu'\)$"):
        load(DEFAULT_MODEL, device="dlpu")


FALLBACK_VENV = ROOT / ".cache" / "venv-tflite-runtime"
FALLBACK_SCRIPT = """
import json, sys
import numpy as np
from app.backends import load
m = load(sys.argv[1])
x = np.load(sys.argv[2])
print(json.dumps({"runtime": m.runtime, "numpy": np.__version__, "out": [o.tolist() for o in m.run([x])]}))
"""


@pytest.fixture(scope="module")
def tflite_runtime_python():
    """A venv with only tflite-runtime 2.14, numpy<2 and pydantic (the backend's config; ai-edge-litert
    absent), cached in .cache/."""
    py = FALLBACK_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(FALLBACK_VENV)], check=True)
    probe = subprocess.run([str(py), "-c", "import tflite_runtime, numpy, pydantic"], capture_output=True)
    if probe.returncode != 0:
        proc = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "tflite-runtime==2.14.0", "numpy<2", "pydantic"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"could not install tflite-runtime for the fallback test:\n{proc.stderr[-2000:]}"
    return py


def test_tflite_runtime_fallback_gives_the_same_outputs(tflite_runtime_python, tmp_path):
    model = FIXTURE_MODELS / "yolov8_int8.tflite"
    x = np.random.default_rng(0).integers(0, 255, (1, 96, 96, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(tflite_runtime_python), "-c", FALLBACK_SCRIPT, str(model), str(tmp_path / "x.npy")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["runtime"] == "tflite-runtime" and result["numpy"].startswith("1.")
    ours = load(model).run([x])
    np.testing.assert_array_equal(np.array(result["out"][0], np.uint8), ours[0])
