"""The committed default models are what models/README.md says: full-integer INT8, per-tensor or
per-channel weights, in-graph sigmoid scores."""
import pytest

from app.modeltools.quantize import describe_model
from tests.conftest import BLAZEPOSE_MODEL, BLAZEPOSE_PERCHANNEL, DEFAULT_MODEL, PERCHANNEL_MODEL


@pytest.mark.parametrize("path,per_tensor", [(DEFAULT_MODEL, True), (PERCHANNEL_MODEL, False)])
def test_default_models_are_full_integer_uint8_io_with_only_artpec8_listed_ops(path, per_tensor):
    report = describe_model(path)
    assert report.float_ops == []
    # uint8 in and out (Axis's recipe): one QUANTIZE at the input, one per output, nothing else
    assert report.op_counts["QUANTIZE"] == 7 and "DEQUANTIZE" not in report.op_counts
    # no PAD, LEAKY_RELU, LOGISTIC or TRANSPOSE left from the NCHW original (models/README.md)
    assert set(report.op_counts) == {"ADD", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D",
                                     "MINIMUM", "MUL", "QUANTIZE", "RESIZE_BILINEAR"}
    assert report.weights_per_tensor() is per_tensor
    assert report.weights_per_channel() is not per_tensor
    (inp,) = report.inputs
    assert inp.type == "UINT8" and tuple(inp.shape) == (1, 416, 416, 3) and inp.scales == (1.0,)
    cls = [o for o in report.outputs if o.name.startswith("cls_")]
    assert len(cls) == 3 and all(o.type == "UINT8" for o in report.outputs)
    for o in cls:  # class logits forced to [-6, 4]
        assert o.scales == pytest.approx((10 / 255,)) and o.zero_points == (153,)


@pytest.mark.parametrize("path,per_tensor", [(BLAZEPOSE_MODEL, True), (BLAZEPOSE_PERCHANNEL, False)])
def test_blazepose_models_are_full_integer_with_stated_granularity(path, per_tensor):
    report = describe_model(path)
    assert report.float_ops == []
    assert "QUANTIZE" not in report.op_counts and "DEQUANTIZE" not in report.op_counts
    assert report.op_counts.get("LOGISTIC") == 1  # the sigmoid lives in the graph
    assert report.op_counts["CONV_2D"] == 45 and report.op_counts["DEPTHWISE_CONV_2D"] == 28
    assert report.weights_per_tensor() is per_tensor
    assert report.weights_per_channel() is not per_tensor
    (inp,) = report.inputs
    assert inp.type == "INT8" and tuple(inp.shape) == (1, 224, 224, 3)
    scores = next(o for o in report.outputs if tuple(o.shape) == (1, 2254, 1))
    assert scores.scales == pytest.approx((1 / 256,)) and scores.zero_points == (-128,)
