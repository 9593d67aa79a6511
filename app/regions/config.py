"""Config sections the view planners share: the grid plan (today's `preprocess.tiling` keys), how
detections of overlapping views merge, motion detection. Pydantic only (cheap to import)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.shapes import Point, check_polygon


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# A motion mask is drawn and checked like a zone's polygon (normalised corners, some area).
Polygon = Annotated[list[Point], Field(min_length=3), AfterValidator(check_polygon)]


class GridPlan(_Section):
    """Whole frame and/or a grid of overlapping square tiles: today's `preprocess.tiling` keys."""

    enabled: bool | None = Field(
        None,
        description="run the model on overlapping tiles and merge (finds small objects); none = auto: tiles "
        "only when the frame's long side is at least auto_scale model inputs (bench/tiling_highres.py)",
    )
    auto_scale: float = Field(
        4.0, gt=0.0,
        description="auto tiling: frame long side / model input side from which tiles are used (at 416: 768x576 "
        "is 1.8 and 1280x720 3.1, whole frame, where tiles did not pay; 1920x1080 is 4.6, tiles)",
    )
    tile_size: int = Field(
        832, ge=16,
        description="tile side in source pixels (832: 2x the default model's input; best on 1920x1080, "
        "bench/tiling_highres.py)",
    )
    overlap: float = Field(0.25, ge=0.0, le=0.9, description="fraction of a tile shared with its neighbour")
    full_frame: bool = Field(True, description="also run the model on the whole frame (for large objects)")

    def tiles(self, size: tuple[int, int], model_size: tuple[int, int]) -> bool:
        """Whether a frame of `size` is cut into tiles."""
        if self.enabled is not None:
            return self.enabled
        return max(size) >= self.auto_scale * max(model_size)


class MergeKeys(_Section):
    """How detections of overlapping views are merged (NMS)."""

    merge_threshold: float = Field(
        0.6, gt=0.0, le=1.0, description="overlap above which detections of overlapping views are merged"
    )
    merge_metric: Literal["iou", "ios"] = Field(
        "ios", description="'ios' (intersection over smaller) also merges partial boxes cut by view edges"
    )


class MotionConfig(_Section):
    """Frame differencing on a small grey image against a running background."""

    height: int = Field(
        180, ge=16, le=1080,
        description="height in pixels of the grey image motion is found in (the frame is shrunk to it, aspect kept)",
    )
    threshold: int = Field(
        20, ge=1, le=255, description="grey-level difference from the background above which a pixel has changed",
    )
    min_area: float = Field(
        12.0, ge=0.0,
        description="smallest changed blob that counts as motion, in pixels of the motion image (at height 180, "
        "a 1920x1080 frame is shrunk 6x, so 12 px is about 430 source px, a 15x30 px person)",
    )
    alpha: float = Field(
        0.05, gt=0.0, le=1.0,
        description="weight of the newest frame in the running background: a still object fades into it in "
        "about 1/alpha frames",
    )
    dilate: int = Field(2, ge=0, le=10, description="dilation passes that join the pieces of one moving object")
    lighting_threshold: float = Field(
        0.5, gt=0.0, le=1.0,
        description="fraction of unmasked pixels changed at once above which a frame is a lighting change, "
        "not motion: no motion is reported and the background restarts from this frame",
    )
    masks: list[Polygon] = Field(
        [],
        description="areas where motion is ignored (trees, flags, on-screen clocks): polygons in normalised "
        "image coordinates like zones; objects there are still detected on sweeps and while tracked",
    )


class RegionsKeys(MergeKeys):
    """The keys of the `regions` planner (app.regions.guided)."""

    motion: MotionConfig = Field(default_factory=MotionConfig, description="motion detection")
    sweep: GridPlan = Field(
        default_factory=GridPlan,
        description="the views of a full sweep (the fixed plan: whole frame, or tiles + whole frame)",
    )
    full_sweep: float = Field(
        10.0, gt=0.0,
        description="seconds between full sweeps (and one at start), which find objects that appear without "
        "moving (a parked car)",
    )
    stationary_interval: float = Field(
        5.0, gt=0.0,
        description="seconds between model runs on a tracked object that is not moving; in between its track "
        "is carried at its last box",
    )
    refresh_interval: float = Field(
        0.24, ge=0.0,
        description="seconds between model runs on motion and moving tracked objects the model has already "
        "looked at; in between, tracks are carried at their predicted boxes; new motion elsewhere, new tracks "
        "and due stationary objects are looked at at once; 0: every frame with motion. 0.24 was chosen on the "
        "tuning half: tracked recall within 0.02 of always running (clip) and of the grid (hi-res) at 0.46 runs "
        "per frame on the 10 fps sample clip (the sweep: docs/regions.md, bench/regions.py)",
    )
    hold: int = Field(
        1, ge=0, le=100,
        description="looks in a row at which the detector may miss a tracked object while it is still "
        "carried to the next look (detectors flicker; a parked car missed once is still there); 0: never",
    )
    stationary_speed: float = Field(
        0.1, ge=0.0,
        description="a track whose centre moves slower than this many box heights per second is stationary",
    )
    min_region: float = Field(
        1.0, gt=0.0, le=16.0,
        description="smallest crop side, in model input sides (1: objects are never enlarged)",
    )
    max_region: float = Field(
        2.0, gt=0.0, le=16.0,
        description="largest crop side nearby objects are merged into, in model input sides (2: objects shrink "
        "at most 2x, as on 832-px tiles for a 416 model); one large object may need more",
    )
    context: float = Field(
        1.5, ge=1.0, le=8.0,
        description="crop side at least this many times an object's longer side, so it is seen with its surroundings",
    )
    margin: float = Field(
        0.15, ge=0.0, le=2.0,
        description="boxes are grown by this fraction of their size before planning, so a crop holds an "
        "object that moved further than predicted",
    )
