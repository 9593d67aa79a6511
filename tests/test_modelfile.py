"""app.modelfile: one reader of .tflite files whose tensor description every consumer shares."""
import numpy as np
import pytest

from app.backends import load
from app.errors import ModelError
from app.modelfile import NotAModel, TensorSpec, read_model
from app.modeltools.quantize import describe_model
from tests.conftest import BLAZEPOSE_MODEL, DEFAULT_MODEL, FIXTURE_MODELS, PERCHANNEL_MODEL

MODELS = [DEFAULT_MODEL, PERCHANNEL_MODEL, BLAZEPOSE_MODEL, *sorted(FIXTURE_MODELS.glob("*.tflite"))]


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_file_reader_and_loaded_interpreter_describe_the_same_io_tensors(path):
    model = read_model(path)
    interpreter = load(path, "tflite")
    assert model.io_specs() == (interpreter.inputs, interpreter.outputs)


def test_backend_checker_and_quantiser_see_one_description_of_the_default_model():
    model = read_model(DEFAULT_MODEL)
    report = describe_model(DEFAULT_MODEL)
    assert report.inputs == model.inputs and report.outputs == model.outputs
    (inp,) = model.inputs
    assert (inp.name, inp.shape, inp.dtype, inp.type) == ("image", (1, 416, 416, 3), np.dtype(np.uint8), "UINT8")
    assert inp.scale == 1.0 and inp.scales == (1.0,) and inp.zero_points == (0,)
    # the first op's weights: per-tensor, one scale; the per-channel file has one per output channel
    conv = next(op for op in model.operators if op.name == "CONV_2D")
    assert len(conv.weights.scales) == 1 and conv.weights.const
    pc = next(op for op in read_model(PERCHANNEL_MODEL).operators if op.name == "CONV_2D")
    assert len(pc.weights.scales) == pc.weights.shape[0] > 1 and pc.weights.scale == 0.0


def test_spec_built_by_hand_fills_type_and_the_scale_list():
    spec = TensorSpec("x", (1, 4), np.dtype(np.int8), 0.5, -3)
    assert spec.type == "INT8" and spec.scales == (0.5,) and spec.zero_points == (-3,)
    np.testing.assert_array_equal(spec.dequantize(spec.quantize(np.array([1.0, -1.0]))), [1.0, -1.0])
    assert TensorSpec("y", (2,), np.dtype(np.float32)).scales == ()


def test_not_a_model_is_a_model_error_naming_the_file(tmp_path):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(NotAModel, match="no TFL3 identifier"):
        read_model(bad)
    with pytest.raises(ModelError, match="cannot read"):
        read_model(tmp_path / "missing.tflite")
