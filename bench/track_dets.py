"""Raw detections of the default model over the sample clip, and an annotated video of the tracks.

Runs in the app's own environment (it needs the TFLite runtime), not the bench venv:

    .venv/bin/python bench/track_dets.py dump  [--score 0.1] [--out bench/out/vtest_dets.jsonl]
    .venv/bin/python bench/track_dets.py video [--dets bench/out/vtest_dets.jsonl] [--tracker bytetrack]

`dump` runs the configured detector (config/default.yaml unless --config) on every frame
with the decoder's score threshold lowered to --score, so ByteTrack sees the low-score
boxes it is designed to use, and writes one JSON line per frame in the app's JSONL shape
(track_id -1). `bench/track_eval.py dets FILE` then compares every tracker on it.
`video` tracks the dumped detections with a Vigil tracker and writes an annotated MP4
plus a contact sheet PNG of evenly spaced frames to look at.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from app.types import Detections  # noqa: E402

OUT = ROOT / "bench" / "out"


def dump(config: str | None, score: float, out: Path) -> None:
    """Write the detector's raw (untracked) detections for every frame of the configured source."""
    from app.capture import build_source
    from app.config import load_config
    from app.detector import Detector
    from app.sinks import record

    cfg = load_config(config, overrides={"decoder.score_threshold": score, "source.live": False})
    detector = Detector.load(cfg)
    source = build_source(cfg.source)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(out, "w") as f:
        for frame in tqdm(source, total=source.total, desc="detect", unit="frame"):
            f.write(json.dumps(record(frame, detector(frame), detector.labels), separators=(",", ":")) + "\n")
            n += 1
    source.close()
    print(f"wrote {n} frames of detections (score >= {score}) from {cfg.source.uri} to {out}")


def video(dets_path: Path, tracker_type: str, out: Path, clip: str) -> None:
    """Track the dumped detections and draw the tracks on the clip."""
    from app.annotate import annotate
    from app.tracking import build_tracker
    from app.tracking.bytetrack import Config as ByteTrackConfig
    from app.tracking.sort import Config as SortConfig

    tracker = build_tracker(ByteTrackConfig() if tracker_type == "bytetrack" else SortConfig())
    records = [json.loads(line) for line in open(dets_path) if line.strip()]
    cap = cv2.VideoCapture(str(ROOT / clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    picks = set(np.linspace(0, len(records) - 1, 12).astype(int).tolist())
    tiles = []
    for k, rec in enumerate(tqdm(records, desc="annotate", unit="frame")):
        ok, img = cap.read()
        if not ok:
            break
        objs = rec["objects"]
        d = Detections(
            np.array([o["box"] for o in objs], np.float32).reshape(-1, 4),
            [o["score"] for o in objs],
            [o["class_id"] for o in objs],
        )
        tracked = tracker.update(d, rec["timestamp"])
        frame = annotate(img, tracked, ["person"])
        cv2.putText(frame, f"frame {k}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        writer.write(frame)
        if k in picks:
            tiles.append(cv2.resize(frame, (w // 2, h // 2)))
    writer.release()
    cap.release()
    while len(tiles) % 3:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles), 3)])
    cv2.imwrite(str(out.with_suffix(".png")), sheet)
    s = tracker.stats
    print(f"{tracker_type}: {s.tracks_confirmed} IDs over {s.frames} frames; wrote {out} and {out.with_suffix('.png')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--config", help="Vigil config YAML (default: built-in defaults)")
    d.add_argument("--score", type=float, default=0.1, help="decoder score threshold for the dump")
    d.add_argument("--out", type=Path, default=OUT / "vtest_dets.jsonl")
    v = sub.add_parser("video")
    v.add_argument("--dets", type=Path, default=OUT / "vtest_dets.jsonl")
    v.add_argument("--tracker", choices=["bytetrack", "sort"], default="bytetrack")
    v.add_argument("--clip", default="samples/vtest.mp4")
    v.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "dump":
        dump(args.config, args.score, args.out)
    else:
        video(args.dets, args.tracker, args.out or OUT / f"vtest_{args.tracker}.mp4", args.clip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
