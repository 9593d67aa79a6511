"""check-model's ARTPEC-9 verdicts against Arm's Ethos-N support library, op by op.

Axis's ARTPEC-9 operator table is Arm's Ethos-N SUPPORTED.md nearly word for word; Arm's
ethos-n-driver-stack implements those checks in its support library (SupportQueries.cpp). This
compiles that library and bench/ethosn_oracle.cpp with the system g++, then asks it about every
op it has a query for in the crafted models of tests/test_dlpu_check.py (the edge models, the one-rule
models on ARTPEC-9 and the supported configurations), and prints check-model's place next to the
library's answer ("Supported" counts as DLPU; "EstimateOnly" and "Unsupported" as CPU).

    git clone https://github.com/ARM-software/ethos-n-driver-stack /tmp/ethos-n
    python bench/ethosn_oracle.py --stack /tmp/ethos-n [--build DIR] [--all] [--legacy-compiler] [--largest]

By default the library answers as its current (experimental-by-default) compiler, which has dropped
the multiple-of-16 channel rule for concat and split; --legacy-compiler asks as the legacy one,
which keeps it, as Axis's table does.

Not asked (no support-library query decides them): ADD and MUL with constants (Arm NN's backend
replaces them, EthosNReplaceUnsupported.cpp), RESHAPE, RESIZE, SPLIT, pads of N or C and
PADV2 pad values (the standalone-padding query takes H and W amounts only), and every op
check-model places on the CPU for a global rule. The library gets the smallest Ethos-N78
(448 KB of SRAM) or with --largest the largest (2 MB); ARTPEC-9's variant is not published, so
check-model warns (A9-G04) where the two differ.
Exit code 0 when every asked op agrees, 1 otherwise.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.modelfile import Operator, TensorSpec, read_model  # noqa: E402
from app.modeltools.dlpu_check import check_model  # noqa: E402
from app.modeltools.dlpu_check.geometry import ethosn_shape, strides, tflite_pads  # noqa: E402
from app.modeltools.dlpu_check.rules import SAME  # noqa: E402
from tests import test_dlpu_check as crafted  # noqa: E402


def build(stack: Path, out: Path) -> Path:
    """Compile the support library's sources (once) and the oracle; returns the executable."""
    lib = stack / "driver" / "support_library"
    include = [lib / "include", lib / "src", lib / "command_stream" / "include", stack / "driver" / "utils" / "include"]
    flags = ["g++", "-std=c++17", "-O1", "-w", *[f"-I{p}" for p in include]]
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted((lib / "src").glob("*.cpp"))

    def compile_one(src: Path) -> Path:
        obj = out / f"{src.stem}.o"
        if not obj.exists() or obj.stat().st_mtime < src.stat().st_mtime:
            subprocess.run([*flags, "-c", str(src), "-o", str(obj)], check=True)
        return obj

    with ThreadPoolExecutor(2) as pool:
        objects = list(pool.map(compile_one, sources))
    exe = out / "ethosn_oracle"
    subprocess.run([*flags, str(ROOT / "bench" / "ethosn_oracle.cpp"), *map(str, objects), "-lpthread",
                    "-o", str(exe)], check=True)
    return exe


def tensor(t: TensorSpec, shape: tuple[int, ...] | None = None, fmt: str = "NHWC", scales=None, zp=None) -> str:
    """The oracle's n,h,w,c/type/zp/scales/format token for a tensor."""
    dims = shape if shape is not None else ethosn_shape(t.shape)
    kind = {"UINT8": "u8", "INT8": "i8", "INT32": "i32"}.get(t.type, "u8")
    scales = scales if scales is not None else (t.scales or (1.0,))
    zp = zp if zp is not None else (t.zero_points[0] if t.zero_points else 0)
    return f"{','.join(map(str, dims))}/{kind}/{zp}/{';'.join(f'{s:.9g}' for s in scales)}/{fmt}"


def out_quant(t: TensorSpec) -> str:
    return f"{t.zero_points[0] if t.zero_points else 0}/{(t.scales or (1.0,))[0]:.9g}"


def query(op: Operator) -> str | None:
    """The oracle query for one op, or None when the support library has none for it."""
    name = op.name
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
        x, w = (op.inputs[2], op.inputs[1]) if name == "TRANSPOSE_CONV" else (op.inputs[0], op.inputs[1])
        o, kh, kw = w.shape[0], w.shape[1], w.shape[2]
        if name == "DEPTHWISE_CONV_2D":
            c = x.shape[3]
            weights = tensor(w, (kh, kw, c, w.shape[3] // c), "HWIM")
            channels = w.shape[3]
        else:
            weights = tensor(w, (kh, kw, w.shape[3], o), "HWIO")
            channels = o
        bias_scales = [x.scales[0] * s for s in w.scales] if x.scales and w.scales else [1.0]
        bias = f"1,1,1,{channels}/i32/0/{';'.join(f'{s:.9g}' for s in bias_scales)}/NHWC"
        s = strides(op)
        same = getattr(op.options, "padding", SAME) == SAME
        if name == "TRANSPOSE_CONV":
            total = max(kh - s[0], 0), max(kw - s[1], 0)  # the output is input x stride
            pads = (total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2) if same \
                else (0, 0, 0, 0)
        else:
            pads = tflite_pads(x.shape[1:3], (kh, kw), s, same)
        kind = {"CONV_2D": "CONV", "DEPTHWISE_CONV_2D": "DW", "TRANSPOSE_CONV": "TCONV"}[name]
        return (f"{kind} {tensor(x)} {weights} {bias} {','.join(map(str, pads))} {s[1]},{s[0]} "
                f"{out_quant(op.outputs[0])}")
    if name == "FULLY_CONNECTED":
        x, w = op.inputs[0], op.inputs[1]
        n = x.shape[0]
        c = int(np.prod(x.shape)) // n
        bias = f"1,1,1,{w.shape[0]}/i32/0/{x.scales[0] * w.scales[0]:.9g}/NHWC"
        return (f"FC {tensor(x, (n, 1, 1, c))} {tensor(w, (1, 1, w.shape[1], w.shape[0]), 'HWIO')} {bias} "
                f"{out_quant(op.outputs[0])}")
    if name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        o, x = op.options, op.inputs[0]
        k, s = (o.filterHeight, o.filterWidth), strides(op)
        pads = tflite_pads(x.shape[1:3], k, s, o.padding == SAME)
        kind = "max" if name == "MAX_POOL_2D" else "avg"
        return f"POOL {kind} {k[1]},{k[0]} {s[1]},{s[0]} {','.join(map(str, pads))} {tensor(x)}"
    if name == "CONCATENATION":
        if any(len(t.shape) != 4 for t in op.inputs):
            return None
        axis = getattr(op.options, "axis", 0) % 4
        return f"CONCAT {axis} {out_quant(op.outputs[0])} " + " ".join(tensor(t) for t in op.inputs)
    if name == "QUANTIZE":
        kind = {"UINT8": "u8", "INT8": "i8"}.get(op.outputs[0].type)
        return f"REQ {tensor(op.inputs[0])} {out_quant(op.outputs[0])} {kind}" if kind else None
    if name in ("LOGISTIC", "TANH"):
        return f"{'SIGMOID' if name == 'LOGISTIC' else 'TANH'} {tensor(op.inputs[0])} {tensor(op.outputs[0])}"
    if name == "MEAN":
        return f"MEANXY {tensor(op.inputs[0])}"
    if name in ("PAD", "PADV2"):
        pads = op.inputs[1].data
        if pads is None or pads.size != 8:
            return None
        p = pads.reshape(4, 2)
        if p[0].any() or p[3].any() or (name == "PADV2" and len(op.inputs) > 2):
            return None  # the query cannot express them
        return f"PAD {p[1][0]},{p[1][1]},{p[2][0]},{p[2][1]} {tensor(op.inputs[0])}"
    if name == "LEAKY_RELU":
        return f"LRELU {getattr(op.options, 'alpha', 0.0)} {out_quant(op.outputs[0])} {tensor(op.inputs[0])}"
    if name in ("RELU", "RELU6"):
        o = op.outputs[0]
        zp, scale = (o.zero_points[0] if o.zero_points else 0), (o.scales[0] if o.scales else 1.0)
        top = 255 if o.type == "UINT8" else 127
        upper = top if name == "RELU" else min(top, zp + round(6 / scale))
        return f"RELU {zp},{upper} {tensor(op.inputs[0])}"
    if name == "DEPTH_TO_SPACE":
        return f"D2S {getattr(op.options, 'blockSize', 0)} {tensor(op.inputs[0])}"
    return None


def models():
    """(name, builder) of every crafted model in tests/test_dlpu_check.py that is meant for ARTPEC-9."""
    yield from ((f"edge: {name}", build) for name, build, chips in crafted.EDGES if "artpec9" in chips)
    yield from ((f"rule: {c[0]}", c[1]) for c in crafted.CASES if c[2] == "artpec9")
    yield from ((f"pass: {name}", build) for name, build in crafted.PASSES)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", required=True, type=Path, help="checkout of ARM-software/ethos-n-driver-stack")
    ap.add_argument("--build", type=Path, default=Path(tempfile.gettempdir()) / "ethosn-oracle",
                    help="where the objects and the oracle go (kept between runs)")
    ap.add_argument("--all", action="store_true", help="print agreeing ops too")
    ap.add_argument("--legacy-compiler", action="store_true", help="ask as the support library's legacy compiler")
    ap.add_argument("--largest", action="store_true", help="the 2 MB-SRAM Ethos-N78 instead of the 448 KB one")
    args = ap.parse_args()
    exe = build(args.stack, args.build)
    rows, asked = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, make) in enumerate(models()):
            path = make(Path(tmp) / f"m{k}.tflite")
            report = check_model(path, "artpec9")
            for op in read_model(path).operators:
                q = query(op) if report.ops[op.index].where == "DLPU" or any(
                    f.rule.startswith("A9") for f in report.ops[op.index].findings) else None
                if q is None:
                    continue
                cmd = [str(exe)] + (["--legacy-compiler"] if args.legacy_compiler else []) + (
                    ["--largest"] if args.largest else [])
                answer = subprocess.run(cmd, input=q + "\n", capture_output=True, text=True).stdout
                level, _, reason = answer.strip().partition("\t")
                vigil = report.ops[op.index].where
                agree = (level == "Supported") == (vigil == "DLPU")
                rules = ",".join(dict.fromkeys(f.rule for f in report.ops[op.index].findings if f.level == "cpu"))
                asked += 1
                rows.append((agree, name, op.name, vigil, rules, level, reason))
    width = max(len(r[1]) for r in rows)
    print(f"{'':<2}{'model':<{width}}  {'op':<18} {'vigil':<5} {'rules':<11} {'Ethos-N':<12} reason")
    for agree, name, op, vigil, rules, level, reason in rows:
        if args.all or not agree:
            print(f"{'  ' if agree else '! '}{name:<{width}}  {op:<18} {vigil:<5} {rules:<11} {level:<12} {reason}")
    bad = sum(not r[0] for r in rows)
    print(f"{asked} ops asked, {asked - bad} agree, {bad} disagree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
