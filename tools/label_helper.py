#!/usr/bin/env python3
"""Helper for hand-labelling people in samples/vtest.mp4.

Dev-time tool. It proposes boxes and renders images for a person to check.
It does not produce labels by itself.

Sub-commands:
  frame     save one frame (optionally upscaled) as PNG
  propose   proposals from MOG2 background subtraction (+ HOG), printed as
            JSON and rendered over the frame with a 50 px grid
  zoom      enlarged crop of a region with a fine pixel grid, optional boxes
  render    draw the boxes of a labels JSON (persons green, ignore orange)
            over each labelled frame, plus an optional enlarged crop per box

Examples:
  python tools/label_helper.py propose 410 --out /tmp/lab
  python tools/label_helper.py zoom 410 290 195 330 300 --scale 4 --step 10 \
      --minor 2 --rulers --boxes '[[300,207,317,290]]' --out /tmp/z.png
  python tools/label_helper.py render tests/data/vtest_labels.json --out /work/review/labels
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = REPO / "samples" / "vtest.mp4"

GREEN = (0, 200, 0)
ORANGE = (0, 140, 255)
RED = (0, 0, 255)
CYAN = (255, 255, 0)
MAGENTA = (255, 0, 255)


# --------------------------------------------------------------------------- io
def read_frames(clip: Path, upto: int):
    """Yield (index, frame) for frames 0..upto inclusive, read in order."""
    cap = cv2.VideoCapture(str(clip))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {clip}")
    idx = 0
    try:
        while idx <= upto:
            ok, frame = cap.read()
            if not ok:
                raise SystemExit(f"{clip}: frame {idx} unreadable")
            yield idx, frame
            idx += 1
    finally:
        cap.release()


def get_frame(clip: Path, index: int) -> np.ndarray:
    """Frame `index`, decoded sequentially (exact, no seek inaccuracy)."""
    frame = None
    for _, frame in read_frames(clip, index):
        pass
    assert frame is not None
    return frame


def get_frames(clip: Path, indices) -> dict[int, np.ndarray]:
    wanted = set(indices)
    out = {}
    for i, f in read_frames(clip, max(wanted)):
        if i in wanted:
            out[i] = f.copy()
    return out


# -------------------------------------------------------------------- proposals
def mog2_proposals(clip: Path, index: int, min_area: int = 250, history: int = 300):
    """Foreground blobs at `index` from MOG2 learned over the preceding frames.

    Returns (boxes, mask); boxes are [x1, y1, x2, y2] (inclusive-exclusive).
    """
    sub = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=16,
                                             detectShadows=True)
    mask = None
    start = max(0, index - history)
    for i, frame in read_frames(clip, index):
        if i < start:
            continue
        mask = sub.apply(frame)
    assert mask is not None
    fg = np.where(mask == 255, 255, 0).astype(np.uint8)  # drop shadows (127)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE,
                          cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 11)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    boxes = []
    for k in range(1, n):
        x, y, w, h, area = stats[k]
        if area >= min_area:
            boxes.append([int(x), int(y), int(x + w), int(y + h)])
    boxes.sort(key=lambda b: (b[0], b[1]))
    return boxes, fg


def hog_proposals(frame: np.ndarray, upscale: float = 1.5):
    """OpenCV default people detector (64x128 window), run on an upscaled frame
    because people in this clip are often shorter than 128 px.

    OpenCV 5 dropped HOGDescriptor from the main modules (it moved to
    opencv_contrib), so this returns [] with a warning when it is missing.
    """
    if not hasattr(cv2, "HOGDescriptor"):
        print(f"note: cv2 {cv2.__version__} has no HOGDescriptor; HOG skipped",
              file=sys.stderr)
        return []
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    big = cv2.resize(frame, None, fx=upscale, fy=upscale,
                     interpolation=cv2.INTER_LINEAR)
    rects, weights = hog.detectMultiScale(big, winStride=(4, 4), padding=(8, 8),
                                          scale=1.05)
    boxes = []
    for (x, y, w, h), wt in zip(rects, np.ravel(weights) if len(rects) else []):
        boxes.append([int(x / upscale), int(y / upscale),
                      int((x + w) / upscale), int((y + h) / upscale),
                      round(float(wt), 2)])
    return boxes


# -------------------------------------------------------------------- drawing
def _label(img, text, org, color=(255, 255, 255)):
    """Small text with a dark outline, readable on any background."""
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_PLAIN, 0.8, color, 1, cv2.LINE_AA)


def draw_grid(img: np.ndarray, step: int = 50, scale: float = 1.0,
              origin=(0, 0), minor: int | None = None,
              alpha: float = 0.5, labels: bool = True) -> np.ndarray:
    """Grid lines every `step` source px, labelled with source coordinates.

    `scale` and `origin` map source px to image px: img = (src - origin) * scale.
    """
    out = img.copy()
    h, w = out.shape[:2]
    ox, oy = origin

    def lines(step_px, color, thick, label):
        x0 = int(np.ceil(ox / step_px) * step_px)
        for sx in range(x0, int(ox + w / scale) + 1, step_px):
            px = int(round((sx - ox) * scale))
            if thick:
                cv2.line(out, (px, 0), (px, h - 1), color, thick)
            if label:
                _label(out, str(sx), (px + 2, 11))
                _label(out, str(sx), (px + 2, h - 3))
        y0 = int(np.ceil(oy / step_px) * step_px)
        for sy in range(y0, int(oy + h / scale) + 1, step_px):
            py = int(round((sy - oy) * scale))
            if thick:
                cv2.line(out, (0, py), (w - 1, py), color, thick)
            if label:
                _label(out, str(sy), (2, py - 2))
                _label(out, str(sy), (w - 28, py - 2))

    # grid lines are blended in at `alpha` so they do not hide edges
    base = img
    if minor:
        lines(minor, (90, 90, 90), 1, False)
    lines(step, (200, 200, 200), 1, False)
    out = cv2.addWeighted(out, alpha, base, 1 - alpha, 0)
    if labels:
        lines(step, (200, 200, 200), 0, True)  # labels drawn opaque
    return out


def draw_boxes(img: np.ndarray, boxes, color, scale: float = 1.0, origin=(0, 0),
               labels=None, thick: int = 1) -> np.ndarray:
    ox, oy = origin
    for i, b in enumerate(boxes):
        x1, y1, x2, y2 = b[:4]
        p1 = (int(round((x1 - ox) * scale)), int(round((y1 - oy) * scale)))
        p2 = (int(round((x2 - ox) * scale)), int(round((y2 - oy) * scale)))
        cv2.rectangle(img, p1, p2, color, thick)
        text = labels[i] if labels is not None else str(i)
        if text:
            cv2.putText(img, text, (p1[0] + 1, max(p1[1] - 3, 10)),
                        cv2.FONT_HERSHEY_PLAIN, 0.9, color, 1, cv2.LINE_AA)
    return img


def zoom(frame: np.ndarray, x1: int, y1: int, x2: int, y2: int, scale: int = 3,
         step: int = 50, minor: int = 10, boxes=(), color=GREEN,
         ignore=(), rulers: bool = False) -> np.ndarray:
    """Enlarged crop of frame[y1:y2, x1:x2] with a coordinate grid (source px).

    With rulers=True the grid is faint and the coordinates go in margins
    (labels every `step`, ticks every `minor`)."""
    h, w = frame.shape[:2]
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(w, x2), min(h, y2)
    crop = frame[y1:y2, x1:x2]
    big = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    if rulers:
        # faint lines every `step` inside, coordinates in margins (see add_rulers)
        big = draw_grid(big, step=step, scale=scale, origin=(x1, y1), minor=None,
                        alpha=0.25, labels=False)
    else:
        big = draw_grid(big, step=step, scale=scale, origin=(x1, y1), minor=minor)
    if boxes:
        draw_boxes(big, boxes, color, scale=scale, origin=(x1, y1),
                   labels=[""] * len(boxes) if rulers else None)
    if ignore:
        draw_boxes(big, ignore, ORANGE, scale=scale, origin=(x1, y1),
                   labels=[f"i{k}" for k in range(len(ignore))])
    if rulers:
        big = add_rulers(big, scale, (x1, y1), label_step=step, tick_step=minor)
    return big


def add_rulers(img: np.ndarray, scale: float, origin, label_step: int = 10,
               tick_step: int = 5, margin: int = 34) -> np.ndarray:
    """Put the image on a canvas with rulers on all four sides.

    A tick every `tick_step` source px, a longer tick and the coordinate every
    `label_step` px. Labels are centred on their tick, so a feature can be read
    off against the ruler without guessing which side of a line a label is on.
    """
    h, w = img.shape[:2]
    m = margin
    canvas = np.full((h + 2 * m, w + 2 * m, 3), 40, np.uint8)
    canvas[m:m + h, m:m + w] = img
    ox, oy = origin
    font = cv2.FONT_HERSHEY_PLAIN
    x_start = int(np.ceil(ox / tick_step) * tick_step)
    for sx in range(x_start, int(ox + w / scale) + 1, tick_step):
        px = m + int(round((sx - ox) * scale))
        major = sx % label_step == 0
        ln = 8 if major else 4
        for y0, y1 in ((m - ln, m - 1), (m + h, m + h + ln - 1)):
            cv2.line(canvas, (px, y0), (px, y1), (255, 255, 255), 1)
        if major:
            (tw, th), _ = cv2.getTextSize(str(sx), font, 0.8, 1)
            cv2.putText(canvas, str(sx), (px - tw // 2, m - 11), font, 0.8,
                        (255, 255, 255), 1, cv2.LINE_AA)
            cv2.putText(canvas, str(sx), (px - tw // 2, m + h + 10 + th), font, 0.8,
                        (255, 255, 255), 1, cv2.LINE_AA)
    y_start = int(np.ceil(oy / tick_step) * tick_step)
    for sy in range(y_start, int(oy + h / scale) + 1, tick_step):
        py = m + int(round((sy - oy) * scale))
        major = sy % label_step == 0
        ln = 6 if major else 3
        for x0, x1 in ((m - ln, m - 1), (m + w, m + w + ln - 1)):
            cv2.line(canvas, (x0, py), (x1, py), (255, 255, 255), 1)
        if major:
            (tw, th), _ = cv2.getTextSize(str(sy), font, 0.8, 1)
            cv2.putText(canvas, str(sy), (m - 7 - tw, py + th // 2), font, 0.8,
                        (255, 255, 255), 1, cv2.LINE_AA)
            cv2.putText(canvas, str(sy), (m + w + 7, py + th // 2), font, 0.8,
                        (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


# ----------------------------------------------------------------- sub-commands
def cmd_frame(a):
    f = get_frame(a.clip, a.index)
    if a.scale != 1:
        f = cv2.resize(f, None, fx=a.scale, fy=a.scale, interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(a.out), f)
    print(a.out)


def cmd_propose(a):
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    frame = get_frame(a.clip, a.index)
    mog, mask = mog2_proposals(a.clip, a.index, min_area=a.min_area)
    hog = hog_proposals(frame) if a.hog else []
    img = draw_grid(frame, step=50, minor=10 if a.minor else None)
    draw_boxes(img, mog, RED)
    if hog:
        draw_boxes(img, hog, CYAN, labels=[f"h{k}" for k in range(len(hog))])
    cv2.imwrite(str(out / f"f{a.index:03d}_prop.png"), img)
    cv2.imwrite(str(out / f"f{a.index:03d}_mask.png"), draw_grid(
        cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR), step=50))
    cv2.imwrite(str(out / f"f{a.index:03d}_raw.png"), frame)
    print(json.dumps({"index": a.index, "mog2": mog, "hog": hog}))


def cmd_zoom(a):
    frame = get_frame(a.clip, a.index)
    boxes = json.loads(a.boxes) if a.boxes else []
    ignore = json.loads(a.ignore) if a.ignore else []
    img = zoom(frame, a.x1, a.y1, a.x2, a.y2, scale=a.scale, boxes=boxes,
               ignore=ignore, step=a.step, minor=a.minor, rulers=a.rulers)
    cv2.imwrite(str(a.out), img)
    print(a.out)


def cmd_render(a):
    labels = json.loads(Path(a.labels).read_text())
    clip = REPO / labels["clip"] if not Path(labels["clip"]).is_absolute() else Path(labels["clip"])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    idxs = [fr["index"] for fr in labels["frames"]]
    if a.only is not None:
        idxs = [i for i in idxs if i in a.only]
    frames = get_frames(clip, idxs)
    for fr in labels["frames"]:
        i = fr["index"]
        if i not in frames:
            continue
        f = frames[i]
        persons, ignore = fr["persons"], fr.get("ignore", [])
        img = draw_grid(f, step=50) if a.grid else f.copy()
        draw_boxes(img, persons, GREEN)
        draw_boxes(img, ignore, ORANGE, labels=[f"i{k}" for k in range(len(ignore))])
        cv2.putText(img, f"frame {i}: {len(persons)} persons, {len(ignore)} ignore",
                    (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2, cv2.LINE_AA)
        if a.scale != 1:
            img = cv2.resize(img, None, fx=a.scale, fy=a.scale,
                             interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(out / f"f{i:03d}_labels.png"), img)
        if a.crops:
            # one enlarged crop per box, padded, persons then ignores
            for kind, boxes, color in (("p", persons, GREEN), ("i", ignore, ORANGE)):
                for k, b in enumerate(boxes):
                    pad = 12
                    z = zoom(f, b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad,
                             scale=a.crop_scale, step=10, minor=2,
                             boxes=[b], color=color, rulers=True)
                    cv2.imwrite(str(out / f"f{i:03d}_{kind}{k:02d}.png"), z)
        print(out / f"f{i:03d}_labels.png")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    sp = p.add_subparsers(dest="cmd", required=True)

    s = sp.add_parser("frame")
    s.add_argument("index", type=int)
    s.add_argument("--scale", type=float, default=1.0)
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(fn=cmd_frame)

    s = sp.add_parser("propose")
    s.add_argument("index", type=int)
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--min-area", type=int, default=250)
    s.add_argument("--no-hog", dest="hog", action="store_false")
    s.add_argument("--minor", action="store_true", help="10 px minor grid")
    s.set_defaults(fn=cmd_propose)

    s = sp.add_parser("zoom")
    s.add_argument("index", type=int)
    s.add_argument("x1", type=int)
    s.add_argument("y1", type=int)
    s.add_argument("x2", type=int)
    s.add_argument("y2", type=int)
    s.add_argument("--scale", type=int, default=3)
    s.add_argument("--step", type=int, default=50, help="labelled grid step")
    s.add_argument("--minor", type=int, default=10)
    s.add_argument("--rulers", action="store_true",
                   help="coordinates on rulers in the margins, faint grid")
    s.add_argument("--boxes", help="JSON list of [x1,y1,x2,y2]")
    s.add_argument("--ignore", help="JSON list of [x1,y1,x2,y2]")
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(fn=cmd_zoom)

    s = sp.add_parser("render")
    s.add_argument("labels")
    s.add_argument("--out", required=True)
    s.add_argument("--grid", action="store_true")
    s.add_argument("--scale", type=float, default=1.0)
    s.add_argument("--crops", action="store_true")
    s.add_argument("--crop-scale", type=int, default=3)
    s.add_argument("--only", type=int, nargs="*")
    s.set_defaults(fn=cmd_render)

    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
