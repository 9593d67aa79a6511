"""The DLPU rules check-model applies: their texts (ids as in dlpu-rules.md), the chips' operator lists, limits."""
from __future__ import annotations

CHIPS = ("artpec7", "artpec8", "artpec9", "cv25", "cpu")
CHIP_NAMES = {"artpec7": "ARTPEC-7", "artpec8": "ARTPEC-8", "artpec9": "ARTPEC-9", "cv25": "CV25", "cpu": "CPU"}

# Levels: "cpu" moves the op to the CPU; "unlisted" marks it likely CPU (not in a list not stated complete);
# "io" marks I/O requantisation; "warn" runs but costs speed or accuracy; "tip" is advice; "info" a fact.
LEVELS = ("cpu", "unlisted", "io", "warn", "tip", "info")
# where an op runs, by the strongest level among its findings
PLACES = {"cpu": "CPU", "unlisted": "CPU?", "io": "I/O"}

RULES = {
    "G-01": "DLPUs run integer ops only: float tensors run on the CPU",
    "G-03": "only TFLite built-in int8 ops run on a DLPU: custom ops run on the CPU",
    "G-04": "full-integer quantisation: quantise/dequantise steps inside the graph run on the CPU",
    "G-CF": "control flow (WHILE, IF, CALL_ONCE) is run by the TFLite interpreter on the CPU; "
            "the ops of its bodies are checked like the main graph's",
    "G-INT32": "an op on int32/int64 tensors only (shape arithmetic) is not an INT8 op: the CPU",
    "G-05": "Axis's conversion recipe uses uint8 model input and output (inference_input_type/inference_output_type = tf.uint8)",
    "Q-A7": "per-channel quantisation is recommended on ARTPEC-7 (more accurate, same speed)",
    "Q-A8": "ARTPEC-8 wants per-tensor weights: per-channel ones run much slower (vigil quantize --granularity per-tensor)",
    "Q-A9": "Axis states no quantisation granularity for ARTPEC-9; its model zoo uses per-channel",
    "A7-02": "ARTPEC-7 runs only what the Edge TPU compiler put into its edgetpu-custom-op: compile with edgetpu_compiler",
    "A7-03": "ops the Edge TPU compiler left out run on the CPU",
    "A8-04": "ARTPEC-8: regular convolutions are more efficient than depthwise ones",
    "A8-05": "ARTPEC-8: 3x3 is the optimal kernel size",
    "A8-06": "ARTPEC-8: a stride-2 convolution beats convolution + 2x pooling",
    "A8-07": "ARTPEC-8: filters per convolution should be a multiple of 6",
    "A8-08": "ARTPEC-8: a ReLU fused into the convolution is faster",
    "A8-10": "not in the ARTPEC-8 operator list (Axis does not say the list is complete): likely the CPU",
    "A8-IO": "uint8<->int8 QUANTIZE at the model input/output, as Axis's uint8 recipe makes it (seed 003): "
             "I/O requantisation, not counted as CPU fallback (QUANTIZE is not in the ARTPEC-8 list)",
    "A9-G01": "ARTPEC-9: tensors of rank > 4 run on the CPU",
    "A9-G02": "ARTPEC-9: batch > 1 runs on the CPU (dimension 0 of a 4-D tensor or of a fully-connected input)",
    "A9-G04": "ARTPEC-9: a tensor too deep for the DLPU's SRAM, which must hold an 8x8xC chunk (Arm's "
              "IsTensorDepthSupported; 448 KB to 2 MB by Ethos-N78 variant, ARTPEC-9's is not published)",
    "A9-G05": "ARTPEC-9: use ReLU6 as the activation where possible",
    "A9-G06": "ARTPEC-9: avoid explicit padding",
    "A9-G07": "ARTPEC-9: filters are best a multiple of 16",
    "A9-G09": "not in the ARTPEC-9 operator table",
    "A9-ADD": "ARTPEC-9 add: element by element; a constant of shape 1x1x1xC, or a scalar when the output keeps "
              "the input scale and its zero point moves by -value/scale (Arm's reinterpret-quantization replacement)",
    "A9-AVG": "ARTPEC-9 average pooling: only 3x3 stride 1 SAME, or a 7x7/8x8 mean over the whole input",
    "A9-CAT-1": "ARTPEC-9 concatenation: output scale must be >= input scale / 128",
    "A9-CAT-2": "ARTPEC-9 concatenation along channels: every input's channels a multiple of 16",
    "A9-KERNEL": "ARTPEC-9 convolution kernel height and width must each be 1, 2, 3, 5, 7 or 9",
    "A9-STRIDE": "ARTPEC-9 convolution strides must be 1 or 2 and equal (stride 1 only for kernels > 7)",
    "A9-SCALE": "ARTPEC-9: input scale x weight scale / output scale must be between 0 and 65536",
    "A9-D2S": "ARTPEC-9 depth-to-space: block size 2 and depth a multiple of 4",
    "A9-DW-6": "ARTPEC-9 depthwise convolution: channel multiplier must be 1",
    "A9-LRELU-1": "ARTPEC-9 leaky ReLU: 0 < alpha < 1",
    "A9-MAX": "ARTPEC-9 max pooling: only the listed pool/stride/padding configurations (3x3/2 parities as Arm's code)",
    "A9-MEAN": "ARTPEC-9 mean: only 7x7 or 8x8 over H and W down to 1x1",
    "A9-MUL": "ARTPEC-9 multiply: only by a constant of shape 1x1x1xC, or by a scalar c with output scale = "
              "input scale x c (the quantised values are unchanged: a reinterpretation of the quantisation)",
    "A9-PAD": "ARTPEC-9 pad: zeros, in H and W only, at most 7 per side, same input and output quantisation",
    "A9-REQ-1": "ARTPEC-9 requantize: output scale must be >= input scale / 128",
    "A9-RES-1": "ARTPEC-9 resize: output height and width must be 2n or 2n-1 of the input's",
    "A9-RES-2": "ARTPEC-9 resize: odd/even mismatched output sizes may be less accurate",
    "A9-RES-3": "ARTPEC-9 bilinear resize with align_corners, or half_pixel_centers with mixed parity, is inaccurate",
    "A9-SIG-1": "ARTPEC-9 sigmoid: output zero point must be the type's minimum and scale 1/256",
    "A9-SPLIT-1": "ARTPEC-9 split along channels: every output's channels a multiple of 16",
    "A9-TANH-1": "ARTPEC-9 tanh: output zero point must be the type's middle and scale 1/128",
    "A9-TCONV": "ARTPEC-9 transposed convolution: kernel 1, 2, 3, 5, 7 or 9 and stride 2 only",
    "CV-02": "CV25: model input height and width should be multiples of 32",
    "CV-03": "CV25: the Ambarella compiler quantises the model itself; a float model is fine",
    "CV-04": "CV25 runs its own format: convert the .tflite with the Ambarella toolchain (which ops it maps is not published)",
    "T-03": "input height and width should be multiples of 8 (optimised convolution kernels)",
    "ACAP": "ACAP Runtime cannot select the ARTPEC-9 DLPU (no chip id): a container app runs such a model on the CPU",
}

ARTPEC8_OPS = {
    "FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "MAX_POOL_2D", "AVERAGE_POOL_2D",
    "CONCATENATION", "RESHAPE", "EXPAND_DIMS", "SQUEEZE", "SLICE", "STRIDED_SLICE", "GATHER", "GATHER_ND", "ONE_HOT",
    "SPLIT", "TRANSPOSE", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "CAST", "ADD", "ADD_N", "MUL", "DIV",
    "FLOOR_DIV", "POW", "SQUARE", "SIN", "TANH", "ABS", "NEG", "SQRT", "FLOOR", "MINIMUM", "MAXIMUM", "EQUAL",
    "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "LOGICAL_NOT", "LOGICAL_AND", "LOGICAL_OR", "RELU",
    "RELU6", "SOFTMAX", "GELU", "ELU", "HARD_SWISH", "REDUCE_MIN", "REDUCE_MAX", "REDUCE_ANY", "REDUCE_PROD",
    "ARG_MIN", "ARG_MAX",
}
# TFLite builtins for the 22 ARTPEC-9 operators (name matching is the digest's inference;
# SQUEEZE/EXPAND_DIMS become Reshape in the Arm NN parser)
ARTPEC9_OPS = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTH_TO_SPACE", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
    "LEAKY_RELU", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "PADV2", "QUANTIZE", "RELU", "RELU6", "RELU_N1_TO_1",
    "RELU_0_TO_1", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "LOGISTIC",
    "SPLIT", "SPLIT_V", "TANH", "TRANSPOSE_CONV",
}
CONTROL_FLOW = {"WHILE", "IF", "CALL_ONCE", "CALL"}
ACTIVATIONS = {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU",
               "PRELU", "ELU", "GELU"}
A9_KERNELS = {1, 2, 3, 5, 7, 9}
# total SRAM of the smallest and the largest Ethos-N78 variant (GetEthosN78FwHwCapabilities,
# driver/support_library/src/CapabilitiesInternal.cpp); which variant ARTPEC-9 has is not published
SRAM_BYTES = (448 * 1024, 2048 * 1024)
SAME, VALID = 0, 1
ACT_NONE, ACT_RELU, ACT_RELU6 = 0, 1, 3
