#!/usr/bin/env python3
"""Check the fixture models in tests/fixtures/models/ against their JSON files.

Runs each model in ai-edge-litert (the runtime Vigil uses; no TensorFlow
needed), decodes the outputs with a plain numpy reference decoder and compares
the result with the expected detections stated in the JSON next to the model.

    python tools/check_fixture_models.py [DIR]      # exit status 0 = all match
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

MODELS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "models"


def dequant(interp, detail):
    v = interp.get_tensor(detail["index"]).astype(np.float64)
    scale, zp = detail["quantization"]
    return (v - zp) * scale if scale else v


def run(path, img):
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], img)
    interp.invoke()
    return interp, [dequant(interp, d) for d in interp.get_output_details()]


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(boxes, scores, classes, iou_thr, class_aware):
    order = np.argsort(-scores, kind="stable")
    keep = []
    for i in order:
        if any((not class_aware or classes[k] == classes[i]) and iou(boxes[k], boxes[i]) > iou_thr
               for k in keep):
            continue
        keep.append(i)
    return keep


def decode_yolo(raw, fmt, cfg):
    """Reference decoder. raw: dequantised output; returns list of dicts."""
    if fmt == "yolov5":
        rows = raw[0]                       # [N, 5+C]
        xywh, obj, probs = rows[:, :4], rows[:, 4], rows[:, 5:]
    else:
        rows = raw[0].T                     # [4+C, N] -> [N, 4+C]
        xywh, obj, probs = rows[:, :4], None, rows[:, 4:]
    cls = probs.argmax(axis=1)
    best = probs.max(axis=1)
    if cfg["score"] == "objectness":
        score = obj
    elif cfg["score"] == "objectness*class_prob":
        score = obj * best
    else:
        score = best
    sel = np.nonzero(score >= cfg["score_threshold"])[0]
    boxes = np.stack([xywh[:, 0] - xywh[:, 2] / 2, xywh[:, 1] - xywh[:, 3] / 2,
                      xywh[:, 0] + xywh[:, 2] / 2, xywh[:, 1] + xywh[:, 3] / 2], axis=1)
    boxes = np.clip(boxes, 0.0, 1.0)
    keep = nms(boxes[sel], score[sel], cls[sel], cfg["iou_threshold"], cfg["nms"] == "class_aware")
    return [{"slot": int(sel[k]), "class_id": int(cls[sel[k]]), "score": float(score[sel[k]]),
             "box_xyxy": boxes[sel[k]].tolist()} for k in keep]


def compare(got, want, tol, what):
    errors = []
    if len(got) != len(want):
        return [f"{what}: {len(got)} detections, expected {len(want)}"]
    for i, (g, w) in enumerate(zip(got, want)):
        if g["class_id"] != w["class_id"]:
            errors.append(f"{what}[{i}] class {g['class_id']} != {w['class_id']} ({w['object']})")
        if abs(g["score"] - w["score"]) > tol["score"]:
            errors.append(f"{what}[{i}] score {g['score']:.4f} != {w['score']:.4f} ({w['object']})")
        if np.max(np.abs(np.array(g["box_xyxy"]) - np.array(w["box_xyxy"]))) > tol["box"]:
            errors.append(f"{what}[{i}] box {np.round(g['box_xyxy'], 4)} != {w['box_xyxy']} ({w['object']})")
    return errors


def check_tensor_specs(interp, meta):
    errors = []
    for want, d in zip([meta["input"]] + meta["outputs"],
                       interp.get_input_details() + interp.get_output_details()):
        scale, zp = d["quantization"]
        got = (d["name"], list(map(int, d["shape"])), np.dtype(d["dtype"]).name)
        if got != (want["name"], want["shape"], want["dtype"]):
            errors.append(f"tensor spec {got} != {want}")
        if want["scale"] is not None and (abs(scale - want["scale"]) > 1e-9 or zp != want["zero_point"]):
            errors.append(f"quantisation of {d['name']}: {scale},{zp} != {want['scale']},{want['zero_point']}")
    return errors


def images(shape):
    rng = np.random.default_rng(123)
    return {
        "zeros": np.zeros(shape, np.uint8),
        "ones255": np.full(shape, 255, np.uint8),
        "noise": rng.integers(0, 256, shape, dtype=np.uint8),
        "gradient": np.broadcast_to(np.linspace(0, 255, shape[2]).astype(np.uint8)[None, None, :, None], shape).copy(),
    }


def check_model(json_path):
    meta = json.loads(json_path.read_text())
    path = json_path.with_suffix(".tflite")
    tol = meta["tolerance"]
    errors = []
    if path.stat().st_size >= 300_000:
        errors.append(f"{path.name} is {path.stat().st_size} bytes (>= 300 KB)")
    for img_name, img in images(tuple(meta["input"]["shape"])).items():
        interp, outs = run(path, img)
        if img_name == "zeros":
            errors += check_tensor_specs(interp, meta)
        if meta["format"] in ("yolov5", "yolov8"):
            for cfg in meta["decodings"]:
                got = decode_yolo(outs[0], meta["format"], cfg)
                errors += compare(got, cfg["detections"], tol, f"{path.name}/{img_name}/{cfg['name']}")
                slots = {o["id"]: o["slot"] for o in meta["objects"]}
                for g, w in zip(got, cfg["detections"]):
                    if g["slot"] != slots[w["object"]]:
                        errors.append(f"{path.name}/{cfg['name']}: {w['object']} found at slot {g['slot']}")
        else:
            boxes, classes, scores, count = outs
            n = int(count[0])
            rows = [{"class_id": int(classes[0, i]), "score": float(scores[0, i]),
                     "box_xyxy": [float(boxes[0, i, 1]), float(boxes[0, i, 0]),
                                  float(boxes[0, i, 3]), float(boxes[0, i, 2])]} for i in range(n)]
            errors += compare(rows, meta["model_output"]["rows"], tol, f"{path.name}/{img_name}/model_output")
            for cfg in meta["decodings"]:
                got = [r for r in rows if r["score"] >= cfg["score_threshold"]]
                errors += compare(got, cfg["detections"], tol, f"{path.name}/{img_name}/{cfg['name']}")
    return errors


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else MODELS
    files = sorted(folder.glob("*.json"))
    if not files:
        print(f"no JSON files in {folder}")
        return 1
    failed = False
    for f in files:
        errs = check_model(f)
        print(f"{f.with_suffix('.tflite').name}: {'OK' if not errs else 'FAIL'}")
        for e in errs:
            print("   ", e)
        failed |= bool(errs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
