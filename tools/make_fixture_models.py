#!/usr/bin/env python3
"""Build the small INT8 fixture detectors in tests/fixtures/models/.

Run with a Python that has tensorflow-cpu installed (never a runtime
dependency of Vigil):

    /path/to/tf-venv/bin/python tools/make_fixture_models.py

Each model's raw outputs are *designed*, not learned: a tiny convolution path
on the input ends in a Dense layer with near-zero weights (its contribution is
far below half a quantisation step), and a designed constant tensor is added to
it.  The input therefore stays in the graph (the converter cannot fold it
away) while the dequantised outputs equal the designed tensor, whatever image
is fed.  The designed tensors encode a handful of known objects; the expected
detections written to the JSON files are computed here from the design with a
plain numpy reference, not recorded from a model run.

Models written (96x96 RGB uint8 input, 3 classes):

* ssd_postprocess_int8.tflite - INT8 body ending in TFLite_Detection_PostProcess
  (fast, class-agnostic NMS inside the model), float outputs boxes [1,10,4]
  (ymin,xmin,ymax,xmax normalised), classes [1,10], scores [1,10], count [1].
* yolov5_int8.tflite - one uint8 output [1,567,8] rows
  (cx,cy,w,h normalised, objectness, 3 class probabilities).
* yolov8_int8.tflite - one uint8 output [1,7,189]
  (cx,cy,w,h normalised, then 3 class probabilities; no objectness).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "tests" / "fixtures" / "models"

H = W = 96
NUM_CLASSES = 3
SEED = 20240611

# Thresholds used for the expected detections (stated in every JSON file).
SCORE_THRESHOLD = 0.5
IOU_THRESHOLD = 0.5
# No designed score or IoU may sit this close to a threshold, so that
# quantisation can never flip a decision.
MARGIN = 0.04
# Largest allowed difference between a designed value and what the runtime
# returns after dequantisation (the designed values lie on the output grid;
# the only error is the tiny input-dependent path, ~1e-4).
TOLERANCE = {"box": 0.002, "score": 0.002}

# SSD post-process attributes (TF Object Detection API defaults for scales).
SSD_MAX_DETECTIONS = 10
SSD_NMS_SCORE_THRESHOLD = 0.2
SSD_NMS_IOU_THRESHOLD = 0.5
SSD_SCALES = {"y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0}
# Box encodings lie on a 1/32 grid in [-4, 127/32]; the two extremes are placed
# in a background anchor so the calibrated range (hence the INT8 grid) is
# exactly that, with zero point 0.
ENC_STEP = 1.0 / 32.0
ENC_MIN, ENC_MAX = -128 * ENC_STEP, 127 * ENC_STEP

# YOLO grids for a 96x96 input (strides 8, 16, 32).
STRIDES = (8, 16, 32)


# --------------------------------------------------------------------------
# Small geometry helpers (pure numpy; the same maths the tests' reference uses)
# --------------------------------------------------------------------------

def q255(v):
    """Snap values in [0, 1] onto the k/255 grid of a uint8 output."""
    return np.round(np.asarray(v, dtype=np.float64) * 255.0) / 255.0


def xyxy_to_cxcywh(b):
    x1, y1, x2, y2 = b
    return [(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1]


def cxcywh_to_xyxy(b):
    cx, cy, w, h = (float(v) for v in b)
    return [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]


def iou_xyxy(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def greedy_nms(cands, iou_threshold, class_aware):
    """cands: list of dicts with box_xyxy, score, class_id (sorted or not).

    Returns (kept, suppressed) where suppressed maps id -> suppressing id.
    A candidate is dropped when IoU > iou_threshold with a kept, higher
    scoring candidate (of the same class when class_aware).
    """
    order = sorted(cands, key=lambda c: -c["score"])
    kept, suppressed = [], {}
    for c in order:
        killer = None
        for k in kept:
            if class_aware and k["class_id"] != c["class_id"]:
                continue
            if iou_xyxy(k["box_xyxy"], c["box_xyxy"]) > iou_threshold:
                killer = k
                break
        if killer is None:
            kept.append(c)
        else:
            suppressed[c["id"]] = killer["id"]
    return kept, suppressed


def check_margins(objs, what, thresholds=(SCORE_THRESHOLD,)):
    """Fail if any score or pairwise IoU sits near a threshold."""
    for o in objs:
        for key in ("score", "objectness"):
            if key in o:
                for t in thresholds:
                    if abs(o[key] - t) < MARGIN:
                        sys.exit(f"{what}: {o['id']} {key} {o[key]:.3f} too close to {t}")
    for i, a in enumerate(objs):
        for b in objs[i + 1:]:
            v = iou_xyxy(a["box_xyxy"], b["box_xyxy"])
            if v > 0 and abs(v - IOU_THRESHOLD) < MARGIN:
                sys.exit(f"{what}: IoU({a['id']},{b['id']})={v:.3f} too close to {IOU_THRESHOLD}")


def dump_json(obj):
    """json.dumps with indent 2, but flat lists of scalars kept on one line."""
    import re
    text = json.dumps(obj, indent=2)
    text = re.sub(r"\[\n\s+([^\[\]{}]*?)\n\s*\]",
                  lambda m: "[" + re.sub(r",\n\s+", ", ", m.group(1)) + "]", text)
    return text + "\n"


def overlaps(objs):
    """IoU of every overlapping pair of designed objects."""
    out = []
    for i, a in enumerate(objs):
        for b in objs[i + 1:]:
            v = iou_xyxy(a["box_xyxy"], b["box_xyxy"])
            if v > 1e-6:
                out.append({"pair": [a["id"], b["id"]], "iou": round(v, 4)})
    return out


def ordered(o, keys):
    """Copy of dict o with keys in the given order first, floats rounded."""
    out = {}
    for k in keys + [k for k in o if k not in keys]:
        if k in o:
            v = o[k]
            out[k] = r6(v) if isinstance(v, (float, list)) else v
    return out


def r6(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return [r6(x) for x in v]
    return round(float(v), 6)


# --------------------------------------------------------------------------
# Designed objects (normalised xyxy on the 96x96 input)
# --------------------------------------------------------------------------
# Layout shared by the three models (with small per-model changes):
#   a  big, class 0, high score
#   b  class 0, IoU ~0.73 with a, lower score      -> suppressed by NMS
#   c  class 1, alone
#   d  class 2
#   e  class 1, IoU ~0.61 with d (cross-class)     -> suppressed only by
#                                                     class-agnostic NMS
#   f  below the 0.5 threshold
#   g  (YOLOv5) high objectness, weak class prob   -> kept with score=obj,
#                                                     dropped with obj*cls
#      (SSD) small box, score just above threshold

BOX_A = [0.10, 0.15, 0.40, 0.75]
BOX_B = [0.13, 0.18, 0.43, 0.80]
BOX_C = [0.55, 0.10, 0.85, 0.40]
BOX_D = [0.50, 0.55, 0.90, 0.95]
BOX_E = [0.47, 0.52, 0.80, 0.92]
BOX_F = [0.05, 0.80, 0.25, 0.95]
BOX_G = [0.28, 0.84, 0.44, 0.98]


# --------------------------------------------------------------------------
# Keras / TF model construction
# --------------------------------------------------------------------------

def tf_modules():
    import tensorflow as tf
    import keras
    return tf, keras


def build_feature(keras, inp, rng, name):
    """Tiny input-dependent path: conv -> conv -> GAP -> Dense(1) near zero.

    Output shape [batch, 1], values >= 0 and < 1e-4, so it never moves a
    designed output by a quantisation step but keeps the input (and the
    per-tensor INT8 convolutions) in the converted graph.
    """
    L = keras.layers
    c1 = L.Conv2D(8, 3, strides=4, padding="same", activation="relu", name=f"{name}_conv1")
    c2 = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name=f"{name}_conv2")
    gap = L.GlobalAveragePooling2D(name=f"{name}_gap")
    dense = L.Dense(1, activation="relu", name=f"{name}_tiny")
    x = c2(c1(inp))
    x = dense(gap(x))
    c1.set_weights([rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32), np.full(8, 0.05, np.float32)])
    c2.set_weights([rng.normal(0, 0.2, (3, 3, 8, 8)).astype(np.float32), np.full(8, 0.05, np.float32)])
    dense.set_weights([rng.uniform(0.5e-5, 1.0e-5, (8, 1)).astype(np.float32), np.zeros(1, np.float32)])
    return x


def make_const_add_layer(keras):
    class DesignedConstant(keras.layers.Layer):
        """out = designed_tensor + broadcast(feature); feature is ~0."""

        def __init__(self, value, **kw):
            super().__init__(**kw)
            self._value = np.asarray(value, np.float32)

        def build(self, input_shape):
            self.designed = self.add_weight(
                shape=self._value.shape, initializer="zeros", trainable=False, name="designed"
            )
            self.designed.assign(self._value)

        def call(self, feat):
            ops = keras.ops
            rank = len(self._value.shape)
            f = ops.reshape(feat, (-1,) + (1,) * (rank - 1))
            return self.designed + f

        def compute_output_shape(self, input_shape):
            return tuple(self._value.shape)

    return DesignedConstant


def convert(tf, model, rep_fn, uint8_output):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep_fn
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    if uint8_output:
        conv.inference_output_type = tf.uint8
    conv._experimental_disable_per_channel = True
    return conv.convert()


def rep_dataset(lo, hi, seed):
    """Calibration images in [lo, hi]; the first sample hits both ends."""
    def gen():
        rng = np.random.default_rng(seed)
        for i in range(12):
            img = rng.uniform(lo, hi, (1, H, W, 3)).astype(np.float32)
            if i == 0:
                img[0, 0, 0, :] = lo
                img[0, -1, -1, :] = hi
            yield [img]
    return gen


# --------------------------------------------------------------------------
# Model metadata and a TF-side sanity run (raw outputs vs design)
# --------------------------------------------------------------------------

def tensor_spec(d):
    scale, zp = d["quantization"]
    spec = {
        "name": d["name"],
        "index": int(d["index"]),
        "shape": [int(s) for s in d["shape"]],
        "dtype": np.dtype(d["dtype"]).name,
    }
    if scale:
        spec["scale"] = float(scale)
        spec["zero_point"] = int(zp)
    else:
        spec["scale"] = None
        spec["zero_point"] = None
    return spec


def interpreter_for(tf, blob):
    interp = tf.lite.Interpreter(model_content=blob)
    interp.allocate_tensors()
    return interp


def run_raw(interp, img):
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], img)
    interp.invoke()
    outs = []
    for d in interp.get_output_details():
        v = interp.get_tensor(d["index"]).astype(np.float64)
        scale, zp = d["quantization"]
        if scale:
            v = (v - zp) * scale
        outs.append(v)
    return outs


def test_images():
    rng = np.random.default_rng(7)
    return [
        np.zeros((1, H, W, 3), np.uint8),
        np.full((1, H, W, 3), 255, np.uint8),
        rng.integers(0, 256, (1, H, W, 3), dtype=np.uint8),
    ]


def op_names(tf, blob):
    """Operator names and (op, weight dtype, number of weight scales) of CONV_2D/FC ops."""
    from tensorflow.lite.python import schema_py_generated as schema  # type: ignore
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(blob, 0))
    names = []
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    for op in m.subgraphs[0].operators:
        oc = m.operatorCodes[op.opcodeIndex]
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if code == schema.BuiltinOperator.CUSTOM:
            names.append("CUSTOM:" + oc.customCode.decode())
        else:
            names.append(builtin.get(code, str(code)))
    weights = []
    for op in m.subgraphs[0].operators:
        oc = m.operatorCodes[op.opcodeIndex]
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if code in (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.FULLY_CONNECTED):
            t = m.subgraphs[0].tensors[op.inputs[1]]
            weights.append((builtin[code], int(t.type), len(t.quantization.scale)))
    return names, weights


def summarise_ops(names):
    out = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------
# YOLO-style design
# --------------------------------------------------------------------------

def yolo_levels(anchors_per_cell):
    levels, offset = [], 0
    for s in STRIDES:
        n = H // s
        levels.append({"stride": s, "grid": n, "offset": offset})
        offset += n * n * anchors_per_cell
    return levels, offset


def yolo_slot(box_cxcywh, levels, anchors_per_cell, used):
    """Row/column index of the cell holding the box centre, on the level whose
    stride suits the box size (Ultralytics ordering: level, anchor, y, x)."""
    cx, cy, w, h = box_cxcywh
    side = max(w * W, h * H)
    lvl = 0 if side < 32 else (1 if side < 64 else 2)
    L = levels[lvl]
    n = L["grid"]
    gx, gy = min(int(cx * n), n - 1), min(int(cy * n), n - 1)
    for a in range(anchors_per_cell):
        idx = L["offset"] + a * n * n + gy * n + gx
        if idx not in used:
            used.add(idx)
            return idx
    for dx in range(1, n):  # neighbour cell if all anchors taken
        idx = L["offset"] + gy * n + min(gx + dx, n - 1)
        if idx not in used:
            used.add(idx)
            return idx
    raise RuntimeError("no free slot")


def background_rows(levels, anchors_per_cell, rng):
    """A plausible box for every slot: anchor-cell centre, size ~2 strides."""
    rows = []
    for L in levels:
        n, s = L["grid"], L["stride"]
        for a in range(anchors_per_cell):
            for gy in range(n):
                for gx in range(n):
                    cx = (gx + 0.5) / n
                    cy = (gy + 0.5) / n
                    wh = min(1.0, s * (1.5 + a) / W)
                    rows.append([cx, cy, wh * rng.uniform(0.7, 1.3), wh * rng.uniform(0.7, 1.3)])
    return np.clip(np.array(rows), 0.0, 1.0)


def yolo_objects(kind):
    """Designed objects: id, class, xyxy, objectness (v5) and class probs."""
    if kind == "yolov5":
        spec = [
            ("a", BOX_A, 0.90, [0.95, 0.03, 0.02], "kept"),
            ("b", BOX_B, 0.80, [0.90, 0.06, 0.04], "same class as a, IoU > 0.7 with a (see overlaps) -> NMS suppresses"),
            ("c", BOX_C, 0.85, [0.05, 0.90, 0.05], "kept"),
            ("d", BOX_D, 0.76, [0.10, 0.08, 0.85], "kept"),
            ("e", BOX_E, 0.70, [0.05, 0.88, 0.07], "class 1 over d (class 2), IoU ~0.6 (see overlaps) -> suppressed only by class-agnostic NMS"),
            ("f", BOX_F, 0.30, [0.10, 0.80, 0.10], "objectness and score below 0.5"),
            ("g", BOX_G, 0.80, [0.50, 0.30, 0.20], "objectness 0.8 but obj*cls 0.4 -> kept only when score=objectness"),
        ]
    else:
        spec = [
            ("a", BOX_A, None, [0.92, 0.05, 0.03], "kept"),
            ("b", BOX_B, None, [0.81, 0.06, 0.04], "same class as a, IoU > 0.7 with a (see overlaps) -> NMS suppresses"),
            ("c", BOX_C, None, [0.04, 0.88, 0.06], "kept"),
            ("d", BOX_D, None, [0.05, 0.10, 0.77], "kept"),
            ("e", BOX_E, None, [0.03, 0.70, 0.20], "class 1 over d (class 2), IoU ~0.6 (see overlaps) -> suppressed only by class-agnostic NMS"),
            ("f", BOX_F, None, [0.35, 0.10, 0.05], "best class prob below 0.5"),
            ("g", BOX_G, None, [0.10, 0.15, 0.62], "small box, kept"),
        ]
    objs = []
    for oid, box, obj, probs, note in spec:
        cxcywh = [float(v) for v in q255(xyxy_to_cxcywh(box))]
        o = {
            "id": oid,
            "box_cxcywh": cxcywh,
            "box_xyxy": cxcywh_to_xyxy(cxcywh),
            "class_probs": [float(v) for v in q255(probs)],
            "note": note,
        }
        o["class_id"] = int(np.argmax(o["class_probs"]))
        best = o["class_probs"][o["class_id"]]
        if obj is not None:
            o["objectness"] = float(q255(obj))
            o["score"] = o["objectness"] * best
        else:
            o["score"] = best
        objs.append(o)
    return objs


def yolo_decodings(kind, objs):
    """Expected decoder results for the stated configurations."""
    configs = []
    if kind == "yolov5":
        configs.append({
            "name": "obj_x_cls_class_aware",
            "description": "Ultralytics style: score = objectness * best class prob, keep score >= 0.5, per-class NMS at IoU > 0.5",
            "score": "objectness*class_prob", "score_threshold": SCORE_THRESHOLD,
            "iou_threshold": IOU_THRESHOLD, "nms": "class_aware",
        })
        configs.append({
            "name": "obj_x_cls_class_agnostic",
            "description": "score = objectness * best class prob, keep score >= 0.5, class-agnostic NMS at IoU > 0.5",
            "score": "objectness*class_prob", "score_threshold": SCORE_THRESHOLD,
            "iou_threshold": IOU_THRESHOLD, "nms": "class_agnostic",
        })
        configs.append({
            "name": "axis_objectness",
            "description": "Axis acap example style: keep objectness >= 0.5, class-agnostic NMS (by objectness) at IoU > 0.5, label = argmax of class probs; reported score = objectness",
            "score": "objectness", "score_threshold": SCORE_THRESHOLD,
            "iou_threshold": IOU_THRESHOLD, "nms": "class_agnostic",
        })
    else:
        configs.append({
            "name": "class_aware",
            "description": "Ultralytics style: score = best class prob, keep score >= 0.5, per-class NMS at IoU > 0.5",
            "score": "class_prob", "score_threshold": SCORE_THRESHOLD,
            "iou_threshold": IOU_THRESHOLD, "nms": "class_aware",
        })
        configs.append({
            "name": "class_agnostic",
            "description": "score = best class prob, keep score >= 0.5, class-agnostic NMS at IoU > 0.5",
            "score": "class_prob", "score_threshold": SCORE_THRESHOLD,
            "iou_threshold": IOU_THRESHOLD, "nms": "class_agnostic",
        })
    out = []
    for cfg in configs:
        cands, below = [], []
        for o in objs:
            s = o["objectness"] if cfg["score"] == "objectness" else o["score"]
            if s >= cfg["score_threshold"]:
                cands.append({"id": o["id"], "class_id": o["class_id"], "score": s,
                              "box_xyxy": [min(1.0, max(0.0, v)) for v in o["box_xyxy"]]})
            else:
                below.append(o["id"])
        kept, suppressed = greedy_nms(cands, cfg["iou_threshold"], cfg["nms"] == "class_aware")
        cfg = dict(cfg)
        cfg["detections"] = [
            {"object": k["id"], "class_id": k["class_id"], "score": r6(k["score"]), "box_xyxy": r6(k["box_xyxy"])}
            for k in kept
        ]
        cfg["suppressed_by_nms"] = {k: v for k, v in sorted(suppressed.items())}
        cfg["below_score_threshold"] = sorted(below)
        out.append(cfg)
    return out


def design_yolo(kind, rng):
    anchors_per_cell = 3 if kind == "yolov5" else 1
    levels, n = yolo_levels(anchors_per_cell)
    objs = yolo_objects(kind)
    check_margins(objs, kind)

    boxes = background_rows(levels, anchors_per_cell, rng)
    # Sentinel: one background slot carries a full-image box (w = h = 1.0) so
    # the output range is exactly [0, 1] and the uint8 grid is k/255.
    boxes[n - 1] = [0.5, 0.5, 1.0, 1.0]
    boxes = q255(boxes)
    probs = q255(rng.uniform(0.0, 0.08, (n, NUM_CLASSES)))
    probs[0, :] = 0.0  # the range minimum 0 is present
    if kind == "yolov5":
        objness = q255(rng.uniform(0.0, 0.1, (n, 1)))
        objness[0] = 0.0
    used = set()
    for o in objs:
        idx = yolo_slot(o["box_cxcywh"], levels, anchors_per_cell, used)
        o["slot"] = idx
        boxes[idx] = o["box_cxcywh"]
        probs[idx] = o["class_probs"]
        if kind == "yolov5":
            objness[idx] = o["objectness"]
    # Background scores must stay far below every threshold used.
    if kind == "yolov5":
        rows = np.concatenate([boxes, objness, probs], axis=1)  # [N, 5+C]
        tensor = rows[None]
    else:
        cols = np.concatenate([boxes, probs], axis=1).T  # [4+C, N]
        tensor = cols[None]
    return tensor, objs, levels, n


def build_yolo(kind, tf, keras, rng):
    tensor, objs, levels, n = design_yolo(kind, rng)
    inp = keras.Input((H, W, 3), batch_size=1, name="images")
    feat = build_feature(keras, inp, rng, kind)
    Const = make_const_add_layer(keras)
    out = Const(tensor, name=f"{kind}_output")(feat)
    model = keras.Model(inp, out, name=kind)
    blob = convert(tf, model, rep_dataset(0.0, 1.0, SEED), uint8_output=True)
    return blob, tensor, objs, levels, n


# --------------------------------------------------------------------------
# SSD + TFLite_Detection_PostProcess design
# --------------------------------------------------------------------------

SSD_LEVELS = [  # (grid, anchor scale); aspect ratios w/h below
    (6, 0.25),
    (3, 0.50),
]
SSD_ASPECTS = (1.0, 2.0, 0.5)


def ssd_anchors():
    """[A, 4] anchors as (ycenter, xcenter, h, w), normalised."""
    rows = []
    for n, s in SSD_LEVELS:
        for gy in range(n):
            for gx in range(n):
                for ar in SSD_ASPECTS:
                    rows.append([(gy + 0.5) / n, (gx + 0.5) / n, s / np.sqrt(ar), s * np.sqrt(ar)])
    return np.array(rows, np.float32)


def ssd_encode(box_xyxy, anchor):
    x1, y1, x2, y2 = box_xyxy
    yc, xc, h, w = (y1 + y2) / 2, (x1 + x2) / 2, y2 - y1, x2 - x1
    ay, ax, ah, aw = (float(v) for v in anchor)
    return np.array([
        (yc - ay) / ah * SSD_SCALES["y_scale"],
        (xc - ax) / aw * SSD_SCALES["x_scale"],
        np.log(h / ah) * SSD_SCALES["h_scale"],
        np.log(w / aw) * SSD_SCALES["w_scale"],
    ])


def ssd_decode(enc, anchor):
    """TFLite_Detection_PostProcess centre-size decoding (double, then f32)."""
    ty, tx, th, tw = (float(v) for v in enc)
    ay, ax, ah, aw = (float(v) for v in anchor)
    yc = np.float32(ty / SSD_SCALES["y_scale"] * ah + ay)
    xc = np.float32(tx / SSD_SCALES["x_scale"] * aw + ax)
    hh = np.float32(0.5 * np.exp(th / SSD_SCALES["h_scale"]) * ah)
    hw = np.float32(0.5 * np.exp(tw / SSD_SCALES["w_scale"]) * aw)
    # ymin, xmin, ymax, xmax
    return [float(yc - hh), float(xc - hw), float(yc + hh), float(xc + hw)]


def design_ssd(rng):
    anchors = ssd_anchors()
    A = len(anchors)
    spec = [
        ("a", BOX_A, 0, 0.90, "kept"),
        ("b", BOX_B, 0, 0.75, "same class as a, IoU > 0.7 with a (see overlaps) -> suppressed by the in-model NMS"),
        ("c", BOX_C, 1, 0.85, "kept"),
        ("d", BOX_D, 2, 0.70, "kept"),
        ("e", BOX_E, 1, 0.65, "class 1 over d (class 2), IoU ~0.6 (see overlaps) -> suppressed by the in-model (class-agnostic fast) NMS"),
        ("f", BOX_F, 2, 0.30, "emitted by the model (>= its 0.2 score threshold) but below 0.5"),
        ("g", BOX_G, 0, 0.60, "small box, kept"),
    ]
    enc = np.clip(np.round(rng.uniform(-1.0, 1.0, (A, 4)) / ENC_STEP) * ENC_STEP, ENC_MIN, ENC_MAX)
    cls = np.zeros((A, 1 + NUM_CLASSES))
    cls[:, 1:] = q255(rng.uniform(0.0, 0.1, (A, NUM_CLASSES)))
    cls[:, 0] = q255(rng.uniform(0.85, 1.0, A))
    cls[0, 0] = 1.0  # range max 1.0 (background column)
    cls[0, 1:] = 0.0  # range min 0.0
    # Sentinels for the encoding range (background anchor 1).
    enc[1] = [ENC_MIN, ENC_MAX, 0.0, 0.0]
    used = {0, 1}
    objs = []
    for oid, box, cid, score, note in spec:
        best, best_cost = None, None
        for i in range(A):
            if i in used:
                continue
            e = ssd_encode(box, anchors[i])
            cost = float(np.max(np.abs(e)))
            if best_cost is None or cost < best_cost:
                best, best_cost = i, cost
        if best_cost > 3.5:
            sys.exit(f"ssd: no anchor fits {oid} (|enc| {best_cost:.2f})")
        used.add(best)
        e = np.round(ssd_encode(box, anchors[best]) / ENC_STEP) * ENC_STEP
        enc[best] = e
        probs = q255(rng.uniform(0.0, 0.08, NUM_CLASSES))
        probs[cid] = q255(score)
        cls[best, 1:] = probs
        cls[best, 0] = q255(1.0 - score)
        ymin, xmin, ymax, xmax = ssd_decode(e, anchors[best])
        objs.append({
            "id": oid, "anchor": best, "class_id": cid, "score": float(q255(score)),
            "box_encoding": [float(v) for v in e],
            "box_yxyx": [ymin, xmin, ymax, xmax],
            "box_xyxy": [xmin, ymin, xmax, ymax],
            "note": note,
        })
    check_margins(objs, "ssd", (SCORE_THRESHOLD, SSD_NMS_SCORE_THRESHOLD))
    return anchors, enc[None], cls[None], objs


def ssd_expected(objs):
    # Model side: fast NMS = class-agnostic over each anchor's best class.
    cands = [o for o in objs if o["score"] >= SSD_NMS_SCORE_THRESHOLD]
    kept, suppressed = greedy_nms(cands, SSD_NMS_IOU_THRESHOLD, class_aware=False)
    kept = kept[:SSD_MAX_DETECTIONS]
    rows = [{"object": k["id"], "class_id": k["class_id"], "score": r6(k["score"]),
             "box_yxyx": r6(k["box_yxyx"]), "box_xyxy": r6(k["box_xyxy"])} for k in kept]
    dec = [dict(r) for r in rows if r["score"] >= SCORE_THRESHOLD]
    for r in dec:
        r.pop("box_yxyx")
    return {
        "model_output": {
            "count": len(rows),
            "rows": rows,
            "suppressed_by_model_nms": dict(sorted(suppressed.items())),
            "note": "rows are sorted by score; only the first `count` rows are defined "
                    "(the fast-NMS kernel does not clear the rest)",
        },
        "decodings": [{
            "name": "score_threshold",
            "description": "read the first `count` rows, keep score >= 0.5 (no further NMS)",
            "score_threshold": SCORE_THRESHOLD,
            "detections": dec,
            "below_score_threshold": [r["object"] for r in rows if r["score"] < SCORE_THRESHOLD],
        }],
    }


def coral_output_order(blob):
    """Put the subgraph outputs in the post-process op's order and give them
    the Coral names.

    The converter lists the four outputs in a scrambled order (e.g. classes,
    count, boxes, scores); the signature map (output_0..3) is right but
    get_output_details() follows the subgraph order, which Coral/Axis code
    relies on.  This edits only the output list and the tensor names.
    """
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema  # type: ignore
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(blob, 0))
    sg = m.subgraphs[0]
    custom = [op for op in sg.operators
              if m.operatorCodes[op.opcodeIndex].customCode == b"TFLite_Detection_PostProcess"]
    if len(custom) != 1:
        sys.exit("ssd: expected exactly one TFLite_Detection_PostProcess op")
    order = [int(i) for i in custom[0].outputs]
    if sorted(order) != sorted(int(i) for i in sg.outputs) or len(set(order)) != 4:
        sys.exit(f"ssd: op outputs {order} are not the model outputs {list(sg.outputs)} (merged? trap 1)")
    sg.outputs = np.array(order, dtype=np.int32)
    names = ["TFLite_Detection_PostProcess"] + [f"TFLite_Detection_PostProcess:{i}" for i in (1, 2, 3)]
    for t, n in zip(order, names):
        sg.tensors[t].name = n.encode()
    builder = flatbuffers.Builder(len(blob) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def build_ssd(tf, keras, rng):
    anchors, enc, cls, objs = design_ssd(rng)
    attrs = [
        'name: "TFLite_Detection_PostProcess"',
        f'attr {{ key: "max_detections" value {{ i: {SSD_MAX_DETECTIONS} }} }}',
        'attr { key: "max_classes_per_detection" value { i: 1 } }',
        'attr { key: "detections_per_class" value { i: 100 } }',
        'attr { key: "use_regular_nms" value { b: false } }',
        f'attr {{ key: "nms_score_threshold" value {{ f: {SSD_NMS_SCORE_THRESHOLD:f} }} }}',
        f'attr {{ key: "nms_iou_threshold" value {{ f: {SSD_NMS_IOU_THRESHOLD:f} }} }}',
        f'attr {{ key: "y_scale" value {{ f: {SSD_SCALES["y_scale"]:f} }} }}',
        f'attr {{ key: "x_scale" value {{ f: {SSD_SCALES["x_scale"]:f} }} }}',
        f'attr {{ key: "h_scale" value {{ f: {SSD_SCALES["h_scale"]:f} }} }}',
        f'attr {{ key: "w_scale" value {{ f: {SSD_SCALES["w_scale"]:f} }} }}',
        f'attr {{ key: "num_classes" value {{ i: {NUM_CLASSES} }} }}',
    ]
    implements = " ".join(attrs)
    md = SSD_MAX_DETECTIONS

    @tf.function(experimental_implements=implements)
    def postprocess_placeholder(box_encodings, class_predictions, anchors_in):
        # Distinct values and shapes, or TF merges them into one output (trap 1).
        boxes = tf.fill([1, md, 4], 0.25) + 0.0 * tf.reduce_sum(box_encodings)
        classes = tf.fill([1, md], 0.5) + 0.0 * tf.reduce_sum(class_predictions)
        scores = tf.fill([1, md], 0.75) + 0.0 * tf.reduce_sum(anchors_in)
        count = tf.fill([1], 1.0)
        return boxes, classes, scores, count

    class PostProcess(keras.layers.Layer):
        def call(self, box_encodings, class_predictions):
            return postprocess_placeholder(box_encodings, class_predictions, tf.constant(anchors))

        def compute_output_shape(self, box_encodings_shape, class_predictions_shape):
            return (1, md, 4), (1, md), (1, md), (1,)

    inp = keras.Input((H, W, 3), batch_size=1, name="images")
    feat = build_feature(keras, inp, rng, "ssd")
    Const = make_const_add_layer(keras)
    box_out = Const(enc, name="box_encodings")(feat)
    cls_out = Const(cls, name="class_predictions")(feat)
    outs = PostProcess(name="TFLite_Detection_PostProcess")(box_out, cls_out)
    model = keras.Model(inp, list(outs), name="ssd_postprocess")
    blob = convert(tf, model, rep_dataset(-1.0, 1.0, SEED + 1), uint8_output=False)
    blob = coral_output_order(blob)
    return blob, anchors, enc, cls, objs


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def common_header(tf, name, blob, interp, ops, weights):
    inp = tensor_spec(interp.get_input_details()[0])
    inp.update({"layout": "NHWC", "color": "RGB"})
    return {
        "model": name,
        "generator": "tools/make_fixture_models.py",
        "tensorflow_version": tf.__version__,
        "size_bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "input": inp,
        "outputs": [tensor_spec(d) for d in interp.get_output_details()],
        "ops": summarise_ops(ops),
        "weights_per_tensor": all(n == 1 for _, _, n in weights),
        "num_classes": NUM_CLASSES,
        "input_independent": True,
        "input_independent_note": "outputs are designed constants plus an input-dependent term far "
                                  "below half a quantisation step, so any image gives the same detections",
        "tolerance": TOLERANCE,
        "expected_format": "detections are listed by descending score; box_xyxy = (x1, y1, x2, y2) "
                           "normalised to the model input; class_id is 0-based over the C classes",
        "thresholds": {"score": SCORE_THRESHOLD, "iou": IOU_THRESHOLD,
                       "comparison": "keep score >= threshold; NMS drops a box when IoU > threshold"},
    }


def verify_raw(interp, designed, what):
    """Sanity check inside TF: every raw output equals the design."""
    for img in test_images():
        outs = run_raw(interp, img)
        for got, want in zip(outs, designed):
            err = float(np.max(np.abs(got - want)))
            if err > 1e-3:
                sys.exit(f"{what}: raw output differs from design by {err:.4g}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)
    tf, keras = tf_modules()
    keras.utils.set_random_seed(SEED)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []

    # ---- YOLOv5 / YOLOv8 ----
    for kind, fname in (("yolov5", "yolov5_int8.tflite"), ("yolov8", "yolov8_int8.tflite")):
        rng = np.random.default_rng(SEED + (5 if kind == "yolov5" else 8))
        blob, tensor, objs, levels, n = build_yolo(kind, tf, keras, rng)
        interp = interpreter_for(tf, blob)
        verify_raw(interp, [tensor], kind)
        ops, weights = op_names(tf, blob)
        meta = common_header(tf, fname, blob, interp, ops, weights)
        if kind == "yolov5":
            meta["format"] = "yolov5"
            meta["layout"] = "[1, N, 5+C]; row = cx, cy, w, h, objectness, class_prob[0..C-1]"
            meta["description"] = ("Axis model-zoo YOLOv5 style: single uint8 output, rows ordered by "
                                   "stride (8, 16, 32), then anchor (3 per cell), then y, then x")
        else:
            meta["format"] = "yolov8"
            meta["layout"] = "[1, 4+C, N]; column = cx, cy, w, h, class_prob[0..C-1] (no objectness)"
            meta["description"] = ("Ultralytics YOLOv8 TFLite-export style: single uint8 output, "
                                   "channels first, columns ordered by stride (8, 16, 32), then y, then x")
        meta["num_candidates"] = n
        meta["levels"] = levels
        meta["coordinates"] = {
            "units": "normalised",
            "format": "cxcywh",
            "relative_to": f"model input {W}x{H}: multiply x and w by {W}, y and h by {H} for input pixels",
        }
        meta["objects"] = [
            ordered(o, ["id", "slot", "class_id", "score", "objectness", "box_xyxy", "box_cxcywh",
                        "class_probs", "note"])
            for o in objs
        ]
        meta["overlaps"] = overlaps(objs)
        meta["background"] = ("every other slot holds a plausible box with class probs < 0.08"
                              + (" and objectness < 0.1" if kind == "yolov5" else "")
                              + f"; slot {n - 1} is a full-image box (range sentinel)")
        meta["decodings"] = yolo_decodings(kind, objs)
        (args.out / fname).write_bytes(blob)
        (args.out / fname.replace(".tflite", ".json")).write_text(dump_json(meta))
        written.append((fname, len(blob)))

    # ---- SSD with TFLite_Detection_PostProcess ----
    rng = np.random.default_rng(SEED + 1)
    fname = "ssd_postprocess_int8.tflite"
    blob, anchors, enc, cls, objs = build_ssd(tf, keras, rng)
    interp = interpreter_for(tf, blob)
    ops, weights = op_names(tf, blob)
    if "CUSTOM:TFLite_Detection_PostProcess" not in ops:
        sys.exit("ssd: the post-process op was dropped")
    meta = common_header(tf, fname, blob, interp, ops, weights)
    exp = ssd_expected(objs)
    for img in test_images():  # TF-side sanity check against the design
        boxes, classes, scores, count = run_raw(interp, img)
        rows = exp["model_output"]["rows"]
        if int(count[0]) != len(rows):
            sys.exit(f"ssd: count {count[0]} != {len(rows)}")
        for i, r in enumerate(rows):
            if int(classes[0, i]) != r["class_id"] or abs(scores[0, i] - r["score"]) > 1e-3 \
                    or np.max(np.abs(boxes[0, i] - r["box_yxyx"])) > 1e-3:
                sys.exit(f"ssd: row {i} differs from design: {boxes[0, i]}, {classes[0, i]}, {scores[0, i]} vs {r}")
    meta["format"] = "ssd_postprocess"
    meta["description"] = ("Coral/Axis SSD style: INT8 body (box encodings [1,A,4] and class "
                           "predictions [1,A,1+C] with background in column 0) ending in "
                           "CUSTOM TFLite_Detection_PostProcess; float outputs in the order boxes, "
                           "classes, scores, count")
    meta["coordinates"] = {
        "units": "normalised",
        "format": "yxyx (ymin, xmin, ymax, xmax) in the boxes output; expected boxes are also given as xyxy",
        "relative_to": f"model input {W}x{H}",
    }
    meta["postprocess_attributes"] = {
        "max_detections": SSD_MAX_DETECTIONS, "max_classes_per_detection": 1,
        "detections_per_class": 100, "use_regular_nms": False,
        "nms_score_threshold": SSD_NMS_SCORE_THRESHOLD, "nms_iou_threshold": SSD_NMS_IOU_THRESHOLD,
        **SSD_SCALES, "num_classes": NUM_CLASSES,
    }
    meta["anchors"] = {
        "count": int(len(anchors)),
        "layout": "(ycenter, xcenter, h, w) normalised",
        "levels": [{"grid": g, "scale": s} for g, s in SSD_LEVELS],
        "aspect_ratios_w_over_h": list(SSD_ASPECTS),
        "order": "level, then y, then x, then aspect ratio",
    }
    meta["raw_design"] = {
        "box_encodings_grid": ENC_STEP,
        "box_encodings_range": [ENC_MIN, ENC_MAX],
        "class_predictions": "probabilities in [0,1] on the k/255 grid; column 0 = background",
    }
    meta["objects"] = [
        ordered(o, ["id", "anchor", "class_id", "score", "box_xyxy", "box_yxyx", "box_encoding", "note"])
        for o in objs
    ]
    meta["overlaps"] = overlaps(objs)
    meta["background"] = "other anchors: class probs < 0.1 (below the op's 0.2 score threshold), random encodings"
    meta.update(exp)
    (args.out / fname).write_bytes(blob)
    (args.out / fname.replace(".tflite", ".json")).write_text(dump_json(meta))
    written.append((fname, len(blob)))

    for f, size in written:
        print(f"wrote {args.out / f} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
