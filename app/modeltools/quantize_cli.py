"""`vigil quantize`: a float .tflite and a folder of images to a full-integer INT8 model, compared and checked.

Calibration and quantisation are the default-model tooling's (`quantize.quantize_model`,
ai-edge-quantizer with min/max calibration); `compare.output_agreement` runs both models on
the TFLite backend; the result is then checked with `dlpu_check.check_model`.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from app.backends.tflite import TFLiteModel
from app.errors import ConfigError, ModelError
from app.modelfile import read_model
from app.modeltools import compare, dlpu_check, quantize
from app.modeltools import flatbuffer as fb
from app.modeltools import graph_edits as edits

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def list_images(folder: str | Path) -> list[Path]:
    """Image files in a folder (not recursive), sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise ConfigError(f"--calib: not a folder: {d}")
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def to_input(path: Path, height: int, width: int, resize: str, low: float, high: float,
             color: str = "rgb") -> np.ndarray:
    """An image file as a float model input: RGB (or BGR), model size, pixels 0..255 mapped to [low, high]."""
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise ConfigError(f"--calib: cannot read image {path}")
    if resize == "letterbox":
        s = min(width / bgr.shape[1], height / bgr.shape[0])
        nw, nh = max(1, round(bgr.shape[1] * s)), max(1, round(bgr.shape[0] * s))
        canvas = np.full((height, width, 3), 114, np.uint8)
        y, x = (height - nh) // 2, (width - nw) // 2
        canvas[y : y + nh, x : x + nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA)
        bgr = canvas
    else:
        bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    pixels = (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if color == "rgb" else bgr).astype(np.float32)
    return (pixels / 255.0 * (high - low) + low)[None]


def check_output(src: Path, out: Path) -> None:
    """ConfigError before calibrating when the INT8 model could not be written, or would replace the float one."""
    if out.exists() and os.path.samefile(src, out):
        raise ConfigError(f"--output: {out} is the float model itself; writing there would replace it, name another file")
    existed = out.exists()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "ab"):  # opens as the final write will, changing nothing
            pass
    except OSError as e:
        raise ConfigError(f"--output: cannot write {out}: {e.strerror or e}") from None
    if not existed:
        out.unlink(missing_ok=True)


def main(args) -> int:
    """Run `vigil quantize` from parsed arguments; returns the exit code."""
    src = Path(args.model)
    inputs = read_model(src).inputs  # NotAModel is a ModelError
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise ModelError(f"{src}: quantize handles single-image models with one NHWC input")
    if inputs[0].type != "FLOAT32":
        raise ModelError(f"{src}: input is already {inputs[0].type}; quantize takes a float model")
    _, height, width, channels = inputs[0].shape
    if channels != 3:
        raise ModelError(f"{src}: input has {channels} channels; quantize feeds RGB images")
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_int8_{args.granularity.replace('-', '')}.tflite")
    check_output(src, out)
    low, high = 0.0, 1.0
    if args.input_range:
        try:
            low, high = (float(v) for v in args.input_range.split(","))
        except ValueError:
            raise ConfigError(f"--input-range expects LOW,HIGH, e.g. -1,1 (got {args.input_range!r})") from None
    files = list_images(args.calib)
    if len(files) < args.min_images:
        raise ConfigError(
            f"--calib: {len(files)} images in {args.calib}; calibration needs at least {args.min_images} "
            "(Axis: about 100 representative images)"
        )
    rng = np.random.default_rng(0)
    order = rng.permutation(len(files))
    n_hold = max(1, round(len(files) * args.holdout)) if args.holdout > 0 else 0
    held = [files[i] for i in sorted(order[:n_hold])]
    calib = [files[i] for i in sorted(order[n_hold:])]
    err = sys.stderr
    print(f"vigil quantize: {src.name} -> {out} ({args.granularity}); calibrating on {len(calib)} images, "
          f"comparing on {len(held)} held out", file=err)
    make = lambda p: to_input(p, height, width, args.resize, low, high, args.color)  # noqa: E731
    try:
        report = quantize.quantize_model(src, out, (make(p) for p in calib), args.granularity)
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"quantisation failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if args.io == "uint8":
        model = fb.load_model(out)
        edits.uint8_io(model)
        quantize.write_model(fb.serialize(model), out)
        report = quantize.describe_model(out, granularity=args.granularity, num_calibration=len(calib))
    if report.float_ops:
        print(f"vigil quantize: warning: ops left in float: {', '.join(report.float_ops)}", file=err)
    print(f"INT8 model: {out} ({report.size} bytes), weights "
          f"{'per-tensor' if report.weights_per_tensor() else 'per-channel'}", file=err)
    for spec in report.inputs + report.outputs:
        print(f"  {spec.describe()}", file=err)
    if held:
        TFLiteModel(out, 1)  # fail here, clearly, if the written model does not load
        agreement = compare.output_agreement(src, out, [make(p) for p in held])
        print(f"INT8 vs float on {len(held)} held-out images:", file=err)
        for a in agreement:
            print(a.line(), file=err)
    chip = args.chip or ("artpec8" if args.granularity == "per-tensor" else "artpec9")
    check = dlpu_check.check_model(out, chip)
    print(check.table())
    return 0 if check.exit_code != 2 else 2
