"""Motion: frame differencing on a shrunk grey image against a running background."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from app.regions.config import MotionConfig
from app.shapes import to_pixels


@dataclass(slots=True)
class Motion:
    """One frame's motion: boxes in source pixels, the changed-pixel mask at motion resolution."""

    size: tuple[int, int]  # (w, h) of the source frame
    boxes: np.ndarray  # (n, 4) float64 xyxy, source pixels
    mask: np.ndarray  # (h, w) uint8, 255 where changed (after masks, before dilation); for drawing
    changed: float = 0.0  # fraction of unmasked pixels changed
    lighting: bool = False  # a lighting change: no boxes, and the background restarted
    blobs: np.ndarray | None = None  # the dilated mask the boxes were found in
    min_area: float = 0.0

    @property
    def any(self) -> bool:
        return len(self.boxes) > 0

    def outside(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes (source pixels) of the motion left once the pixels inside boxes `xyxy` are taken out."""
        if not self.any or len(xyxy) == 0:
            return self.boxes
        mh, mw = self.blobs.shape
        fx, fy = mw / self.size[0], mh / self.size[1]
        rest = self.blobs.copy()
        for x1, y1, x2, y2 in np.asarray(xyxy, np.float64):
            rest[max(int(y1 * fy), 0) : int(np.ceil(y2 * fy)), max(int(x1 * fx), 0) : int(np.ceil(x2 * fx))] = 0
        return _boxes(rest, self.min_area, self.size)


class MotionDetector:
    """Changed pixels against a running average of past frames, grouped into boxes."""

    def __init__(self, cfg: MotionConfig) -> None:
        self.cfg = cfg
        self._bg: np.ndarray | None = None  # float32 running background, motion resolution
        self._size: tuple[int, int] | None = None  # source (w, h) the state belongs to
        self._keep: np.ndarray | None = None  # uint8 255 where motion counts (outside the masks)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def reset(self) -> None:
        """Forget the background (next frame seeds it)."""
        self._bg = None

    def _setup(self, w: int, h: int) -> tuple[int, int]:
        mh = min(self.cfg.height, h)
        mw = max(1, round(w * mh / h))
        self._size = (w, h)
        keep = np.full((mh, mw), 255, np.uint8)
        for poly in self.cfg.masks:
            cv2.fillPoly(keep, [to_pixels(poly, mw, mh)], 0)
        self._keep = keep
        self._bg = None
        return mw, mh

    def _grey(self, image: np.ndarray, mw: int, mh: int) -> np.ndarray:
        # Bilinear down to twice the motion size, then a 2:1 area average: a tenth of the cost of INTER_AREA
        # from full size (0.5 against 6 ms on 1920x1080 here), with little of plain bilinear's aliasing, which
        # on the sample clip made noise blobs and a tenth more model runs.
        if image.shape[0] > 2 * mh:
            image = cv2.resize(image, (2 * mw, 2 * mh), interpolation=cv2.INTER_LINEAR)
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        grey = cv2.resize(grey, (mw, mh), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(grey, (3, 3), 0)

    def __call__(self, image: np.ndarray) -> Motion:
        """Motion in this frame relative to the frames before it; updates the background."""
        h, w = image.shape[:2]
        if self._size != (w, h):
            mw, mh = self._setup(w, h)
        else:
            mh, mw = self._keep.shape
        grey = self._grey(image, mw, mh)
        if self._bg is None:
            self._bg = grey.astype(np.float32)
            return Motion((w, h), np.zeros((0, 4)), np.zeros((mh, mw), np.uint8))
        diff = cv2.absdiff(grey, cv2.convertScaleAbs(self._bg))
        _, changed = cv2.threshold(diff, self.cfg.threshold, 255, cv2.THRESH_BINARY)
        changed = cv2.bitwise_and(changed, self._keep)
        unmasked = max(int(np.count_nonzero(self._keep)), 1)
        share = int(np.count_nonzero(changed)) / unmasked
        if share > self.cfg.lighting_threshold:
            # light switched, sun out of a cloud, iris or IR cut: most of the image changed at once; that is
            # not motion everywhere, and the old background is useless from now on
            self._bg = grey.astype(np.float32)
            return Motion((w, h), np.zeros((0, 4)), changed, share, lighting=True)
        cv2.accumulateWeighted(grey, self._bg, self.cfg.alpha)
        blobs = cv2.dilate(changed, self._kernel, iterations=self.cfg.dilate) if self.cfg.dilate else changed
        return Motion((w, h), _boxes(blobs, self.cfg.min_area, (w, h)), changed, share, False, blobs, self.cfg.min_area)


def _boxes(blobs: np.ndarray, min_area: float, size: tuple[int, int]) -> np.ndarray:
    """Bounding boxes, in source pixels of a frame of `size`, of the blobs of at least min_area pixels."""
    contours, _ = cv2.findContours(blobs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rects = [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= min_area]
    if not rects:
        return np.zeros((0, 4))
    mh, mw = blobs.shape
    w, h = size
    r = np.asarray(rects, np.float64)
    boxes = np.concatenate((r[:, :2], r[:, :2] + r[:, 2:]), axis=1) * [w / mw, h / mh, w / mw, h / mh]
    return np.clip(boxes, 0, [w, h, w, h])
