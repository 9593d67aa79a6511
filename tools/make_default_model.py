#!/usr/bin/env python3
"""Build Vigil's default person detectors: MediaPipe's BlazePose detector as full-integer INT8.

Writes models/person_detect_int8_pertensor.tflite (ARTPEC-8) and
models/person_detect_int8_perchannel.tflite (ARTPEC-7/9), then compares both with the
float model and times them. Run from anywhere: python tools/make_default_model.py
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.backends.tflite import TFLiteModel  # noqa: E402
from app.decoders.mediapipe import AnchorOptions, generate_anchors  # noqa: E402
from app.errors import ModelError, SourceError, VigilError  # noqa: E402
from app.modeltools import compare, quantize  # noqa: E402

log = logging.getLogger("make_default_model")

MEDIAPIPE = "mediapipe==0.10.21"
WHEEL_PLATFORM = "manylinux_2_28_x86_64"
WHEEL_MEMBER = "mediapipe/modules/pose_detection/pose_detection.tflite"
FLOAT_SHA256 = "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"

# Frames 400-794 of the sample clip are the hand-labelled evaluation set: never read them here.
FIRST_RESERVED_FRAME = 400
INPUT_SIZE = 224
REGRESSORS, SCORE_LOGITS, SCORES = "Identity", "Identity_1", "Identity_1_sigmoid"
# Sigmoid(-16) = 1e-7 and sigmoid(4) = 0.98: the int8 range spends its 256 steps on
# the logits that matter instead of on -560..+4.
LOGIT_RANGE = (-16.0, 4.0)
# Confident anchors' regressor values stayed within about +-232 px even for people
# filling the crop; the calibrated range (about -860..750) would give a 6.3 px step.
REGRESSOR_RANGE = (-256.0, 256.0)
BUILDS = {
    # name: (granularity, weight clipping). MSE clipping pays off only per-tensor.
    "person_detect_int8_pertensor.tflite": ("per-tensor", "mse"),
    "person_detect_int8_perchannel.tflite": ("per-channel", "min-max"),
}


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def default_cache_dir() -> Path:
    """Where the downloaded float model is kept ($XDG_CACHE_HOME/vigil)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vigil"


def fetch_float_model(cache_dir: Path) -> Path:
    """Return the float pose_detection.tflite, downloading the MediaPipe wheel (not installing it) if needed."""
    target = cache_dir / "pose_detection.tflite"
    if not target.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            command = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--platform", WHEEL_PLATFORM, "--python-version", "3.11", MEDIAPIPE, "-d", tmp,
            ]
            log.info("downloading %s (about 36 MB): %s", MEDIAPIPE, " ".join(command))
            result = subprocess.run(command, capture_output=True, text=True)
            wheels = list(Path(tmp).glob("mediapipe-*.whl"))
            if result.returncode != 0 or not wheels:
                raise ModelError(f"pip download {MEDIAPIPE} failed: {result.stderr.strip()[-300:]}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                target.write_bytes(wheel.read(WHEEL_MEMBER))
    digest = sha256(target)
    if digest != FLOAT_SHA256:
        raise ModelError(f"{target}: sha256 {digest} is not the expected {FLOAT_SHA256}; delete it and rerun")
    return target


def to_input(bgr: np.ndarray) -> np.ndarray:
    """A BGR crop as the detector input: 224x224 RGB float32 in [-1, 1]."""
    shrinking = bgr.shape[0] > INPUT_SIZE
    resized = cv2.resize(bgr, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return resized[:, :, ::-1].astype(np.float32) / 127.5 - 1.0


def square_crop(image: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray:
    """Square crop of the given side centred near (cx, cy), shifted to stay inside the image."""
    height, width = image.shape[:2]
    side = int(min(side, height, width))
    x = int(np.clip(cx - side / 2, 0, width - side))
    y = int(np.clip(cy - side / 2, 0, height - side))
    return image[y : y + side, x : x + side]


def pad_to_square(image: np.ndarray) -> np.ndarray:
    """Image centred on a black square canvas (keeps the aspect ratio, as letterboxing does)."""
    height, width = image.shape[:2]
    side = max(height, width)
    canvas = np.zeros((side, side, 3), image.dtype)
    y, x = (side - height) // 2, (side - width) // 2
    canvas[y : y + height, x : x + width] = image
    return canvas


def clip_frames(clip: Path) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame) for the clip's frames before the reserved evaluation range, and no further."""
    capture = cv2.VideoCapture(str(clip))
    if not capture.isOpened():
        raise SourceError(f"cannot open {clip}")
    try:
        for index in range(FIRST_RESERVED_FRAME):
            ok, frame = capture.read()
            if not ok:
                return
            yield index, frame
    finally:
        capture.release()


def calibration_images(clip: Path, still: Path, seed: int = 0) -> list[np.ndarray]:
    """Calibration inputs: 3 random 160-224 px square crops (half mirrored) of every 10th frame < 400, plus the still."""
    rng = np.random.default_rng(seed)
    images = []
    for index, frame in clip_frames(clip):
        if index % 10:
            continue
        height, width = frame.shape[:2]
        for _ in range(3):
            side = int(rng.integers(160, 225))
            y = int(rng.integers(0, height - side + 1))
            x = int(rng.integers(0, width - side + 1))
            image = to_input(frame[y : y + side, x : x + side])
            images.append(image[:, ::-1] if rng.random() < 0.5 else image)
    photo = cv2.imread(str(still))
    if photo is None:
        raise SourceError(f"cannot read {still}")
    whole = to_input(pad_to_square(photo))
    images += [whole, whole[:, ::-1]]
    height, width = photo.shape[:2]
    for cx in (width / 4, width / 2, 3 * width / 4):
        crop = to_input(square_crop(photo, cx, height / 2, height))
        images += [crop, crop[:, ::-1]]
    return images


def check_images(clip: Path, still: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Crops around moving pedestrians in frames 65, 75, ..., 395 (none is a calibration frame), plus the still.

    Returns (pipeline-sized crops of 160-224 px, close-ups where the person fills the crop).
    """
    subtractor = cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25, detectShadows=False)
    pipeline, close = [], []
    for index, frame in clip_frames(clip):
        foreground = subtractor.apply(frame)
        if index < 60 or index % 10 != 5:  # the first frames warm up the background model
            continue
        mask = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        mask = cv2.dilate(mask, np.ones((7, 7), np.uint8))
        count, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8))
        for x, y, w, h, area in stats[1:count]:
            if area < 400 or not 40 <= h <= 250:
                continue
            cx, cy = x + w / 2, y + h / 2
            pipeline.append(to_input(square_crop(frame, cx, cy, np.clip(2.2 * h, 160, 224))))
            close.append(to_input(square_crop(frame, cx, cy, max(64, 1.15 * h))))
    photo = cv2.imread(str(still))
    pipeline.append(to_input(pad_to_square(photo)))
    return pipeline, close


def tensor_table(report: quantize.QuantizeReport) -> list[str]:
    """Lines describing a model's input and outputs."""
    return [f"  in  {spec.describe()}" for spec in report.inputs] + [f"  out {spec.describe()}" for spec in report.outputs]


def main(argv: list[str] | None = None) -> int:
    """Build, check and time both INT8 models; print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, help="sample clip if samples/vtest.mp4 is missing")
    parser.add_argument("--still", type=Path, help="messi5.jpg (default: samples/ or the cache dir)")
    parser.add_argument("--float-model", type=Path, help="pose_detection.tflite (default: download into the cache)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--out-dir", type=Path, default=REPO / "models")
    parser.add_argument("--report", type=Path, help="also write the measurements as JSON here")
    parser.add_argument("--runs", type=int, default=150, help="invokes per model for the timings")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except VigilError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


def _run(args: argparse.Namespace) -> int:
    clip = REPO / "samples" / "vtest.mp4"
    if not clip.exists():
        if args.clip is None:
            raise SourceError(f"{clip} is missing: pass --clip PATH/vtest.avi")
        clip = args.clip
    still = args.still or next(
        (p for p in (REPO / "samples" / "messi5.jpg", args.cache_dir / "messi5.jpg") if p.exists()), None
    )
    if still is None or not still.exists():
        raise SourceError(
            "messi5.jpg not found in samples/ or the cache dir: pass --still PATH "
            "(it is in Debian's opencv-doc, /usr/share/doc/opencv-doc/examples/data/messi5.jpg)"
        )
    float_model = args.float_model or fetch_float_model(args.cache_dir)
    if sha256(float_model) != FLOAT_SHA256:
        raise ModelError(f"{float_model} is not MediaPipe 0.10.21's pose_detection.tflite (sha256 differs)")

    prepared = quantize.prepare_float_model(
        float_model,
        sigmoid_outputs={SCORE_LOGITS: SCORES},
        signature_outputs={REGRESSORS: "regressors", SCORES: "scores"},
    )
    images = calibration_images(clip, still)
    log.info("calibration set: %d images from %s (frames < %d) and %s", len(images), clip, FIRST_RESERVED_FRAME, still)
    qsvs = quantize.calibrate(prepared, images)
    calibrated = {name: quantize.recorded_range(qsvs, name) for name in (REGRESSORS, SCORE_LOGITS)}
    forced = quantize.force_ranges(prepared, qsvs, {SCORE_LOGITS: LOGIT_RANGE, REGRESSORS: REGRESSOR_RANGE})

    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "pose_detection_float32_sigmoid.tflite"
        float_path.write_bytes(prepared)
        reports = {}
        for name, (granularity, clipping) in BUILDS.items():
            out = quantize.write_model(
                quantize.quantize_calibrated(prepared, qsvs, granularity, clipping), args.out_dir / name
            )
            report = quantize.describe_model(out, granularity=granularity, num_calibration=len(images))
            report.calibrated_ranges, report.forced_ranges = calibrated, forced
            reports[name] = report
            if report.float_ops:
                raise ModelError(f"{name}: ops left in float: {report.float_ops}")
            if report.inputs[0].type != "INT8":
                raise ModelError(f"{name}: input is {report.inputs[0].type}, expected INT8")
            if not (report.weights_per_tensor() if granularity == "per-tensor" else report.weights_per_channel()):
                raise ModelError(f"{name}: weights are not {granularity}: {report.weight_scales}")

        pipeline, close = check_images(clip, still)
        anchors = generate_anchors(AnchorOptions(), 224, 224)  # pose_detection's anchors
        reference = TFLiteModel(float_path, 1)
        agreement = {
            name: {
                label: compare.compare_detectors(
                    reference, TFLiteModel(r.path, 1), crops, anchors, reference_logits=False, keypoint_box=(0, 1)
                )
                for label, crops in (("pipeline crops", pipeline), ("close-ups", close))
            }
            for name, r in reports.items()
        }
        kernels = {name: compare.kernel_step_differences(r.path, pipeline[::10]) for name, r in reports.items()}
        timed = {"float (original fp16 file)": float_model, "float32 repaired + sigmoid": float_path}
        timed.update({name: r.path for name, r in reports.items()})
        timings = dict(zip(timed, compare.time_invoke(list(timed.values()), 1, args.runs)))

    print(f"float model {float_model} sha256 {FLOAT_SHA256}")
    print(f"clip {clip} sha256 {sha256(clip)}; still {still} sha256 {sha256(still)}")
    print(f"calibration: {len(images)} images; calibrated ranges {calibrated}; forced {forced}")
    for name, report in reports.items():
        print(f"{report.path}  {report.size} bytes  sha256 {report.sha256}")
        print(f"  {report.granularity}, weights: {quantize.describe_weight_scales(report.weight_scales)}")
        print(f"  ops: {report.op_counts}")
        print("\n".join(tensor_table(report)))
        steps = ", ".join(f"mean {mean:.2f} max {top:.0f}" for mean, top in kernels[name])
        print(f"  XNNPACK vs reference kernels, output difference in steps (regressors; scores): {steps}")
        for label, result in agreement[name].items():
            print(f"  vs float on {label}: {result.describe()}")
    print("invoke time, 1 thread, median of %d (ms): %s" % (args.runs, {k: round(v, 2) for k, v in timings.items()}))
    if args.report:
        args.report.write_text(json.dumps({
            "float_model": str(float_model),
            "clip": str(clip),
            "clip_sha256": sha256(clip),
            "still_sha256": sha256(still),
            "calibration_images": len(images),
            "models": {name: asdict(r) for name, r in reports.items()},
            "agreement": {n: {k: asdict(v) for k, v in a.items()} for n, a in agreement.items()},
            "kernel_step_differences": kernels,
            "timings_ms": timings,
        }, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
