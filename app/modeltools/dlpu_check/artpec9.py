"""ARTPEC-9 (Arm Ethos-N78) rules: the operator table and each operator's conditions."""
from __future__ import annotations

import numpy as np

from app.modelfile import Operator
from app.modeltools.dlpu_check import geometry as g
from app.modeltools.dlpu_check.rules import A9_KERNELS, ACT_RELU, ARTPEC9_OPS, SAME, SRAM_BYTES


class Artpec9Rules:
    """The ARTPEC-9 part of the Checker (mixed into it): `add`, `reports` and the shared rules are the Checker's."""

    def _chip_artpec9(self) -> None:
        self.add("ACAP", "info")
        self._integer_rules()
        if self._per_channel():
            self.add("Q-A9", "info", "weights are per-channel")
        for op in self.ops:
            if self.reports[op.index].where != "DLPU":
                continue
            if op.name not in ARTPEC9_OPS:
                self.add("A9-G09", "cpu", "", op)
                continue
            tensors = [t for t in op.inputs + op.outputs if not t.const]
            if any(len(t.shape) > 4 for t in tensors):
                self.add("A9-G01", "cpu", f"rank {max(len(t.shape) for t in tensors)}", op)
            elif g.batch(op) > 1:
                self.add("A9-G02", "cpu", f"batch {g.batch(op)}", op)
            elif g.depth_bytes(op) > SRAM_BYTES[1]:
                self.add("A9-G04", "cpu", f"8x8xC chunk of {g.depth_bytes(op) // 1024} KB > {SRAM_BYTES[1] // 1024} KB, "
                         "the largest Ethos-N78 SRAM", op)
            else:
                getattr(self, f"_a9_{op.name.lower()}", lambda o: None)(op)
            if SRAM_BYTES[0] < g.depth_bytes(op) <= SRAM_BYTES[1]:
                self.add("A9-G04", "warn", f"8x8xC chunk of {g.depth_bytes(op) // 1024} KB: fits only an Ethos-N78 "
                         f"with more than {SRAM_BYTES[0] // 1024} KB of SRAM", op)
            if op.name in ("CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"):
                n = g.filters(op)
                if n and n % 16:
                    self.add("A9-G07", "tip", f"{n} filters", op)
            if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D") and getattr(op.options, "fusedActivationFunction", 0) == ACT_RELU:
                self.add("A9-G05", "tip", "fused ReLU", op)
        self._io_rules(8, "T-03")

    # -- ARTPEC-9 per-operator conditions ------------------------------------------------------
    def _a9_scale(self, op: Operator) -> None:
        bad = [r for r in g.scale_ratios(op) if not 0 < r < 65536]
        if bad:
            self.add("A9-SCALE", "cpu", f"I*W/O = {bad[0]:.3g}", op)

    def _a9_conv(self, op: Operator, transpose: bool = False) -> None:
        k = g.kernel(op)
        sh, sw = g.strides(op)
        if k and not (k[0] in A9_KERNELS and k[1] in A9_KERNELS):
            self.add("A9-TCONV" if transpose else "A9-KERNEL", "cpu", f"kernel {k[0]}x{k[1]}", op)
        elif transpose and (sh, sw) != (2, 2):
            self.add("A9-TCONV", "cpu", f"stride {sh}x{sw}", op)
        elif not transpose and (sh != sw or sh not in (1, 2) or (k and max(k) > 7 and sh != 1)):
            self.add("A9-STRIDE", "cpu", f"stride {sh}x{sw}" + (f", kernel {k[0]}x{k[1]}" if k else ""), op)
        self._a9_scale(op)

    def _a9_conv_2d(self, op: Operator) -> None:
        self._a9_conv(op)

    def _a9_transpose_conv(self, op: Operator) -> None:
        self._a9_conv(op, transpose=True)

    def _a9_depthwise_conv_2d(self, op: Operator) -> None:
        self._a9_conv(op)
        c_in, c_out = g.channels(op.inputs[0]), g.filters(op)
        if c_in and c_out and c_out // c_in != 1:
            self.add("A9-DW-6", "cpu", f"multiplier {c_out // c_in}", op)

    def _a9_fully_connected(self, op: Operator) -> None:
        self._a9_scale(op)

    def _a9_average_pool_2d(self, op: Operator) -> None:
        o = op.options
        k, s, pad = (o.filterHeight, o.filterWidth), g.strides(op), o.padding
        hw = g.hw(op.inputs[0])
        ok = (k == (3, 3) and s == (1, 1) and pad == SAME) or (k[0] == k[1] and k[0] in (7, 8) and hw == k)
        if not ok:
            self.add("A9-AVG", "cpu", f"pool {k[0]}x{k[1]} stride {s[0]} {'SAME' if pad == SAME else 'VALID'}", op)

    def _a9_max_pool_2d(self, op: Operator) -> None:
        # SupportQueries::IsPoolingSupported (driver/support_library/src/SupportQueries.cpp) on the padding TFLite
        # computes. Stride 2: 1x1 unpadded; 2x2 unpadded on even sizes or padded 1 after on odd ones; 3x3 at
        # most 417 wide, unpadded on ODD sizes or padded 1 after on EVEN ones. Axis's text (Arm's SUPPORTED.md)
        # gives the 3x3 parities the other way round; the code is what runs, and an unpadded 3x3/2 pool covers
        # an odd input exactly. Stride 1: unpadded up to 9x9, SAME up to 17x17.
        o = op.options
        k, s, same = (o.filterHeight, o.filterWidth), g.strides(op), o.padding == SAME
        hw = g.hw(op.inputs[0]) or (0, 0)
        pads = g.tflite_pads(hw, k, s, same)
        no_pad, pad_after = pads == (0, 0, 0, 0), pads == (0, 1, 0, 1)
        even = hw[0] % 2 == 0 and hw[1] % 2 == 0
        odd = hw[0] % 2 == 1 and hw[1] % 2 == 1
        why = ""
        if s == (2, 2):
            if k == (1, 1) and no_pad:
                pass
            elif k == (2, 2) and (no_pad or pad_after):
                if not (even if no_pad else odd):
                    why = f"input sizes must be {'even' if no_pad else 'odd'}"
            elif k == (3, 3) and (no_pad or pad_after):
                if hw[1] > 417:
                    why = "input wider than 417"
                elif not (odd if no_pad else even):
                    why = f"input sizes must be {'odd' if no_pad else 'even'} (Arm's code; Axis's text says " \
                          f"{'even' if no_pad else 'odd'})"
            else:
                why = "not a supported stride-2 configuration"
        elif s == (1, 1):
            if not ((no_pad and max(k) <= 9) or (same and max(k) <= 17)):
                why = "stride 1 needs VALID up to 9x9 or SAME up to 17x17"
        else:
            why = "stride must be 1 or 2"
        if not why and (hw[0] < k[0] or hw[1] < k[1]):
            why = "input smaller than the pool"
        if why:
            self.add("A9-MAX", "cpu", f"pool {k[0]}x{k[1]} stride {s[0]}x{s[1]} {'SAME' if same else 'VALID'} "
                     f"on {hw[1]}x{hw[0]}: {why}", op)

    def _a9_concatenation(self, op: Operator) -> None:
        out = op.outputs[0]
        data = list(op.inputs)  # constant inputs are concatenated like the others
        if out.scales and any(t.scales and out.scales[0] < t.scales[0] / 128 for t in data):
            self.add("A9-CAT-1", "cpu", "", op)
        if g.channel_axis(op, getattr(op.options, "axis", 0), len(out.shape)):
            bad = [g.channels(t) for t in data if g.channels(t) and g.channels(t) % 16]
            if bad:
                self.add("A9-CAT-2", "cpu", f"input channels {bad}", op)

    def _a9_split(self, op: Operator) -> None:
        axis_t = op.inputs[0] if op.name == "SPLIT" else (op.inputs[2] if len(op.inputs) > 2 else None)
        data = op.inputs[1] if op.name == "SPLIT" else op.inputs[0]
        axis = int(axis_t.data[0]) if axis_t is not None and axis_t.data is not None and axis_t.data.size else None
        if axis is not None and g.channel_axis(op, axis, len(data.shape)):
            bad = [g.channels(t) for t in op.outputs if g.channels(t) and g.channels(t) % 16]
            if bad:
                self.add("A9-SPLIT-1", "cpu", f"output channels {bad}", op)

    _a9_split_v = _a9_split

    def _a9_depth_to_space(self, op: Operator) -> None:
        b = getattr(op.options, "blockSize", 0)
        c = g.channels(op.inputs[0]) or 0
        if b != 2 or c % 4:
            self.add("A9-D2S", "cpu", f"block {b}, depth {c}", op)

    def _a9_leaky_relu(self, op: Operator) -> None:
        a = getattr(op.options, "alpha", 0.0)
        if not 0 < a < 1:
            self.add("A9-LRELU-1", "cpu", f"alpha {a}", op)

    def _a9_mean(self, op: Operator) -> None:
        axes = op.inputs[1].data if len(op.inputs) > 1 else None
        hw = g.hw(op.inputs[0])
        out_hw = g.hw(op.outputs[0])
        keep = getattr(op.options, "keepDims", False)
        ok = (axes is not None and sorted(int(a) % 4 for a in axes) == [1, 2] and hw in ((7, 7), (8, 8))
              and (out_hw == (1, 1) if keep else len(op.outputs[0].shape) == 2))
        if not ok:
            self.add("A9-MEAN", "cpu", f"input {hw}", op)

    def _a9_mul(self, op: Operator) -> None:
        consts = [t for t in op.inputs if t.const]
        ok = False
        if len(consts) == 1:
            c = consts[0]
            size = int(np.prod(c.shape)) if c.shape else 1
            if size == 1:
                # Arm's ReplaceScalarMultiplicationWithReinterpretQuantization (armnn-ethos-n-backend/
                # EthosNReplaceUnsupported.cpp): the output scale must be input scale x constant, within 0.004
                var = next(t for t in op.inputs if not t.const)
                out, value = op.outputs[0], g.const_value(c)
                if value is None or not var.scales or not out.scales:
                    self.add("A9-MUL", "cpu", "scalar constant of unknown value", op)
                    return
                want = var.scales[0] * value
                if abs(want - out.scales[0]) > 0.004:
                    self.add("A9-MUL", "cpu", f"x {value:.4g}: output scale {out.scales[0]:.4g}, "
                             f"not input scale x constant = {want:.4g}", op)
                return
            ok = len(c.shape) in (1, 4) and all(d == 1 for d in c.shape[:-1])
        if not ok:
            self.add("A9-MUL", "cpu", "two variable tensors" if not consts else f"constant {list(consts[0].shape)}", op)

    def _a9_add(self, op: Operator) -> None:
        a, b = op.inputs[0], op.inputs[1]
        sa, sb = g.ethosn_shape(a.shape), g.ethosn_shape(b.shape)
        if sa[1:] == sb[1:]:
            return  # element by element
        var, c = (a, b) if b.const else (b, a)
        sc, sv = g.ethosn_shape(c.shape), g.ethosn_shape(var.shape)
        if not c.const:
            self.add("A9-ADD", "cpu", f"broadcast of {list(a.shape)} and {list(b.shape)}", op)
        elif sc[:3] == (1, 1, 1) and sc[3] == sv[3]:
            return  # a 1x1x1xC constant: Arm NN makes it a depthwise convolution (ReplaceConstantAdditionWithDepthwise)
        elif sc == (1, 1, 1, 1):
            # Arm's IsAdditionSupportedByReinterpretQuantization (EthosNLayerSupport.cpp): same scale within 1e-5;
            # ReplaceConstantAdditionWithReinterpretQuantization: zero point moved by -value/scale, within 1
            out, value = op.outputs[0], g.const_value(c)
            if value is None or not var.scales or not out.scales or not var.zero_points or not out.zero_points:
                self.add("A9-ADD", "cpu", "scalar constant of unknown value", op)
            elif abs(out.scales[0] - var.scales[0]) >= 1e-5:
                self.add("A9-ADD", "cpu", f"+ {value:.4g}: output scale {out.scales[0]:.4g} is not the input's "
                         f"{var.scales[0]:.4g}", op)
            elif abs(var.zero_points[0] - value / var.scales[0] - out.zero_points[0]) > 1:
                self.add("A9-ADD", "cpu", f"+ {value:.4g}: output zero point {out.zero_points[0]}, not "
                         f"{var.zero_points[0] - value / var.scales[0]:.4g}", op)
        else:
            self.add("A9-ADD", "cpu", f"constant {list(c.shape)} broadcast", op)

    def _a9_pad(self, op: Operator) -> None:
        pads = op.inputs[1].data if len(op.inputs) > 1 else None
        reasons = []
        if op.name == "PADV2" and len(op.inputs) > 2:
            # the pad value is stored quantised: zero padding means its stored value is its zero point
            value = op.inputs[2]
            real = g.const_value(value) if value.const else None
            if real is None:
                reasons.append("pad value not a known constant")
            elif real != 0:
                reasons.append(f"pad value {real:.4g}, not zero")
        if pads is not None and pads.size == 8:
            p = pads.reshape(4, 2)
            if p[0].any() or p[3].any():
                reasons.append("pads N or C")
            if p.max() > 7:
                reasons.append(f"pad {int(p.max())} > 7")
        i, o = op.inputs[0], op.outputs[0]
        if (i.scales[:1], i.zero_points[:1]) != (o.scales[:1], o.zero_points[:1]):
            reasons.append("quantisation changes")
        if reasons:
            self.add("A9-PAD", "cpu", ", ".join(reasons), op)
        else:
            self.add("A9-G06", "tip", "", op)

    _a9_padv2 = _a9_pad

    def _a9_quantize(self, op: Operator) -> None:
        i, o = op.inputs[0], op.outputs[0]
        if i.scales and o.scales and o.scales[0] < i.scales[0] / 128:
            self.add("A9-REQ-1", "cpu", f"{i.scales[0]:.3g} -> {o.scales[0]:.3g}", op)

    def _a9_resize(self, op: Operator) -> None:
        hw, out = g.hw(op.inputs[0]), g.hw(op.outputs[0])
        if not hw or not out:
            return
        if any(o not in (2 * n, 2 * n - 1) for n, o in zip(hw, out)):
            self.add("A9-RES-1", "cpu", f"{hw[1]}x{hw[0]} -> {out[1]}x{out[0]}", op)
            return
        mixed = (out[0] % 2) != (out[1] % 2)
        if mixed:
            self.add("A9-RES-2", "warn", f"{out[1]}x{out[0]}", op)
        if op.name == "RESIZE_BILINEAR" and (getattr(op.options, "alignCorners", False)
                                             or (getattr(op.options, "halfPixelCenters", False) and mixed)):
            self.add("A9-RES-3", "warn", "", op)

    _a9_resize_bilinear = _a9_resize
    _a9_resize_nearest_neighbor = _a9_resize

    def _a9_logistic(self, op: Operator) -> None:
        o = op.outputs[0]
        want_zp = -128 if o.type == "INT8" else 0
        if not o.scales or abs(o.scales[0] - 1 / 256) > 1e-9 or o.zero_points[:1] != (want_zp,):
            self.add("A9-SIG-1", "cpu", f"scale {o.scales[:1]}, zero point {o.zero_points[:1]}", op)

    def _a9_tanh(self, op: Operator) -> None:
        o = op.outputs[0]
        want_zp = 0 if o.type == "INT8" else 128
        if not o.scales or abs(o.scales[0] - 1 / 128) > 1e-9 or o.zero_points[:1] != (want_zp,):
            self.add("A9-TANH-1", "cpu", f"scale {o.scales[:1]}, zero point {o.zero_points[:1]}", op)
