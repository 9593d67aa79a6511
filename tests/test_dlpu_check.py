"""`vigil check-model`: one crafted model per DLPU rule, exit codes, JSON, real models."""
from __future__ import annotations

import json

import numpy as np
import pytest

from app.modeltools.dlpu_check import RULES, check_model
from tests.conftest import (
    BLAZEPOSE_MODEL, BLAZEPOSE_PERCHANNEL, DEFAULT_MODEL, FIXTURE_MODELS, PERCHANNEL_MODEL, run_vigil,
)
from tests.dlpu_models import Graph, conv, conv_model, single_op


def rules_of(report, level=None, op=None):
    return {f.rule for f in report.findings if (level is None or f.level == level) and (op is None or f.op == op)}


# -- builders for the one-rule models ------------------------------------------------------------
def float_conv(p):
    return conv_model(p, in_type="FLOAT32")


def hybrid_conv(p):
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "FLOAT32")
    y = conv(g, x, 12, type="FLOAT32")  # int8 weights, float activations
    return g.save(p, [x], [y])


def int16_conv(p):
    return conv_model(p, in_type="INT16")


def custom_op(p):
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "UINT8", 1 / 255)
    y = conv(g, x, 12, type="UINT8", act=1)
    z = g.tensor((1, 10, 4), "FLOAT32")
    g.op("CUSTOM", [y], [z], custom="TFLite_Detection_PostProcess")
    return g.save(p, [x], [z])


def float_island(p):
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "UINT8", 1 / 255)
    y = conv(g, x, 12, type="UINT8", act=1)
    f = g.tensor((1, 32, 32, 12), "FLOAT32")
    g.op("DEQUANTIZE", [y], [f])
    f2 = g.tensor((1, 32, 32, 12), "FLOAT32")
    g.op("RELU", [f], [f2])
    q = g.tensor((1, 32, 32, 12), "UINT8", 0.05)
    g.op("QUANTIZE", [f2], [q])
    return g.save(p, [x], [q])


def float_io(p):
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "FLOAT32")
    xq = g.tensor((1, 32, 32, 3), "UINT8", 1 / 255)
    g.op("QUANTIZE", [x], [xq])
    y = conv(g, xq, 12, type="UINT8", act=1)
    return g.save(p, [x], [y])


def per_channel_conv(p):
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "UINT8", 1 / 255)
    y = conv(g, x, 12, type="UINT8", act=1, w_scale=[0.01 + i / 1000 for i in range(12)])
    return g.save(p, [x], [y])


def edgetpu_compiled(p):
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "UINT8", 1 / 255)
    y = g.tensor((1, 32, 32, 12), "UINT8", 0.05)
    g.op("CUSTOM", [x], [y], custom="edgetpu-custom-op")
    z = g.tensor((1, 32, 32, 12), "UINT8", 0.05)
    g.op("SOFTMAX", [y], [z], beta=1.0)
    return g.save(p, [x], [z])


def depthwise(p, multiplier=1, k=(3, 3)):
    g = Graph()
    x = g.tensor((1, 32, 32, 16), "UINT8", 0.05)
    w = g.const((1, *k, 16 * multiplier), "INT8", 0.01)
    b = g.const((16 * multiplier,), "INT32", None, 0)
    y = g.tensor((1, 32, 32, 16 * multiplier), "UINT8", 0.05)
    g.op("DEPTHWISE_CONV_2D", [x, w, b], [y], padding=0, strideH=1, strideW=1, depthMultiplier=multiplier,
         fusedActivationFunction=3, dilationHFactor=1, dilationWFactor=1)
    return g.save(p, [x], [y])


def conv_then_pool(p):
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "UINT8", 1 / 255)
    y = conv(g, x, 12, type="UINT8", act=1)
    z = g.tensor((1, 16, 16, 12), "UINT8", 0.05)
    g.op("MAX_POOL_2D", [y], [z], padding=1, strideH=2, strideW=2, filterHeight=2, filterWidth=2)
    return g.save(p, [x], [z])


def conv_then_activation(p, act="HARD_SWISH"):
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "UINT8", 1 / 255)
    y = conv(g, x, 12, type="UINT8", act=0)
    z = g.tensor((1, 32, 32, 12), "UINT8", 0.05)
    g.op(act, [y], [z])
    return g.save(p, [x], [z])


def recipe_io(p, io="UINT8", scale_out=None):
    """Axis's uint8 recipe in miniature: QUANTIZE uint8->int8 at the input, int8 conv, QUANTIZE int8->uint8 out."""
    g = Graph()
    x = g.tensor((1, 32, 32, 3), io, 1 / 255, zp=0 if io == "UINT8" else -128)
    xq = g.tensor((1, 32, 32, 3), "INT8", 1 / 255 if scale_out is None else scale_out, zp=-128)
    g.op("QUANTIZE", [x], [xq])
    y = conv(g, xq, 12, type="INT8", act=1)
    yq = g.tensor((1, 32, 32, 12), io, 0.05, zp=128 if io == "UINT8" else 0)
    g.op("QUANTIZE", [y], [yq])
    return g.save(p, [x], [yq])


def inner_requantize(p):
    """A uint8->int8 QUANTIZE between two convolutions: not at the model's edge."""
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "UINT8", 1 / 255)
    y = conv(g, x, 12, type="UINT8", act=1)
    yq = g.tensor((1, 32, 32, 12), "INT8", 0.05, zp=-128)
    g.op("QUANTIZE", [y], [yq])
    z = conv(g, yq, 12, type="INT8", act=1)
    return g.save(p, [x], [z])


def two_input(p, name, a_shape, b_shape, out_shape, a_scale=0.05, b_scale=0.05, out_scale=0.05, **options):
    g = Graph()
    a = g.tensor(a_shape, "UINT8", a_scale)
    b = g.tensor(b_shape, "UINT8", b_scale)
    y = g.tensor(out_shape, "UINT8", out_scale)
    g.op(name, [a, b], [y], **options)
    return g.save(p, [a, b], [y])


def mul_const(p, const_shape):
    return single_op(p, "MUL", (1, 8, 8, 16), (1, 8, 8, 16),
                     extra_inputs=[lambda g: g.const(const_shape, "UINT8", 0.01)])


def pad(p, pads):
    return single_op(p, "PAD", (1, 8, 8, 16), (1, 8 + sum(pads[1]), 8 + sum(pads[2]), 16 + sum(pads[3])),
                     extra_inputs=[lambda g: g.ints(pads)])


def resize(p, out_hw, name="RESIZE_BILINEAR", **options):
    return single_op(p, name, (1, 8, 8, 16), (1, *out_hw, 16),
                     extra_inputs=[lambda g: g.ints(list(out_hw))], **options)


def split(p, sizes):
    g = Graph()
    axis = g.ints([3])
    x = g.tensor((1, 8, 8, sum(sizes)), "UINT8", 0.05)
    outs = [g.tensor((1, 8, 8, s), "UINT8", 0.05) for s in sizes]
    g.op("SPLIT", [axis, x], outs, numSplits=len(sizes))
    return g.save(p, [x], outs)


def transpose_conv(p, stride):
    g = Graph()
    x = g.tensor((1, 8, 8, 16), "UINT8", 0.05)
    shape = g.ints([1, 8 * stride, 8 * stride, 16])
    w = g.const((16, 3, 3, 16), "INT8", 0.01)
    y = g.tensor((1, 8 * stride, 8 * stride, 16), "UINT8", 0.05)
    g.op("TRANSPOSE_CONV", [shape, w, x], [y], padding=0, strideH=stride, strideW=stride)
    return g.save(p, [x], [y])


def fully_connected(p, w_scale):
    g = Graph()
    x = g.tensor((1, 64), "UINT8", 0.05)
    w = g.const((16, 64), "INT8", w_scale)
    b = g.const((16,), "INT32", None, 0)
    y = g.tensor((1, 16), "UINT8", 1e-6)
    g.op("FULLY_CONNECTED", [x, w, b], [y])
    return g.save(p, [x], [y])


def reshape_rank5(p):
    return single_op(p, "RESHAPE", (1, 8, 8, 16), (1, 2, 4, 8, 16), extra_inputs=[lambda g: g.ints([1, 2, 4, 8, 16])])


# (id, builder, chip, rule, level, index of the op the rule must name or None for model-level)
CASES = [
    ("G-01 float model", float_conv, "artpec8", "G-01", "cpu", 0),
    ("G-01 hybrid", hybrid_conv, "artpec8", "G-01", "cpu", 0),
    ("G-01 int16", int16_conv, "artpec8", "G-01", "cpu", 0),
    ("G-03 custom op", custom_op, "artpec8", "G-03", "cpu", 1),
    ("G-04 float island", float_island, "artpec9", "G-04", "cpu", 1),
    ("G-05 float input", float_io, "artpec8", "G-05", "cpu", 0),
    ("G-05 int8 io", lambda p: conv_model(p, in_type="INT8"), "artpec8", "G-05", "warn", None),
    ("Q-A8 per-channel", per_channel_conv, "artpec8", "Q-A8", "warn", 0),
    ("Q-A7 per-tensor", conv_model, "artpec7", "Q-A7", "tip", None),
    ("Q-A9 per-channel", per_channel_conv, "artpec9", "Q-A9", "info", None),
    ("A7-02 not compiled", conv_model, "artpec7", "A7-02", "cpu", 0),
    ("A7-03 left out", edgetpu_compiled, "artpec7", "A7-03", "cpu", 1),
    ("A8-04 depthwise", depthwise, "artpec8", "A8-04", "tip", 0),
    ("A8-05 5x5 kernel", lambda p: conv_model(p, k=(5, 5)), "artpec8", "A8-05", "tip", 0),
    ("A8-06 conv+pool", conv_then_pool, "artpec8", "A8-06", "tip", 1),
    ("A8-07 16 filters", lambda p: conv_model(p, out_ch=16), "artpec8", "A8-07", "tip", 0),
    ("A8-08 unfused activation", conv_then_activation, "artpec8", "A8-08", "tip", 0),
    ("A8-10 SUB", lambda p: two_input(p, "SUB", (1, 8, 8, 16), (1, 8, 8, 16), (1, 8, 8, 16)), "artpec8", "A8-10",
     "unlisted", 0),
    ("A8-10 LOGISTIC", lambda p: single_op(p, "LOGISTIC", (1, 8), (1, 8), out_scale=1 / 256), "artpec8", "A8-10",
     "unlisted", 0),
    ("A8-IO uint8 input", lambda p: recipe_io(p, "UINT8"), "artpec8", "A8-IO", "io", 0),
    ("A9-G01 rank 5", reshape_rank5, "artpec9", "A9-G01", "cpu", 0),
    ("A9-G02 batch 2", lambda p: single_op(p, "RELU", (2, 8, 8, 16), (2, 8, 8, 16)),
     "artpec9", "A9-G02", "cpu", 0),
    ("A9-G05 ReLU not ReLU6", lambda p: conv_model(p, out_ch=16), "artpec9", "A9-G05", "tip", 0),
    ("A9-G06 explicit pad", lambda p: pad(p, [[0, 0], [1, 1], [1, 1], [0, 0]]), "artpec9", "A9-G06", "tip", 0),
    ("A9-G07 12 filters", conv_model, "artpec9", "A9-G07", "tip", 0),
    ("A9-G09 softmax", lambda p: single_op(p, "SOFTMAX", (1, 8), (1, 8), out_scale=1 / 256, beta=1.0),
     "artpec9", "A9-G09", "cpu", 0),
    ("A9-AVG 2x2", lambda p: single_op(p, "AVERAGE_POOL_2D", (1, 8, 8, 16), (1, 4, 4, 16), padding=1, strideH=2,
                                       strideW=2, filterHeight=2, filterWidth=2), "artpec9", "A9-AVG", "cpu", 0),
    ("A9-CAT-1 scale", lambda p: two_input(p, "CONCATENATION", (1, 8, 8, 16), (1, 8, 8, 16), (1, 8, 8, 32),
                                           a_scale=1.0, out_scale=0.001, axis=3), "artpec9", "A9-CAT-1", "cpu", 0),
    ("A9-CAT-2 channels", lambda p: two_input(p, "CONCATENATION", (1, 8, 8, 8), (1, 8, 8, 8), (1, 8, 8, 16), axis=-1),
     "artpec9", "A9-CAT-2", "cpu", 0),
    ("A9-KERNEL 4x4", lambda p: conv_model(p, k=(4, 4), out_ch=16), "artpec9", "A9-KERNEL", "cpu", 0),
    ("A9-STRIDE 3", lambda p: conv_model(p, stride=(3, 3), out_ch=16, hw=(48, 48)), "artpec9", "A9-STRIDE", "cpu", 0),
    ("A9-STRIDE 9x9 s2", lambda p: conv_model(p, k=(9, 9), stride=(2, 2), out_ch=16), "artpec9", "A9-STRIDE", "cpu", 0),
    ("A9-SCALE", lambda p: conv_model(p, out_ch=16, w_scale=10.0, out_scale=1e-7), "artpec9", "A9-SCALE", "cpu", 0),
    ("A9-SCALE fc", lambda p: fully_connected(p, 10.0), "artpec9", "A9-SCALE", "cpu", 0),
    ("A9-D2S block 3", lambda p: single_op(p, "DEPTH_TO_SPACE", (1, 8, 8, 18), (1, 24, 24, 2), blockSize=3),
     "artpec9", "A9-D2S", "cpu", 0),
    ("A9-DW-6 multiplier 2", lambda p: depthwise(p, multiplier=2), "artpec9", "A9-DW-6", "cpu", 0),
    ("A9-LRELU-1 alpha", lambda p: single_op(p, "LEAKY_RELU", (1, 8, 8, 16), (1, 8, 8, 16), alpha=1.5),
     "artpec9", "A9-LRELU-1", "cpu", 0),
    ("A9-MAX odd VALID", lambda p: single_op(p, "MAX_POOL_2D", (1, 9, 9, 16), (1, 4, 4, 16), padding=1, strideH=2,
                                             strideW=2, filterHeight=2, filterWidth=2), "artpec9", "A9-MAX", "cpu", 0),
    ("A9-MEAN 5x5", lambda p: single_op(p, "MEAN", (1, 5, 5, 16), (1, 1, 1, 16), keepDims=True,
                                        extra_inputs=[lambda g: g.ints([1, 2])]), "artpec9", "A9-MEAN", "cpu", 0),
    ("A9-MUL variable", lambda p: two_input(p, "MUL", (1, 8, 8, 16), (1, 8, 8, 16), (1, 8, 8, 16)),
     "artpec9", "A9-MUL", "cpu", 0),
    ("A9-PAD channels", lambda p: pad(p, [[0, 0], [1, 1], [1, 1], [0, 16]]), "artpec9", "A9-PAD", "cpu", 0),
    ("A9-PAD 8", lambda p: pad(p, [[0, 0], [8, 8], [0, 0], [0, 0]]), "artpec9", "A9-PAD", "cpu", 0),
    ("A9-REQ-1", lambda p: single_op(p, "QUANTIZE", (1, 8, 8, 16), (1, 8, 8, 16), in_scale=1.0, out_scale=0.001),
     "artpec9", "A9-REQ-1", "cpu", 0),
    ("A9-RES-1 3x", lambda p: resize(p, (24, 24)), "artpec9", "A9-RES-1", "cpu", 0),
    ("A9-RES-2 parity", lambda p: resize(p, (16, 15), name="RESIZE_NEAREST_NEIGHBOR"), "artpec9", "A9-RES-2", "warn", 0),
    ("A9-RES-3 align corners", lambda p: resize(p, (16, 16), alignCorners=True), "artpec9", "A9-RES-3", "warn", 0),
    ("A9-SIG-1", lambda p: single_op(p, "LOGISTIC", (1, 8), (1, 8), out_scale=1 / 100), "artpec9", "A9-SIG-1", "cpu", 0),
    ("A9-SPLIT-1", lambda p: split(p, [8, 8]), "artpec9", "A9-SPLIT-1", "cpu", 0),
    ("A9-TANH-1", lambda p: single_op(p, "TANH", (1, 8), (1, 8), out_scale=1 / 128, out_zp=0), "artpec9", "A9-TANH-1", "cpu", 0),
    ("A9-TCONV stride 1", lambda p: transpose_conv(p, 1), "artpec9", "A9-TCONV", "cpu", 0),
    ("ACAP no chip id", conv_model, "artpec9", "ACAP", "info", None),
    ("G-CF WHILE", lambda p: while_loop(p), "cv25", "G-CF", "cpu", 0),
    ("G-INT32 shape concat", lambda p: shape_concat(p), "artpec9", "G-INT32", "cpu", 0),
    ("A9-ADD scalar", lambda p: scalar_add(p, 1.0, 0), "artpec9", "A9-ADD", "cpu", 0),
    ("A9-G04 depth 40000", lambda p: single_op(p, "RELU", (1, 8, 8, 40000), (1, 8, 8, 40000)),
     "artpec9", "A9-G04", "cpu", 0),
    ("A9-G04 depth 8192", lambda p: single_op(p, "RELU", (1, 8, 8, 8192), (1, 8, 8, 8192)),
     "artpec9", "A9-G04", "warn", 0),
    ("CV-02 not x32", lambda p: conv_model(p, hw=(40, 40)), "cv25", "CV-02", "warn", None),
    ("CV-03 quantised", conv_model, "cv25", "CV-03", "info", None),
    ("CV-04 conversion", float_conv, "cv25", "CV-04", "info", None),
    ("T-03 not x8", lambda p: conv_model(p, hw=(30, 30)), "artpec8", "T-03", "warn", None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_rule_fires_on_its_crafted_model(case, tmp_path):
    name, build, chip, rule, level, op = case
    report = check_model(build(tmp_path / "m.tflite"), chip)
    assert rule in rules_of(report, level, op), report.table()
    if level in ("cpu", "unlisted", "io"):
        assert report.ops[op].where == {"cpu": "CPU", "unlisted": "CPU?", "io": "I/O"}[level]
    assert rule in RULES


def test_every_rule_has_a_crafted_model():
    covered = {c[3] for c in CASES}
    assert set(RULES) - covered == set()


# configurations that satisfy a rule must not trip it (the checks are not just "always complain")
PASSES = [
    ("A9-AVG 3x3 s1 SAME", lambda p: single_op(p, "AVERAGE_POOL_2D", (1, 8, 8, 16), (1, 8, 8, 16), padding=0, strideH=1,
                                               strideW=1, filterHeight=3, filterWidth=3)),
    ("A9-AVG 7x7 mean", lambda p: single_op(p, "AVERAGE_POOL_2D", (1, 7, 7, 16), (1, 1, 1, 16), padding=1, strideH=1,
                                            strideW=1, filterHeight=7, filterWidth=7)),
    ("A9-MAX even VALID", lambda p: single_op(p, "MAX_POOL_2D", (1, 8, 8, 16), (1, 4, 4, 16), padding=1, strideH=2,
                                              strideW=2, filterHeight=2, filterWidth=2)),
    ("A9-MEAN 7x7", lambda p: single_op(p, "MEAN", (1, 7, 7, 16), (1, 1, 1, 16), keepDims=True,
                                        extra_inputs=[lambda g: g.ints([1, 2])])),
    ("A9-MUL 1x1x1xC", lambda p: mul_const(p, (1, 1, 1, 16))),
    ("A9-CAT 16+16", lambda p: two_input(p, "CONCATENATION", (1, 8, 8, 16), (1, 8, 8, 16), (1, 8, 8, 32), axis=3)),
    ("A9-SPLIT 16+16", lambda p: split(p, [16, 16])),
    ("A9-RES 2x", lambda p: resize(p, (16, 16))),
    ("A9-RES 2n-1", lambda p: resize(p, (15, 15))),
    ("A9-SIG 1/256", lambda p: single_op(p, "LOGISTIC", (1, 8), (1, 8), out_scale=1 / 256, out_zp=0)),
    ("A9-TANH 1/128", lambda p: single_op(p, "TANH", (1, 8), (1, 8), out_scale=1 / 128, out_zp=128)),
    ("A9-TCONV stride 2", lambda p: transpose_conv(p, 2)),
    ("A9-DW multiplier 1", depthwise),
    ("A9-CONV 9x9 s1", lambda p: conv_model(p, k=(9, 9), out_ch=16, act=3)),
]


@pytest.mark.parametrize("case", PASSES, ids=[c[0] for c in PASSES])
def test_supported_artpec9_configurations_stay_on_the_dlpu(case, tmp_path):
    report = check_model(case[1](tmp_path / "m.tflite"), "artpec9")
    assert all(o.where == "DLPU" for o in report.ops), report.table()
    assert report.exit_code == 0


def test_crafted_conv_model_is_a_valid_tflite_file(tmp_path):
    from app.backends import load

    m = load(conv_model(tmp_path / "m.tflite"), "tflite")
    out = m.run([np.full((1, 32, 32, 3), 200, np.uint8)])
    assert out[0].shape == (1, 32, 32, 12) and out[0].dtype == np.uint8


# -- exit codes, output --------------------------------------------------------------------------------
def test_exit_codes_zero_one_two(tmp_path):
    assert check_model(conv_model(tmp_path / "a.tflite"), "artpec8").exit_code == 0
    assert check_model(custom_op(tmp_path / "b.tflite"), "artpec8").exit_code == 1
    assert check_model(float_conv(tmp_path / "c.tflite"), "artpec8").exit_code == 2
    assert check_model(float_conv(tmp_path / "c.tflite"), "cpu").exit_code == 0


def test_op_missing_from_the_artpec8_list_is_likely_cpu_with_exit_3(tmp_path):
    # Axis's ARTPEC-8 table is "a more detailed table of specific supported operators", not a complete one
    sub = two_input(tmp_path / "s.tflite", "SUB", (1, 8, 8, 16), (1, 8, 8, 16), (1, 8, 8, 16))
    report = check_model(sub, "artpec8")
    assert [o.where for o in report.ops] == ["CPU?"] and report.exit_code == 3
    assert "likely CPU fallback" in report.summary() and report.as_dict()["counts"]["likely_cpu"] == 1
    # a rule that puts an op on the CPU outranks "not listed": exit 1
    g = Graph()
    a, b = g.tensor((1, 8, 8, 16), "UINT8", 0.05), g.tensor((1, 8, 8, 16), "UINT8", 0.05)
    y = g.tensor((1, 8, 8, 16), "UINT8", 0.05)
    g.op("SUB", [a, b], [y])
    z = g.tensor((1, 8, 8, 16), "FLOAT32")
    g.op("CUSTOM", [y], [z], custom="MyPostProcess")
    report = check_model(g.save(tmp_path / "c.tflite", [a, b], [z]), "artpec8")
    assert [o.where for o in report.ops] == ["CPU?", "CPU"] and report.exit_code == 1
    # on ARTPEC-9 the table is the list of what runs (A9-G09): certain CPU, and nothing is left on the DLPU
    nine = check_model(sub, "artpec9")
    assert nine.ops[0].where == "CPU" and nine.exit_code == 2


def test_uint8_recipe_io_quantize_is_io_requantisation_not_cpu_fallback(tmp_path):
    uint8 = check_model(recipe_io(tmp_path / "u.tflite"), "artpec8")
    assert [o.where for o in uint8.ops] == ["I/O", "DLPU", "I/O"]
    assert uint8.exit_code == 0 and "fully on the DLPU" in uint8.summary() and "G-05" not in rules_of(uint8)
    # the same network with int8 I/O has no QUANTIZE and also exits 0, with the G-05 warning: not ranked higher
    int8 = check_model(conv_model(tmp_path / "i.tflite", in_type="INT8"), "artpec8")
    assert int8.exit_code == 0 and "G-05" in rules_of(int8, "warn")
    # a uint8<->int8 QUANTIZE at the edge that also rescales is still the model's I/O conversion
    rescaled = check_model(recipe_io(tmp_path / "r.tflite", scale_out=2 / 255), "artpec8")
    assert rescaled.ops[0].where == "I/O" and "rescales" in rescaled.ops[0].findings[0].detail


def test_requantize_inside_the_graph_is_not_io_requantisation(tmp_path):
    report = check_model(inner_requantize(tmp_path / "m.tflite"), "artpec8")
    assert [o.where for o in report.ops] == ["DLPU", "CPU?", "DLPU"] and report.exit_code == 3
    # ARTPEC-9 lists Requantize: the same op is on its DLPU
    assert check_model(inner_requantize(tmp_path / "m.tflite"), "artpec9").ops[1].where == "DLPU"


@pytest.mark.parametrize("name", ["recipe_uint8_io", "recipe_int8_io"])
def test_converter_made_axis_recipe_model_runs_fully_on_artpec8(name):
    # tools/make_dlpu_recipe_models.py: TF converter with seed 003's settings, listed ops only
    path = FIXTURE_MODELS / "dlpu" / f"{name}.tflite"
    r = run_vigil("check-model", str(path), "--chip", "artpec8", "--json")
    data = json.loads(r.stdout)
    assert r.returncode == 0 and data["exit_code"] == 0, r.stdout
    io = [o["op"] for o in data["ops"] if o["where"] == "I/O"]
    assert io == (["QUANTIZE", "QUANTIZE"] if name == "recipe_uint8_io" else [])
    assert data["counts"]["cpu"] == data["counts"]["likely_cpu"] == 0
    assert data["counts"]["dlpu"] == 5


def test_per_channel_on_artpec8_warns_but_keeps_ops_on_the_dlpu(tmp_path):
    report = check_model(per_channel_conv(tmp_path / "m.tflite"), "artpec8")
    assert report.exit_code == 0 and report.counts()["warn"] == 1


def test_cli_table_has_a_row_per_op_and_a_summary(tmp_path):
    path = custom_op(tmp_path / "m.tflite")
    r = run_vigil("check-model", str(path), "--chip", "artpec8")
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    assert any("CONV_2D" in ln and "DLPU" in ln for ln in lines)
    assert any("TFLite_Detection_PostProcess" in ln and "CPU" in ln and "G-03" in ln for ln in lines)
    assert lines[-1].startswith("summary: ARTPEC-8: 2 ops, 1 on the DLPU, 1 on the CPU") and "exit 1" in lines[-1]


def test_cli_json_report(tmp_path):
    # a float model the interpreter loads (the check loads it too; the hand-made float_conv it refuses)
    r = run_vigil("check-model", str(FIXTURE_MODELS / "tiny_float.tflite"), "--chip", "artpec9", "--json")
    assert r.returncode == 2
    data = json.loads(r.stdout)
    assert data["exit_code"] == 2 and data["chip"] == "artpec9" and data["counts"]["cpu"] == 5
    assert data["ops"][0] == {"index": 0, "op": "CONV_2D", "where": "CPU", "rules": ["G-01"]}
    assert {"rule", "level", "op", "detail", "text"} <= set(data["findings"][0])


def test_cli_non_tflite_file_exits_3_with_one_line_as_run_does(tmp_path):
    # exit 3 is a model error for every command (README); check-model said 2 where `vigil run` said 3
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"PK\x03\x04 definitely a zip")
    r = run_vigil("check-model", str(bad))
    assert r.returncode == 3 and r.stdout == ""
    assert r.stderr.strip() == f"vigil: check-model: {bad} is not a TFLite model (no TFL3 identifier)"
    r = run_vigil("check-model", str(tmp_path / "missing.tflite"), "--json")
    assert r.returncode == 3 and "cannot read" in json.loads(r.stdout)["error"]
    assert json.loads(r.stdout)["exit_code"] == 3


@pytest.mark.parametrize("damage", ["cut", "flipped"])
def test_cli_damaged_model_is_one_plain_line_and_exit_3(tmp_path, damage):
    import random

    data = bytearray(DEFAULT_MODEL.read_bytes())
    if damage == "cut":
        data = data[:1000]
    else:
        rng = random.Random(3)
        for _ in range(300):
            data[rng.randrange(8, len(data))] ^= 0xFF
    bad = tmp_path / "model.tflite"
    bad.write_bytes(bytes(data))
    r = run_vigil("check-model", str(bad))
    assert r.returncode == 3 and r.stdout == "", r.stderr
    assert r.stderr.strip() == (f"vigil: check-model: {bad} is a damaged TFLite model: cut short or corrupted, "
                                f"its {len(data):,} bytes do not parse (--debug logs where)")
    run = run_vigil("run", "--model", str(bad), "--max-frames", "1", "--no-progress")
    assert run.returncode == 3 and "unpack_from" not in run.stderr and "Traceback" not in run.stderr


def test_cli_a_model_the_interpreter_refuses_is_not_called_fully_on_the_dlpu(tmp_path):
    from app.modeltools.flatbuffer import load_model, serialize

    model = load_model(DEFAULT_MODEL)
    for code in model.operatorCodes:  # op versions no interpreter has: the rules cannot see that
        code.version = 99
    bad = tmp_path / "future.tflite"
    bad.write_bytes(serialize(model))
    assert check_model(bad, "artpec8").exit_code == 0  # the rules alone would say fully on the DLPU
    r = run_vigil("check-model", str(bad))
    assert r.returncode == 3 and "fully on the DLPU" not in r.stdout + r.stderr, r.stdout
    assert r.stderr.strip().startswith(f"vigil: check-model: {bad}: the TFLite interpreter refuses to load it: "
                                       "Didn't find op for builtin opcode")
    ok = run_vigil("check-model", str(DEFAULT_MODEL))
    assert ok.returncode == 0 and "fully on the DLPU" in ok.stdout and "Traceback" not in ok.stderr


# -- real models ----------------------------------------------------------------------------------------
def test_default_model_runs_fully_on_the_artpec8_dlpu_its_io_quantize_is_io_requantisation():
    pt = check_model(DEFAULT_MODEL, "artpec8")
    pc = check_model(PERCHANNEL_MODEL, "artpec8")
    assert "Q-A8" not in rules_of(pt) and "Q-A8" in rules_of(pc, "warn")
    # the uint8<->int8 QUANTIZE at the input and the six outputs (Axis's uint8 I/O recipe) are
    # I/O requantisation; every other op is listed
    assert [o.index for o in pt.ops if o.where == "I/O"] == [0, 145, 146, 147, 148, 149, 150]
    assert {o.op for o in pt.ops if o.where == "I/O"} == {"QUANTIZE"}
    assert all(o.where == "DLPU" for o in pt.ops if o.op != "QUANTIZE")
    assert pt.exit_code == 0


def test_blazepose_models_per_tensor_vs_per_channel_on_artpec8():
    pt = check_model(BLAZEPOSE_MODEL, "artpec8")
    pc = check_model(BLAZEPOSE_PERCHANNEL, "artpec8")
    assert "Q-A8" not in rules_of(pt) and "Q-A8" in rules_of(pc, "warn")
    assert pt.exit_code == 3  # PAD, DEPTH_TO_SPACE and LOGISTIC are not in the ARTPEC-8 list: likely CPU
    assert {o.op for o in pt.ops if o.where == "CPU?"} == {"PAD", "DEPTH_TO_SPACE", "LOGISTIC"}
    assert not [o for o in pt.ops if o.where == "CPU"]


def test_ssd_fixture_post_process_runs_on_the_cpu():
    report = check_model(FIXTURE_MODELS / "ssd_postprocess_int8.tflite", "artpec8")
    cpu = [o for o in report.ops if o.where == "CPU"]
    assert [o.op for o in cpu if "G-03" in {f.rule for f in o.findings}] == ["TFLite_Detection_PostProcess"]
    assert report.exit_code == 1


# -- issue 14: the edges of every rule, both sides, with the verdict per chip ------------------------------
def scalar_mul(p, value, out_scale, in_scale=0.05):
    """x * c for a one-element int8 constant c (stored as 127 with scale value/127)."""
    return single_op(p, "MUL", (1, 8, 8, 16), (1, 8, 8, 16), type="INT8", in_scale=in_scale, out_scale=out_scale,
                     extra_inputs=[lambda g: g.const((1,), "INT8", abs(value) / 127, 127 if value > 0 else -127)])


def scalar_add(p, value, out_zp, out_scale=0.05):
    """x + c for a one-element int8 constant c = value (scale 0.05)."""
    return single_op(p, "ADD", (1, 8, 8, 16), (1, 8, 8, 16), type="INT8", out_scale=out_scale, out_zp=out_zp,
                     extra_inputs=[lambda g: g.const((1, 1, 1, 1), "INT8", 0.05, round(value / 0.05))])


def padv2(p, value):
    """PADV2 by 1 in H and W with a pad value of `value` (uint8, scale 0.05, zero point 0)."""
    pads = [[0, 0], [1, 1], [1, 1], [0, 0]]
    return single_op(p, "PADV2", (1, 8, 8, 16), (1, 10, 10, 16),
                     extra_inputs=[lambda g: g.ints(pads), lambda g: g.const((1,), "UINT8", 0.05, round(value / 0.05))])


def max_pool(p, hw, padding, k=3, s=2):
    out = [(n - k) // s + 1 if padding == 1 else -(-n // s) for n in hw]
    return single_op(p, "MAX_POOL_2D", (1, *hw, 16), (1, *out, 16), padding=padding, strideH=s, strideW=s,
                     filterHeight=k, filterWidth=k)


def fc_batch(p, batch):
    g = Graph()
    x = g.tensor((batch, 64), "UINT8", 0.05)
    w = g.const((16, 64), "INT8", 0.01)
    b = g.const((16,), "INT32", None, 0)
    y = g.tensor((batch, 16), "UINT8", 0.05)
    g.op("FULLY_CONNECTED", [x, w, b], [y])
    return g.save(p, [x], [y])


def concat_const(p):
    """A 16-channel input concatenated with an 8-channel constant along channels."""
    g = Graph()
    x = g.tensor((1, 8, 8, 16), "UINT8", 0.05)
    c = g.const((1, 8, 8, 8), "UINT8", 0.05, 3)
    y = g.tensor((1, 8, 8, 24), "UINT8", 0.05)
    g.op("CONCATENATION", [x, c], [y], axis=3)
    return g.save(p, [x], [y])


def shape_concat(p):
    """A uint8 conv whose output is reshaped to a shape concatenated from int32 pieces (rank 1, axis 0)."""
    g = Graph()
    x = g.tensor((1, 8, 8, 16), "UINT8", 0.05)
    head = g.tensor((2,), "INT32", None, name="head")
    tail = g.ints([8, 16])
    shape = g.tensor((4,), "INT32", None)
    g.op("CONCATENATION", [head, tail], [shape], axis=0)
    y = g.tensor((1, 8, 8, 16), "UINT8", 0.05)
    g.op("RESHAPE", [x, shape], [y])
    return g.save(p, [x, head], [y])


def dynamic_range(p):
    """Weights-only quantisation: int8 conv weights on float activations, plus int32 shape arithmetic."""
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "FLOAT32")
    y = conv(g, x, 12, type="FLOAT32")
    shape = g.tensor((4,), "INT32", None)
    g.op("SHAPE", [y], [shape])
    hw = g.tensor((2,), "INT32", None)
    g.op("STRIDED_SLICE", [shape, g.ints([1]), g.ints([3]), g.ints([1])], [hw], beginMask=0, endMask=0)
    return g.save(p, [x], [y, hw])


def float16_weights(p):
    """A float16 model as the converter writes it: fp16 weights, DEQUANTIZE to float32, float conv."""
    g = Graph()
    x = g.tensor((1, 32, 32, 3), "FLOAT32")
    w16 = g.tensor((12, 3, 3, 3), "FLOAT16", None, data=np.full((12, 3, 3, 3), 0.1))
    w = g.tensor((12, 3, 3, 3), "FLOAT32")
    g.op("DEQUANTIZE", [w16], [w])
    b = g.tensor((12,), "FLOAT32", data=np.zeros(12))
    y = g.tensor((1, 32, 32, 12), "FLOAT32")
    g.op("CONV_2D", [x, w, b], [y], padding=0, strideH=1, strideW=1, dilationHFactor=1, dilationWFactor=1)
    return g.save(p, [x], [y])


def while_loop(p, body_op="LOGISTIC", custom=None):
    """A uint8 WHILE whose body runs one op; the condition graph is empty (only its index matters here)."""
    g = Graph()
    cond, body = g.subgraph(), g.subgraph()
    bx = g.tensor((1, 8, 8, 16), "UINT8", 0.05)
    by = g.tensor((1, 8, 8, 16), "UINT8", 1 / 256)
    g.op(body_op, [bx], [by], custom=custom)
    g.g.inputs, g.g.outputs = [bx], [by]
    g.main()
    x = g.tensor((1, 8, 8, 16), "UINT8", 0.05)
    y = g.tensor((1, 8, 8, 16), "UINT8", 1 / 256)
    g.op("WHILE", [x], [y], condSubgraphIndex=cond, bodySubgraphIndex=body)
    return g.save(p, [x], [y])


# (edge, builder, {chip: expected exit code}); 0 all on the DLPU, 1 CPU fallback, 2 nothing on the DLPU,
# 3 only ops missing from the ARTPEC-8 list besides DLPU ones
EDGES = [
    ("kernel 3x3", lambda p: conv_model(p, out_ch=16), {"artpec8": 0, "artpec9": 0, "cv25": 0}),
    ("kernel 4x4", lambda p: conv_model(p, k=(4, 4), out_ch=16), {"artpec8": 0, "artpec9": 2, "cv25": 0}),
    ("stride 3", lambda p: conv_model(p, stride=(3, 3), out_ch=16, hw=(48, 48)), {"artpec8": 0, "artpec9": 2}),
    ("9x9 stride 2", lambda p: conv_model(p, k=(9, 9), stride=(2, 2), out_ch=16), {"artpec8": 0, "artpec9": 2}),
    ("9x9 stride 1", lambda p: conv_model(p, k=(9, 9), out_ch=16), {"artpec8": 0, "artpec9": 0}),
    ("depthwise multiplier 1", depthwise, {"artpec8": 0, "artpec9": 0}),
    ("depthwise multiplier 2", lambda p: depthwise(p, multiplier=2), {"artpec8": 0, "artpec9": 2}),
    ("concat 24+16", lambda p: two_input(p, "CONCATENATION", (1, 8, 8, 24), (1, 8, 8, 16), (1, 8, 8, 40), axis=3),
     {"artpec8": 0, "artpec9": 2}),
    ("concat 16+32", lambda p: two_input(p, "CONCATENATION", (1, 8, 8, 16), (1, 8, 8, 32), (1, 8, 8, 48), axis=3),
     {"artpec8": 0, "artpec9": 0}),
    ("concat 16 + constant 8", concat_const, {"artpec8": 0, "artpec9": 2}),
    # Arm's IsPoolingSupported: an unpadded 3x3/2 pool wants ODD sizes, a SAME one (1 after) EVEN sizes; Axis's
    # text (Arm's SUPPORTED.md) says the opposite; the code is followed
    ("max pool 3x3/2 VALID odd 9x9", lambda p: max_pool(p, (9, 9), 1), {"artpec8": 0, "artpec9": 0}),
    ("max pool 3x3/2 VALID even 8x8", lambda p: max_pool(p, (8, 8), 1), {"artpec8": 0, "artpec9": 2}),
    ("max pool 3x3/2 SAME even 8x8", lambda p: max_pool(p, (8, 8), 0), {"artpec8": 0, "artpec9": 0}),
    ("max pool 3x3/2 SAME odd 9x9", lambda p: max_pool(p, (9, 9), 0), {"artpec8": 0, "artpec9": 2}),
    ("max pool 3x3/2 VALID width 417", lambda p: max_pool(p, (9, 417), 1), {"artpec8": 0, "artpec9": 0}),
    ("max pool 3x3/2 VALID width 419", lambda p: max_pool(p, (9, 419), 1), {"artpec8": 0, "artpec9": 2}),
    ("max pool 3x3/2 SAME width 416", lambda p: max_pool(p, (8, 416), 0), {"artpec8": 0, "artpec9": 0}),
    ("max pool 3x3/2 SAME width 418", lambda p: max_pool(p, (8, 418), 0), {"artpec8": 0, "artpec9": 2}),
    # 2x2/2: SAME on an even input pads nothing, so it is the unpadded (even) configuration
    ("max pool 2x2/2 SAME even 8x8", lambda p: max_pool(p, (8, 8), 0, k=2), {"artpec8": 0, "artpec9": 0}),
    ("max pool 2x2/2 SAME odd 9x9", lambda p: max_pool(p, (9, 9), 0, k=2), {"artpec8": 0, "artpec9": 0}),
    ("pad 7", lambda p: pad(p, [[0, 0], [7, 7], [0, 0], [0, 0]]), {"artpec8": 3, "artpec9": 0}),
    ("pad 8", lambda p: pad(p, [[0, 0], [8, 8], [0, 0], [0, 0]]), {"artpec8": 3, "artpec9": 2}),
    ("PADV2 value 0", lambda p: padv2(p, 0.0), {"artpec8": 3, "artpec9": 0}),
    ("PADV2 value 0.5", lambda p: padv2(p, 0.5), {"artpec8": 3, "artpec9": 2}),
    ("fully connected batch 1 [1,64]", lambda p: fc_batch(p, 1), {"artpec8": 0, "artpec9": 0}),
    ("fully connected batch 2 [2,64]", lambda p: fc_batch(p, 2), {"artpec8": 0, "artpec9": 2}),
    ("ReLU batch 2 [2,8,8,16]", lambda p: single_op(p, "RELU", (2, 8, 8, 16), (2, 8, 8, 16)),
     {"artpec8": 0, "artpec9": 2}),
    # Arm NN gives the Ethos-N [2, 64] as [1, 2, 64, 1]: no batch for an element-wise op
    ("ReLU [2,64]", lambda p: single_op(p, "RELU", (2, 64), (2, 64)), {"artpec8": 0, "artpec9": 0}),
    # tensor depth: 8 x 8 x C bytes must fit the SRAM (448 KB to 2 MB); width 1 is exempt
    ("depth 7168 (448 KB)", lambda p: single_op(p, "RELU", (1, 8, 8, 7168), (1, 8, 8, 7168)),
     {"artpec8": 0, "artpec9": 0}),
    ("depth 32768 (2 MB)", lambda p: single_op(p, "RELU", (1, 8, 8, 32768), (1, 8, 8, 32768)),
     {"artpec8": 0, "artpec9": 0}),
    ("depth 32784", lambda p: single_op(p, "RELU", (1, 8, 8, 32784), (1, 8, 8, 32784)), {"artpec8": 0, "artpec9": 2}),
    ("depth 40000, width 1", lambda p: single_op(p, "RELU", (1, 8, 1, 40000), (1, 8, 1, 40000)),
     {"artpec8": 0, "artpec9": 0}),
    ("rank 5", reshape_rank5, {"artpec8": 0, "artpec9": 2}),
    ("per-channel weights", per_channel_conv, {"artpec8": 0, "artpec9": 0}),
    ("60 filters", lambda p: conv_model(p, out_ch=60), {"artpec8": 0, "artpec9": 0}),
    ("64 filters", lambda p: conv_model(p, out_ch=64), {"artpec8": 0, "artpec9": 0}),
    ("input 224x224", lambda p: conv_model(p, hw=(224, 224)), {"artpec8": 0, "artpec9": 0, "cv25": 0}),
    ("input 225x225", lambda p: conv_model(p, hw=(225, 225)), {"artpec8": 0, "artpec9": 0, "cv25": 0}),
    ("transpose conv stride 1", lambda p: transpose_conv(p, 1), {"artpec8": 0, "artpec9": 2}),
    ("transpose conv stride 2", lambda p: transpose_conv(p, 2), {"artpec8": 0, "artpec9": 0}),
    ("scalar mul x0.5, output scale x0.5", lambda p: scalar_mul(p, 0.5, 0.025), {"artpec8": 0, "artpec9": 0}),
    ("scalar mul x0.5, output scale kept", lambda p: scalar_mul(p, 0.5, 0.05), {"artpec8": 0, "artpec9": 2}),
    ("scalar mul x3, output scale x3", lambda p: scalar_mul(p, 3.0, 0.15), {"artpec8": 0, "artpec9": 0}),
    ("scalar mul x-0.5", lambda p: scalar_mul(p, -0.5, 0.025), {"artpec8": 0, "artpec9": 2}),
    ("scalar add +1, zero point moved", lambda p: scalar_add(p, 1.0, -20), {"artpec8": 0, "artpec9": 0}),
    ("scalar add +1, zero point kept", lambda p: scalar_add(p, 1.0, 0), {"artpec8": 0, "artpec9": 2}),
    ("scalar add +1, scale changed", lambda p: scalar_add(p, 1.0, -20, out_scale=0.1), {"artpec8": 0, "artpec9": 2}),
    ("add of two variables, broadcast",
     lambda p: two_input(p, "ADD", (1, 8, 8, 16), (1, 1, 1, 16), (1, 8, 8, 16)), {"artpec8": 0, "artpec9": 2}),
    ("add of a 1x1x1xC constant", lambda p: single_op(p, "ADD", (1, 8, 8, 16), (1, 8, 8, 16),
                                                      extra_inputs=[lambda g: g.const((1, 1, 1, 16), "UINT8", 0.05)]),
     {"artpec8": 0, "artpec9": 0}),
    ("uint8 I/O (Axis's recipe)", recipe_io, {"artpec8": 0, "artpec9": 0, "cv25": 0}),
    ("int8 I/O", lambda p: conv_model(p, in_type="INT8"), {"artpec8": 0, "artpec9": 0, "cv25": 0}),
    ("int32 shape concat", shape_concat, {"artpec8": 1, "artpec9": 1}),
    ("weights-only (dynamic range)", dynamic_range, {"artpec8": 2, "artpec9": 2, "cv25": 0}),
    ("float16 weights", float16_weights, {"artpec8": 2, "artpec9": 2, "cv25": 0}),
    ("WHILE, LOGISTIC body", while_loop, {"artpec8": 1, "artpec9": 1, "cv25": 1}),
]


@pytest.mark.parametrize("edge", EDGES, ids=[e[0] for e in EDGES])
def test_edge_models_get_the_expected_verdict_per_chip(edge, tmp_path):
    name, build, verdicts = edge
    path = build(tmp_path / "m.tflite")
    for chip, code in verdicts.items():
        report = check_model(path, chip)
        assert report.exit_code == code, f"{chip}\n{report.table()}"


def test_int32_shape_concat_is_shape_arithmetic_not_the_channel_rule(tmp_path):
    report = check_model(shape_concat(tmp_path / "m.tflite"), "artpec9")
    assert rules_of(report, op=0) == {"G-INT32"} and report.ops[1].where == "DLPU"


def test_weights_only_model_has_nothing_on_the_dlpu(tmp_path):
    report = check_model(dynamic_range(tmp_path / "m.tflite"), "artpec8")
    assert [o.op for o in report.ops] == ["CONV_2D", "SHAPE", "STRIDED_SLICE"]
    assert [o.where for o in report.ops] == ["CPU"] * 3 and report.exit_code == 2
    assert "hybrid" in report.ops[0].findings[0].detail and rules_of(report, op=2) == {"G-INT32"}


def test_float16_weight_dequantize_is_a_float16_model_not_a_float_island(tmp_path):
    report = check_model(float16_weights(tmp_path / "m.tflite"), "artpec9")
    assert rules_of(report, op=0) == {"G-01"} and "float16" in report.ops[0].findings[0].detail
    assert "G-04" not in rules_of(report)


def test_while_bodies_are_read_and_the_loop_itself_is_cpu(tmp_path):
    report = check_model(while_loop(tmp_path / "m.tflite"), "artpec8")
    assert [(o.op, o.subgraph, o.where) for o in report.ops] == [("WHILE", 0, "CPU"), ("LOGISTIC", 2, "CPU?")]
    assert "LOGISTIC [graph 2]" in report.table()
    assert report.as_dict()["ops"][1]["subgraph"] == 2 and "subgraph" not in report.as_dict()["ops"][0]
    # a custom op inside the body is found too, on every chip
    custom = check_model(while_loop(tmp_path / "c.tflite", "CUSTOM", custom="MyOp"), "cv25")
    assert [o.where for o in custom.ops] == ["CPU", "CPU"] and rules_of(custom, op=1) == {"G-03"}


def test_scalar_mul_off_the_rule_names_the_scale_it_needed(tmp_path):
    report = check_model(scalar_mul(tmp_path / "m.tflite", 0.5, 0.05), "artpec9")
    detail = report.ops[0].findings[0].detail
    assert "x 0.5" in detail and "0.025" in detail


def test_padv2_with_a_non_zero_value_says_so(tmp_path):
    report = check_model(padv2(tmp_path / "m.tflite", 0.5), "artpec9")
    assert "pad value 0.5, not zero" in report.ops[0].findings[0].detail



def test_tensor_depth_between_the_smallest_and_largest_sram_is_a_warning_not_cpu(tmp_path):
    inside = check_model(single_op(tmp_path / "a.tflite", "RELU", (1, 8, 8, 7168), (1, 8, 8, 7168)), "artpec9")
    assert "A9-G04" not in rules_of(inside)
    between = check_model(single_op(tmp_path / "b.tflite", "RELU", (1, 8, 8, 7184), (1, 8, 8, 7184)), "artpec9")
    assert rules_of(between, "warn", 0) >= {"A9-G04"} and between.ops[0].where == "DLPU"


# both sides of the advice bounds: which warning or tip a chip gives
ADVICE = [
    ("60 filters", lambda p: conv_model(p, out_ch=60), {"artpec8": ("A8-07", False), "artpec9": ("A9-G07", True)}),
    ("64 filters", lambda p: conv_model(p, out_ch=64), {"artpec8": ("A8-07", True), "artpec9": ("A9-G07", False)}),
    ("input 224x224", lambda p: conv_model(p, hw=(224, 224)), {"cv25": ("CV-02", False), "artpec8": ("T-03", False)}),
    ("input 225x225", lambda p: conv_model(p, hw=(225, 225)), {"cv25": ("CV-02", True), "artpec8": ("T-03", True)}),
    ("per-channel weights", per_channel_conv, {"artpec8": ("Q-A8", True), "artpec9": ("Q-A8", False)}),
    ("per-tensor weights", conv_model, {"artpec8": ("Q-A8", False), "artpec7": ("Q-A7", True)}),
    ("depth 7184 (> 448 KB)", lambda p: single_op(p, "RELU", (1, 8, 8, 7184), (1, 8, 8, 7184)),
     {"artpec9": ("A9-G04", True)}),
]


@pytest.mark.parametrize("case", ADVICE, ids=[c[0] for c in ADVICE])
def test_advice_bounds_give_their_warning_or_tip_on_one_side_only(case, tmp_path):
    name, build, expected = case
    path = build(tmp_path / "m.tflite")
    for chip, (rule, present) in expected.items():
        report = check_model(path, chip)
        assert (rule in rules_of(report)) == present, f"{chip}\n{report.table()}"
