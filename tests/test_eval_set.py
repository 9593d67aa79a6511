"""The labelled people-and-vehicles evaluation set (tests/data/eval/) is complete and well formed."""
from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import eval_set  # noqa: E402

EVAL = ROOT / "tests" / "data" / "eval"
SPEC = eval_set.load_spec()
ITEMS = SPEC["items"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def loaded():
    return list(eval_set.load_eval_set())


def test_set_has_enough_items_from_enough_sources():
    assert len(ITEMS) >= 40
    assert len({it["source"] for it in ITEMS}) >= 3
    assert len({it["id"] for it in ITEMS}) == len(ITEMS), "ids are unique"


def test_every_source_is_in_both_splits_and_split_evenly():
    per = Counter((it["source"], it["split"]) for it in ITEMS)
    assert {it["split"] for it in ITEMS} == set(eval_set.SPLITS)
    for source in {it["source"] for it in ITEMS}:
        tune, holdout = per[(source, "tune")], per[(source, "holdout")]
        assert tune >= 1 and holdout >= 1, source
        assert abs(tune - holdout) <= 1, (source, tune, holdout)


def test_split_follows_the_recorded_rule():
    """Within a source, ids sorted alternate tune, holdout, ... (README.md, 'Split')."""
    by_source: dict[str, list[dict]] = {}
    for it in ITEMS:
        by_source.setdefault(it["source"], []).append(it)
    for source, items in by_source.items():
        got = [it["split"] for it in sorted(items, key=lambda i: i["id"])]
        assert got == [("tune", "holdout")[k % 2] for k in range(len(got))], source


def test_committed_images_exist_and_match_their_sha256_in_labels_and_readme():
    readme = (EVAL / "README.md").read_text()
    files = [it for it in ITEMS if isinstance(it["image"], str)]
    assert files
    for it in files:
        path = ROOT / it["image"]
        assert path.is_file(), path
        digest = _sha256(path)
        assert digest == it["sha256"], it["id"]
        assert digest in readme, f"{it['id']}: sha256 not in README.md"
    committed = {p.name for p in (EVAL / "images").iterdir()}
    assert committed == {Path(it["image"]).name for it in files}, "no stray or missing images"


def test_images_together_stay_small():
    total = sum(p.stat().st_size for p in (EVAL / "images").iterdir())
    assert total <= 8 * 1024 * 1024


def test_clip_items_use_only_frames_outside_the_calibration_range():
    clips = SPEC["clips"]
    for name, meta in clips.items():
        assert _sha256(ROOT / name) == meta["sha256"], name
    for it in ITEMS:
        if isinstance(it["image"], dict):
            assert it["image"]["clip"] in clips
            assert 400 <= it["image"]["index"] <= 794, it["id"]


def test_boxes_are_inside_the_image_and_not_degenerate():
    for it in ITEMS:
        w, h = it["size"]
        boxes = [o["box"] for o in it["objects"]] + list(it.get("ignore", []))
        for x1, y1, x2, y2 in boxes:
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (it["id"], [x1, y1, x2, y2])
            assert x2 - x1 >= 4 and y2 - y1 >= 4, (it["id"], [x1, y1, x2, y2])


def test_classes_are_coco_names():
    for it in ITEMS:
        for o in it["objects"]:
            assert o["class"] in eval_set.CLASSES, (it["id"], o["class"])
            assert o.get("alt") in (None, *eval_set.CLASSES), (it["id"], o)


def test_old_vtest_person_labels_are_carried_over():
    old = json.loads((ROOT / "tests" / "data" / "vtest_labels.json").read_text())
    new = {it["image"]["index"]: it for it in ITEMS if isinstance(it["image"], dict)}
    for f in old["frames"]:
        it = new[f["index"]]
        persons = [o["box"] for o in it["objects"] if o["class"] == "person"]
        assert persons == f["persons"], f["index"]
        assert it["ignore"] == f["ignore"], f["index"]
        assert any(o["class"] in eval_set.VEHICLES for o in it["objects"]), "parked vehicles are boxed"


def test_each_split_has_people_and_vehicles_and_readme_counts_match():
    cc = eval_set.class_counts(SPEC)
    readme = (EVAL / "README.md").read_text()
    for split in eval_set.SPLITS:
        assert cc[split]["person"] >= 20, split
        assert sum(cc[split][c] for c in eval_set.VEHICLES) >= 5, split
    total = sum(len(it["objects"]) for it in ITEMS)
    assert re.search(rf"\b{len(ITEMS)} items\b", readme), "README states the item count"
    assert re.search(rf"\b{total} boxes\b", readme), "README states the box count"


def test_loader_yields_arrays_that_match_the_labels(loaded):
    assert [i.id for i in loaded] == [it["id"] for it in ITEMS]
    for item, it in zip(loaded, ITEMS):
        w, h = it["size"]
        assert item.image.shape == (h, w, 3) and item.image.dtype == np.uint8, item.id
        assert item.boxes.shape == (len(it["objects"]), 4) and item.boxes.dtype == float
        assert len(item.labels) == len(item.boxes) == len(item.alt_labels)
        assert item.ignore.shape == (len(it["ignore"]), 4)
        assert item.vehicle_mask.sum() == sum(c in eval_set.VEHICLES for c in item.labels)


def test_loader_filters_by_split():
    tune = [i.id for i in eval_set.load_eval_set("tune", sources={"npm-face-api", "pypi"})]
    holdout = [i.id for i in eval_set.load_eval_set("holdout", sources={"npm-face-api", "pypi"})]
    assert tune and holdout and not set(tune) & set(holdout)
    with pytest.raises(ValueError):
        next(eval_set.load_eval_set("train"))


def test_summary_prints_a_row_per_source_and_split(capsys):
    eval_set.main([])
    out = capsys.readouterr().out
    for source in {it["source"] for it in ITEMS}:
        for split in eval_set.SPLITS:
            assert re.search(rf"^{re.escape(source)}\s+{split}\s+\d+", out, re.M), (source, split)


def test_render_draws_boxes_on_a_copy(loaded):
    item = next(i for i in loaded if len(i.boxes) and len(i.ignore))
    before = item.image.copy()
    out = eval_set.render(item)
    assert out.shape == item.image.shape and (out != item.image).any()
    assert (item.image == before).all(), "the item's own image is left alone"
