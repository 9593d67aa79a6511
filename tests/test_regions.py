"""View planners (app.regions): fixed plan unchanged, motion, regions around motion and tracks."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from app.config import load_config
from app.detector import Detector
from app.errors import ConfigError
from app.preprocess import plan_views
from app.regions import PLANNERS, build_planner
from app.regions.config import MotionConfig
from app.regions.fixed import Config as FixedPlannerConfig
from app.regions.guided import Config as RegionsPlannerConfig
from app.regions.motion import MotionDetector
from app.regions.planner import FixedPlanner, RegionPlanner, cluster, crops
from app.tracking.predicted import TrackPredictions
from app.types import Frame
from tests.conftest import ROOT

MODEL = (416, 416)
FPS = 10.0


def scene(w: int = 1280, h: int = 720, seed: int = 0) -> np.ndarray:
    """A textured grey still image (sensor-like noise does not change between frames)."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(110, 25, (h, w, 3)), 0, 255).astype(np.uint8)


def with_blob(img: np.ndarray, x: int, y: int, w: int = 40, h: int = 90) -> np.ndarray:
    out = img.copy()
    out[y : y + h, x : x + w] = (230, 230, 230)
    return out


def regions(**kw) -> RegionPlanner:
    return RegionPlanner(RegionsPlannerConfig(**kw), MODEL)


def one_track(xyxy, stationary: bool, track_id: int = 1, matched: bool = True) -> TrackPredictions:
    b = np.array([xyxy], np.float64)
    return TrackPredictions(np.array([track_id]), b, b.copy(), np.array([0.8], np.float32), np.array([0], np.int32),
                  np.array([matched]), np.array([stationary]))


def contains(view, box) -> bool:
    x1, y1, x2, y2 = box
    return view.x0 <= x1 and view.y0 <= y1 and x2 <= view.x0 + view.w and y2 <= view.y0 + view.h


# ---- fixed: today's plan ---------------------------------------------------------------------

OLD_TILING = {"enabled": None, "auto_scale": 4.0, "tile_size": 832, "overlap": 0.25, "full_frame": True,
              "merge_threshold": 0.6, "merge_metric": "ios"}  # preprocess.tiling before the planners


def todays_views(size, model_size, mode, t: dict):
    """The views Detector.views planned before the planners (its code, kept here as the reference)."""
    mw, mh = model_size
    tiles = t["enabled"] if t["enabled"] is not None else max(size) >= t["auto_scale"] * max(mw, mh)
    return plan_views(size[0], size[1], mw, mh, mode, t["tile_size"] if tiles else None, t["overlap"], t["full_frame"])


def test_fixed_planner_has_exactly_the_old_tiling_keys_and_defaults():
    assert {k: f.default for k, f in FixedPlannerConfig.model_fields.items() if k != "type"} == OLD_TILING


def test_old_tiling_keys_set_the_fixed_planner():
    cfg = load_config(ROOT / "config" / "default.yaml", {"preprocess.tiling.tile_size": 256}, env={})
    assert cfg.preprocess.planner.type == "fixed" and cfg.preprocess.planner.tile_size == 256
    old = load_config(ROOT / "tests" / "fixtures" / "default-before-plugins.yaml", env={})
    assert old.preprocess.planner == FixedPlannerConfig()


@pytest.mark.parametrize("tiling", [{}, {"enabled": True}, {"enabled": False}, {"enabled": True, "tile_size": 416},
                                    {"enabled": True, "full_frame": False, "overlap": 0.5},
                                    {"auto_scale": 2.0, "tile_size": 300}])
def test_fixed_plan_is_unchanged_from_before_the_planners(tiling):
    over = {f"preprocess.planner.{k}": v for k, v in tiling.items()}
    cfg = load_config(ROOT / "config" / "default.yaml", over, env={})
    det = Detector.load(cfg)
    try:
        assert isinstance(det.planner, FixedPlanner)
        for size in [(768, 576), (1920, 1080), (640, 360), (3840, 2160), (416, 416), (300, 900)]:
            image = np.zeros((size[1], size[0], 3), np.uint8)
            plan = det.plan(Frame(image, 0.0, 0))
            assert plan.views == todays_views(size, det.converter.size, cfg.preprocess.resize, {**OLD_TILING, **tiling})
            assert len(plan.carry) == 0 and plan.views == det.views(size)
    finally:
        det.model.close()


def test_planner_type_selects_the_config_and_unknown_keys_are_errors():
    assert isinstance(PLANNERS.parse({"type": "fixed"}), FixedPlannerConfig)
    assert isinstance(PLANNERS.parse({"type": "regions", "full_sweep": 5}), RegionsPlannerConfig)
    assert isinstance(build_planner({"type": "regions"}, MODEL), RegionPlanner)
    with pytest.raises(ConfigError, match="full_swep"):
        PLANNERS.parse({"type": "regions", "full_swep": 5})
    with pytest.raises(ConfigError, match="stationary_interval"):
        PLANNERS.parse({"type": "fixed", "stationary_interval": 5})


def test_motion_masks_are_validated_like_zone_polygons():
    MotionConfig(masks=[[(0, 0), (0.5, 0), (0.5, 0.5)]])
    with pytest.raises(ValidationError, match="no area"):
        MotionConfig(masks=[[(0, 0), (0.5, 0.5), (1, 1)]])
    with pytest.raises(ValidationError, match="normalised"):
        MotionConfig(masks=[[(0, 0), (2, 0), (1, 1)]])


# ---- motion ----------------------------------------------------------------------------------

def test_moving_blob_is_motion_in_source_pixels():
    det = MotionDetector(MotionConfig())
    bg = scene()
    det(bg)
    m = det(with_blob(bg, 600, 300))
    assert len(m.boxes) == 1 and not m.lighting
    x1, y1, x2, y2 = m.boxes[0]
    assert x1 <= 600 + 8 and y1 <= 300 + 8 and x2 >= 640 - 8 and y2 >= 390 - 8
    assert x2 - x1 < 120 and y2 - y1 < 170  # the blob, not the frame
    assert m.mask.shape == (180, 320)


def test_masks_remove_motion():
    # the mask covers the right half of the frame
    masked = MotionDetector(MotionConfig(masks=[[(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]]))
    bg = scene()
    masked(bg)
    assert not masked(with_blob(bg, 900, 300)).any
    assert masked(with_blob(bg, 200, 300)).any


def test_masked_motion_never_makes_a_region():
    p = regions(motion=MotionConfig(masks=[[(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]]))
    bg = scene()
    p.plan(bg, 0.0)
    for i in range(1, 30):
        assert p.plan(with_blob(bg, 700 + 10 * i, 300), i / FPS).runs == 0


def test_sudden_brightness_change_is_not_a_region_storm():
    p = regions()
    bg = scene()
    for i in range(5):
        p.plan(bg, i / FPS)
    bright = np.clip(bg.astype(np.int16) + 70, 0, 255).astype(np.uint8)
    plan = p.plan(bright, 0.5)
    assert plan.motion.lighting and not plan.motion.any
    assert plan.runs == 0
    # the background restarted from the bright frame: the following frames are still
    runs = [p.plan(bright, 0.6 + i / FPS).runs for i in range(20)]
    assert sum(runs) == 0


# ---- regions ---------------------------------------------------------------------------------

def test_empty_static_scene_has_no_model_runs_between_sweeps():
    p = regions(full_sweep=10.0)
    img = scene()
    runs = [p.plan(img, i / FPS).runs for i in range(250)]  # 25 s
    swept = [i for i, r in enumerate(runs) if r]
    assert swept == [0, 100, 200]  # at start and every full_sweep seconds, nothing in between


def test_moving_blob_yields_a_region_that_contains_it():
    p = regions(full_sweep=100.0, refresh_interval=0.0)
    bg = scene(1920, 1080)
    p.plan(bg, 0.0)
    for i in range(1, 20):
        x, y = 300 + 25 * i, 500
        plan = p.plan(with_blob(bg, x, y), i / FPS)
        assert plan.runs >= 1 and not plan.sweep
        assert any(contains(v, (x, y, x + 40, y + 90)) for v in plan.views)
        assert plan.coverage < 0.5  # a crop, not the whole frame


def test_stationary_tracked_object_is_rechecked_at_the_interval():
    p = regions(full_sweep=1000.0, stationary_interval=2.0)
    img = scene()
    box = (500, 200, 560, 340)
    tracks = one_track(box, stationary=True)
    runs, carried = [], []
    for i in range(61):
        plan = p.plan(img, i / FPS, tracks)
        if plan.runs:
            runs.append(i)
            assert any(contains(v, box) for v in plan.views)
        else:
            carried.append(len(plan.carry))
            np.testing.assert_allclose(plan.carry.xyxy, [box])
    assert runs == [0, 20, 40, 60]
    assert set(carried) == {1}  # carried past every frame the model skipped


def test_moving_track_is_refreshed_on_schedule_and_carried_in_between():
    p = regions(full_sweep=1000.0, refresh_interval=0.3)
    img = scene()
    runs = []
    for i in range(30):
        x = 200 + 10 * i
        plan = p.plan(img, i / FPS, one_track((x, 200, x + 50, 320), stationary=False))
        if plan.runs:
            runs.append(i)
        else:
            assert len(plan.carry) == 1 and plan.carry.xyxy[0, 0] == pytest.approx(x)
    assert runs == list(range(0, 30, 3))


def test_a_carried_moving_track_keeps_its_last_size_at_the_predicted_centre():
    # the filter expects the box to move 20 px right and to grow; the carried box moves, keeps its size
    t = TrackPredictions(np.array([1, 2]), np.array([[120.0, 50, 180, 170], [300, 100, 340, 180]]),
                         np.array([[100.0, 60, 150, 160], [300, 100, 340, 180]]), np.array([0.8, 0.7], np.float32),
                         np.array([0, 0], np.int32), np.array([True, True]), np.array([False, True]))
    c = t.carried(np.array([0, 1]))
    np.testing.assert_allclose(c.xyxy[0], [125, 60, 175, 160])  # centre (150, 110), 50 x 100 as last seen
    np.testing.assert_allclose(c.xyxy[1], [300, 100, 340, 180])  # a still one stays at its last box
    assert c.scores.tolist() == pytest.approx([0.8, 0.7])


def test_refresh_keeps_its_rate_when_the_interval_is_not_a_whole_number_of_frames():
    p = regions(full_sweep=1000.0, refresh_interval=0.25)
    img = scene()
    runs = [i for i in range(21) if p.plan(img, i / FPS, one_track((300, 200, 350, 320), stationary=False)).runs]
    assert np.diff(runs).tolist() == [3, 2] * 4  # 2.5 frames on average


def test_tracked_object_missed_once_is_carried_and_dropped_after_a_second_miss():
    p = regions(full_sweep=1000.0, stationary_interval=100.0, refresh_interval=0.5, hold=1)
    img = scene()
    box = (500, 200, 560, 340)
    p.plan(img, 0.0, one_track(box, stationary=True))  # sweep: the model looks at it
    # the detector missed it: the tracker has it lost (not matched)
    plan = p.plan(img, 0.1, one_track(box, stationary=True, matched=False))
    assert plan.runs == 0 and len(plan.carry) == 1  # carried, held through one miss
    carried = [p.plan(img, i / FPS, one_track(box, stationary=True)) for i in range(2, 5)]
    assert all(len(c.carry) == 1 for c in carried)
    plan = p.plan(img, 0.5, one_track(box, stationary=True))
    assert plan.runs == 1 and "stationary" in plan.reason  # looked at again at the next refresh
    plan = p.plan(img, 0.6, one_track(box, stationary=True, matched=False))  # missed again
    assert plan.runs == 0 and len(plan.carry) == 0


def test_new_motion_away_from_what_the_model_saw_is_looked_at_at_once():
    p = regions(full_sweep=1000.0, refresh_interval=1.0)
    bg = scene(1920, 1080)
    p.plan(bg, 0.0)  # sweep
    p.plan(with_blob(bg, 100, 100), 0.1)  # motion: looked at, starts the refresh interval
    plan = p.plan(with_blob(with_blob(bg, 100, 100), 1500, 800), 0.2)
    assert any(contains(v, (1500, 800, 1540, 890)) for v in plan.views)


def test_tentative_track_is_looked_at_next_frame():
    p = regions(full_sweep=1000.0, refresh_interval=5.0)
    img = scene()
    p.plan(img, 0.0)
    plan = p.plan(img, 0.1, one_track((700, 300, 760, 420), stationary=False, track_id=-1))
    assert any(contains(v, (700, 300, 760, 420)) for v in plan.views)
    assert len(plan.carry) == 0  # tentative tracks are never carried


def test_regions_never_leave_the_frame():
    rng = np.random.default_rng(12)
    for _ in range(300):
        w, h = int(rng.integers(100, 4000)), int(rng.integers(100, 3000))
        k = int(rng.integers(1, 12))
        xy = rng.uniform(-200, [w + 200, h + 200], (k, 2))
        wh = rng.uniform(2, [w, h], (k, 2)) * rng.uniform(0.01, 1.0, (k, 1))
        boxes = np.clip(np.concatenate((xy, xy + wh), axis=1), 0, [w, h, w, h])
        need = rng.uniform(50, 2000, k)
        unions, sides = cluster(boxes, need, float(rng.uniform(100, 3000)))
        for x0, y0, cw, ch in crops(unions, sides, (w, h)):
            assert 0 <= x0 and 0 <= y0 and cw >= 1 and ch >= 1 and x0 + cw <= w and y0 + ch <= h
        # and through the planner, with random tracks partly off the frame
        p = regions(full_sweep=1000.0, max_region=float(rng.uniform(0.5, 4)), min_region=float(rng.uniform(0.2, 2)))
        img = np.zeros((h, w, 3), np.uint8)
        p.plan(img, 0.0)
        t = TrackPredictions(np.arange(k) - 1, boxes + rng.uniform(-300, 300, (k, 4)) * [1, 1, 1, 1], boxes,
                   np.full(k, 0.5, np.float32), np.zeros(k, np.int32), rng.random(k) < 0.5, rng.random(k) < 0.5)
        t.xyxy[:, 2:] = np.maximum(t.xyxy[:, 2:], t.xyxy[:, :2] + 1)
        for v in p.plan(img, 0.1, t).views:
            assert 0 <= v.x0 and 0 <= v.y0 and v.x0 + v.w <= w and v.y0 + v.h <= h and v.w >= 1 and v.h >= 1


def test_nearby_boxes_share_one_crop_and_distant_ones_do_not():
    boxes = np.array([[100, 100, 140, 190], [200, 120, 240, 210], [1500, 700, 1540, 790]], float)
    unions, sides = cluster(boxes, np.full(3, 416.0), 832.0)
    assert len(unions) == 2
    np.testing.assert_allclose(sorted(sides), [416, 416])


# ---- through the pipeline ----------------------------------------------------------------------

class Plans:
    """Keeps each frame's plan and published objects (a consumer of the pipeline's results)."""

    def __init__(self) -> None:
        self.results = []

    def on_result(self, result) -> None:
        if result.frame is not None:
            self.results.append((len(result.overlay.views), len(result.objects)))

    def close(self) -> None:
        pass


def test_pipeline_with_the_regions_planner_runs_the_model_less_and_still_tracks():
    from app import pipeline

    cfg = load_config(None, {"output.progress": False, "preprocess.planner.type": "regions",
                             "preprocess.planner.refresh_interval": 0.3}, env={})
    seen = Plans()
    summary = pipeline.run(cfg, max_frames=60, consumers=[seen])
    assert summary.frames == 60 and summary.model_runs_per_frame == 1  # a full look at 768x576: the whole frame
    runs = [r for r, _ in seen.results]
    assert summary.mean_runs_per_frame == pytest.approx(np.mean(runs)) and 0 < np.mean(runs) < 0.7
    # frames the model skipped still publish the tracked people (carried by the planner)
    skipped = [n for r, n in seen.results[10:] if r == 0]
    assert skipped and np.mean(skipped) >= 3


def test_regions_and_motion_overlays_draw_on_the_frame():
    from app.annotate import draw_motion, draw_regions

    p = regions(full_sweep=100.0, refresh_interval=0.0)
    bg = scene(1920, 1080)
    p.plan(bg, 0.0)
    img = with_blob(bg, 900, 500)
    overlay = p.plan(img, 0.1).overlay()  # what a result carries for latest.jpg
    drawn = img.copy()
    draw_regions(drawn, overlay.views, overlay.reason)
    x0, y0, w, h = overlay.views[0]
    assert (drawn[y0 + h - 1, x0 : x0 + w] != img[y0 + h - 1, x0 : x0 + w]).any()
    tinted = img.copy()
    draw_motion(tinted, overlay.motion)
    assert (tinted[540, 920] != img[540, 920]).any() and (tinted[100, 100] == img[100, 100]).all()
