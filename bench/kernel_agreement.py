"""How much the INT8 models depend on the kernels that run them: XNNPACK (the default delegate)
against TFLite's built-in kernels, on the same letterboxed sample-clip frames.

Prints, per model, the share of raw output values that differ and the largest difference in
quantisation steps, and how many detections at the default config the two runs share (IoU >= 0.9,
same class). The camera's DLPU is a third implementation: expect differences of the same order.

    python bench/kernel_agreement.py [--frames 20]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.backends.tflite import TFLiteModel  # noqa: E402
from app.config import load_config  # noqa: E402
from app.ops import iou_matrix  # noqa: E402
from app.detector import Detector  # noqa: E402
from app.types import Frame  # noqa: E402

MODELS = {
    "nanodet per-tensor (default)": (ROOT / "config" / "default.yaml", {}),
    "nanodet per-channel": (ROOT / "config" / "default.yaml",
                            {"model.path": str(ROOT / "models" / "nanodet_int8_perchannel.tflite")}),
    "blazepose per-tensor": (ROOT / "config" / "blazepose.yaml", {}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()
    cap = cv2.VideoCapture(str(ROOT / "samples" / "vtest.mp4"))
    frames = []
    for i in range(args.frames * 10):
        ok, img = cap.read()
        if not ok:
            break
        if i % 10 == 0:
            frames.append(img)
    cap.release()
    print(f"{len(frames)} frames of samples/vtest.mp4 (every 10th); XNNPACK vs reference kernels")
    print(f"{'model':<30}{'values differing':>18}{'max steps':>11}{'detections shared':>20}")
    for name, (path, over) in MODELS.items():
        cfg = load_config(path, over, env={})
        model = Path(cfg.model.path)
        a_run, b_run = TFLiteModel(model, 1), TFLiteModel(model, 1, reference_kernels=True)
        fast, ref = Detector.load(cfg, model=a_run), Detector.load(cfg, model=b_run)
        differing = total = worst = 0
        shared = seen = 0
        for img in frames:
            frame = Frame(img, 0.0, 0)
            for t in fast.prepare(frame):
                for a, b in zip(a_run.run([t]), b_run.run([t])):
                    d = np.abs(a.astype(np.int32) - b.astype(np.int32))
                    differing += int(np.count_nonzero(d))
                    total += d.size
                    worst = max(worst, int(d.max()))
            da, db = fast(frame), ref(frame)
            seen += max(len(da), len(db))
            if len(da) and len(db):
                m = iou_matrix(da.xyxy, db.xyxy) * (da.class_ids[:, None] == db.class_ids[None, :])
                shared += int((m.max(axis=1) >= 0.9).sum())
        print(f"{name:<30}{differing / max(total, 1):>17.1%}{worst:>11}{shared:>10} of {seen:<8}")


if __name__ == "__main__":
    main()
