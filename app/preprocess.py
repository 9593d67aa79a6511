"""Frame -> model input tensors: crop views (whole frame or overlapping tiles), resize/letterbox,
colour order and conversion of pixels into the model's input dtype and quantisation."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from app.modelfile import TensorSpec
from app.errors import ModelError

ResizeMode = Literal["stretch", "letterbox"]
LETTERBOX_FILL = 114  # grey, the value YOLO-family letterboxes use


@dataclass(frozen=True, slots=True)
class View:
    """A rectangle of the source frame and how it lands in the model input.

    model = (source - crop origin) * scale + pad, per axis, in model pixels.
    """

    x0: int
    y0: int
    w: int
    h: int
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    model_w: int
    model_h: int

    def to_source(self, xyxy_norm: np.ndarray) -> np.ndarray:
        """Boxes normalised to the model input (0..1) -> source pixels (float64)."""
        b = np.asarray(xyxy_norm, np.float64).reshape(-1, 4)
        out = np.empty_like(b)
        out[:, 0::2] = (b[:, 0::2] * self.model_w - self.pad_x) / self.scale_x + self.x0
        out[:, 1::2] = (b[:, 1::2] * self.model_h - self.pad_y) / self.scale_y + self.y0
        return out

    def to_model(self, xyxy_src: np.ndarray) -> np.ndarray:
        """Source-pixel boxes -> normalised model-input coordinates (inverse of to_source)."""
        b = np.asarray(xyxy_src, np.float64).reshape(-1, 4)
        out = np.empty_like(b)
        out[:, 0::2] = ((b[:, 0::2] - self.x0) * self.scale_x + self.pad_x) / self.model_w
        out[:, 1::2] = ((b[:, 1::2] - self.y0) * self.scale_y + self.pad_y) / self.model_h
        return out

    def render(self, image: np.ndarray, rgb: bool, out: np.ndarray | None = None) -> np.ndarray:
        """This view's pixels resized into a model-sized uint8 HxWx3 canvas: `out` when given (e.g. the
        input tensor itself), written once, the resize landing in place and only the padding filled."""
        crop = image[self.y0 : self.y0 + self.h, self.x0 : self.x0 + self.w]
        nw, nh = round(self.w * self.scale_x), round(self.h * self.scale_y)
        mw, mh, px, py = self.model_w, self.model_h, self.pad_x, self.pad_y
        if out is None:
            out = np.empty((mh, mw, 3), np.uint8)
        inner = out[py : py + nh, px : px + nw]
        if (nw, nh) != (self.w, self.h):
            # bilinear even when shrinking: INTER_AREA costs ~15x more on a full frame and the
            # detector does not notice the difference (measured on the labelled set)
            _into(inner, cv2.resize(crop, (nw, nh), dst=inner, interpolation=cv2.INTER_LINEAR))
        else:
            inner[...] = crop
        if nh < mh:  # letterbox bands
            out[:py] = LETTERBOX_FILL
            out[py + nh :] = LETTERBOX_FILL
        if nw < mw:
            out[py : py + nh, :px] = LETTERBOX_FILL
            out[py : py + nh, px + nw :] = LETTERBOX_FILL
        if rgb:
            _into(out, cv2.cvtColor(out, cv2.COLOR_BGR2RGB, dst=out))
        return out


def _into(dst: np.ndarray, result: np.ndarray) -> None:
    """OpenCV writes into a dst it can take as it is (the usual case) and returns it; a view it had to copy
    first (an odd stride) comes back as a new array, copied here."""
    if not np.may_share_memory(dst, result):
        dst[...] = result


def make_view(x0: int, y0: int, w: int, h: int, model_w: int, model_h: int, mode: ResizeMode) -> View:
    """The view of rectangle (x0, y0, w, h) resized into a model_w x model_h input."""
    if mode == "stretch":
        return View(x0, y0, w, h, model_w / w, model_h / h, 0, 0, model_w, model_h)
    s = min(model_w / w, model_h / h)
    nw, nh = min(model_w, max(1, round(w * s))), min(model_h, max(1, round(h * s)))
    # use the exact factors of the resize actually done, so mapping back is exact
    return View(x0, y0, w, h, nw / w, nh / h, (model_w - nw) // 2, (model_h - nh) // 2, model_w, model_h)


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Evenly spaced tile origins covering [0, length) with at least `overlap` fraction shared."""
    if tile >= length:
        return [0]
    step = tile * (1.0 - overlap)
    n = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def plan_views(
    frame_w: int,
    frame_h: int,
    model_w: int,
    model_h: int,
    mode: ResizeMode = "letterbox",
    tile_size: int | None = None,
    overlap: float = 0.25,
    full_frame: bool = True,
) -> list[View]:
    """The views to run per frame: the whole frame, and/or a grid of overlapping square tiles."""
    views = []
    if tile_size:
        tw, th = min(tile_size, frame_w), min(tile_size, frame_h)
        for y in tile_starts(frame_h, th, overlap):
            for x in tile_starts(frame_w, tw, overlap):
                views.append(make_view(x, y, tw, th, model_w, model_h, mode))
    if full_frame or not views:
        views.insert(0, make_view(0, 0, frame_w, frame_h, model_w, model_h, mode))
    return views


def infer_input_range(spec: TensorSpec) -> tuple[float, float]:
    """Guess the real-valued input range a quantised model was calibrated for: [0,1], [-1,1] or [0,255]."""
    if not spec.quantized:
        return (0.0, 255.0) if np.issubdtype(spec.dtype, np.integer) else (0.0, 1.0)
    info = np.iinfo(spec.dtype)
    lo, hi = (info.min - spec.zero_point) * spec.scale, (info.max - spec.zero_point) * spec.scale
    candidates = [(0.0, 1.0), (-1.0, 1.0), (0.0, 255.0), (-128.0, 127.0)]
    return min(candidates, key=lambda c: abs(c[0] - lo) + abs(c[1] - hi))


class InputConverter:
    """uint8 pixels -> the model input's dtype via a 256-entry lookup table (quantises once, not per pixel)."""

    def __init__(self, spec: TensorSpec, input_range: tuple[float, float] | None = None) -> None:
        if len(spec.shape) != 4 or spec.shape[0] != 1 or spec.shape[3] != 3:
            raise ModelError(f"model input {spec.name!r} has shape {list(spec.shape)}; expected [1, H, W, 3] (NHWC)")
        self.spec = spec
        self.input_range = tuple(input_range) if input_range else infer_input_range(spec)
        lo, hi = self.input_range
        real = lo + np.arange(256, dtype=np.float64) / 255.0 * (hi - lo)
        if spec.quantized:
            table = spec.quantize(real)
        elif np.issubdtype(spec.dtype, np.floating):
            table = real.astype(spec.dtype)
        else:
            table = np.clip(np.round(real), np.iinfo(spec.dtype).min, np.iinfo(spec.dtype).max).astype(spec.dtype)
        self.identity = spec.dtype == np.uint8 and np.array_equal(table, np.arange(256))
        # cv2.LUT needs a uint8 or float table; int8 goes through its uint8 bit pattern
        self._table = table.view(np.uint8) if spec.dtype == np.int8 else table
        self._cv_ok = self._table.dtype in (np.uint8, np.float32)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the model input."""
        return int(self.spec.shape[2]), int(self.spec.shape[1])

    def tensor(self, view: View, image: np.ndarray, rgb: bool) -> np.ndarray:
        """One view of `image` as the model's input tensor [1,H,W,3]. A uint8 or int8 input is rendered
        straight into the tensor's memory and mapped in place (int8 through its uint8 bit pattern): no
        intermediate image, no float; other dtypes go through the lookup table from a uint8 render."""
        if self.spec.dtype not in (np.uint8, np.int8) or not (self.identity or self._cv_ok):
            return self(view.render(image, rgb))
        out = np.empty((1, *self.spec.shape[1:]), self.spec.dtype)
        pixels = view.render(image, rgb, out[0].view(np.uint8))
        if not self.identity:
            _into(pixels, cv2.LUT(pixels, self._table, dst=pixels))
        return out

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Model-sized uint8 HxWx3 image -> input tensor [1,H,W,3] in the model's dtype."""
        if self.identity:
            out = pixels
        elif self._cv_ok:
            out = cv2.LUT(pixels, self._table)
        else:
            out = self._table[pixels]
        if self.spec.dtype == np.int8:
            out = out.view(np.int8)
        return out[None]
