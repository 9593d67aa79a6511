"""Draw tracked boxes, ids, labels and scores on a frame (for the video sink and previews)."""
from __future__ import annotations

import cv2
import numpy as np

from app.labels import label_name
from app.shapes import to_pixels
from app.types import Detections, NO_TRACK


def _color(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct colour per track id."""
    h = (int(track_id) * 47) % 180
    hsv = np.uint8([[[h, 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


TAG_FONT, TAG_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.45


def annotate(image: np.ndarray, dets: Detections, labels: list[str]) -> np.ndarray:
    """A copy of `image` with each detection's box and 'id label score' tag.

    Boxes are drawn first, then the tags, placed so that they stay inside the frame and, where
    there is room, do not cover each other (see `place_tags`)."""
    out = image.copy()
    boxes, tags, colors = [], [], []
    for box, score, cls, tid in zip(dets.xyxy, dets.scores, dets.class_ids, dets.track_ids):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = _color(tid) if tid != NO_TRACK else (200, 200, 200)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        label = label_name(labels, cls)
        boxes.append((x1, y1, x2, y2))
        tags.append(f"{'#' + str(tid) + ' ' if tid != NO_TRACK else ''}{label} {score:.2f}")
        colors.append(color)
    sizes = []
    for tag in tags:
        (tw, th), base = cv2.getTextSize(tag, TAG_FONT, TAG_SCALE, 1)
        sizes.append((tw + 4, th + base + 2, base))
    spots = place_tags(boxes, [(w, h) for w, h, _ in sizes], out.shape[1], out.shape[0],
                       order=np.argsort(-np.asarray(dets.scores, np.float64), kind="stable"))
    for (x, y), (w, h, base), tag, color in zip(spots, sizes, tags, colors):
        cv2.rectangle(out, (x, y), (x + w, y + h), color, -1)
        cv2.putText(out, tag, (x + 2, y + h - base - 1), TAG_FONT, TAG_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def place_tags(boxes, sizes, width: int, height: int, order=None) -> list[tuple[int, int]]:
    """Top-left corners for one tag (w, h) per box (x1, y1, x2, y2), inside a width × height frame.

    Tags are placed one by one (in `order`, e.g. most confident first) at the first of: just above
    the box, inside its top edge (each at its left, then its right edge), just below it, inside
    its bottom edge, that covers no tag already placed; when none is free, the one that covers
    the least. Each is shifted to stay inside the frame."""
    spots: list[tuple[int, int] | None] = [None] * len(boxes)
    placed: list[tuple[int, int, int, int]] = []
    for i in (range(len(boxes)) if order is None else order):
        x1, y1, x2, y2 = boxes[i]
        w, h = sizes[i]
        best, best_cover = None, None
        for x, y in ((x1, y1 - h), (x1, y1), (x2 - w, y1 - h), (x2 - w, y1), (x1, y2), (x2 - w, y2),
                     (x1, y2 - h), (x2 - w, y2 - h)):
            x = min(max(x, 0), max(width - w - 1, 0))
            y = min(max(y, 0), max(height - h - 1, 0))
            cover = sum(max(0, min(x + w, px + pw) - max(x, px)) * max(0, min(y + h, py + ph) - max(y, py))
                        for px, py, pw, ph in placed)
            if best_cover is None or cover < best_cover:
                best, best_cover = (x, y), cover
            if cover == 0:
                break
        spots[i] = best
        placed.append((best[0], best[1], w, h))
    return spots


def draw_zones(image: np.ndarray, zones: list[tuple[str, list, int]]) -> None:
    """Outline each zone (name, normalised polygon, objects present) in place, tinted when occupied."""
    h, w = image.shape[:2]
    for name, polygon, count in zones:
        pts = to_pixels(polygon, w, h)
        color = (0, 165, 255) if count else (255, 200, 0)
        if count:
            overlay = image.copy()
            cv2.fillPoly(overlay, [pts], color)
            cv2.addWeighted(overlay, 0.18, image, 0.82, 0, dst=image)
        cv2.polylines(image, [pts], True, color, 2, cv2.LINE_AA)
        x, y = pts.min(axis=0)
        _tag(image, f"{name}: {count}", int(x) + 3, int(y) + 16, color)


def draw_lines(image: np.ndarray, lines: list[tuple[str, tuple, tuple, int, int]]) -> None:
    """Draw each counting line (name, normalised start, end, in, out) in place, with an arrow for 'in'."""
    h, w = image.shape[:2]
    for name, start, end, n_in, n_out in lines:
        p1, p2 = to_pixels([start, end], w, h)
        cv2.line(image, tuple(int(v) for v in p1), tuple(int(v) for v in p2), (255, 0, 255), 2, cv2.LINE_AA)
        mid = (p1 + p2) / 2
        d = (p2 - p1).astype(np.float64)
        normal = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-6)  # towards the 'in' side (right-hand)
        tip = mid + normal * 25
        cv2.arrowedLine(image, tuple(int(v) for v in mid), tuple(int(v) for v in tip), (255, 0, 255), 2,
                        cv2.LINE_AA, tipLength=0.35)
        _tag(image, f"{name} in {n_in} out {n_out}", int(p1[0]) + 3, int(p1[1]) + 16, (255, 0, 255))


def _tag(image: np.ndarray, text: str, x: int, y: int, color) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    x = min(max(x, 0), max(image.shape[1] - tw - 4, 0))
    y = min(max(y, th + base), image.shape[0] - 1)
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 4, y + 1), color, -1)
    cv2.putText(image, text, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)


def draw_regions(image: np.ndarray, views, reason: str = "") -> None:
    """Outline each view the model ran on (x0, y0, w, h in source pixels) in place, with why it ran."""
    for x0, y0, w, h in views:
        cv2.rectangle(image, (x0, y0), (x0 + w - 1, y0 + h - 1), (0, 255, 0), 1)
    if reason and views:
        _tag(image, f"{len(views)} run{'s' if len(views) > 1 else ''}: {reason}", views[0][0] + 3,
             views[0][1] + 16, (0, 255, 0))


def draw_motion(image: np.ndarray, mask: np.ndarray) -> None:
    """Tint red, in place, the pixels the motion detector saw change (`mask` at its own resolution)."""
    if mask is None or not mask.any():
        return
    h, w = image.shape[:2]
    changed = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST) > 0
    image[changed] = (image[changed] * 0.5 + np.array([0, 0, 127])).astype(np.uint8)
