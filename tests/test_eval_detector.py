"""tools/eval_detector.py: per-item pools and the item bootstrap behind --ci."""
import subprocess
import sys

import numpy as np
import pytest

from app.accuracy import FP, TP
from app.config import load_config
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from eval_detector import Pool, bootstrap, by_group, evaluate, evaluate_items  # noqa: E402
from eval_set import load_eval_set  # noqa: E402


def pool(flags: list[int], truth: int, kept: list[bool] | None = None) -> Pool:
    """One item's pool: predictions scored high to low, kept at the operating point unless told."""
    n = len(flags)
    return Pool(scores=[np.linspace(0.9, 0.5, n)], flags=[np.array(flags, np.int8)],
                operating=[np.array(kept if kept is not None else [True] * n, dtype=bool)], truth=truth)


def test_identical_items_give_an_interval_of_one_point():
    per_item = {("s", f"i{k}", "person"): pool([TP, TP, FP], truth=4) for k in range(6)}
    ci = bootstrap(per_item, "person", resamples=200)
    assert ci["recall"] == pytest.approx((0.5, 0.5))
    assert ci["precision"] == pytest.approx((2 / 3, 2 / 3))


def test_interval_covers_the_pooled_value_widens_with_disagreement_and_repeats_with_the_seed():
    # half the pictures are easy (all found), half hard (one of four found): pooled recall 0.625
    per_item = {("s", f"i{k}", "person"): pool([TP] * 4, 4) if k % 2 else pool([TP], 4) for k in range(10)}
    per_item.update({("s", f"i{k}", "vehicle"): pool([], 0) for k in range(10)})
    pooled = by_group(per_item)["person"].result()["recall"]
    lo, hi = bootstrap(per_item, "person", resamples=500)["recall"]
    assert pooled == pytest.approx(0.625)
    assert lo < pooled < hi and hi - lo > 0.2
    assert bootstrap(per_item, "person", resamples=500, seed=3) == bootstrap(per_item, "person", resamples=500, seed=3)


def test_a_group_no_item_has_gives_no_interval():
    per_item = {("s", "a", "person"): pool([FP], 0), ("s", "a", "vehicle"): pool([], 0)}
    assert all(np.isnan(v).all() for v in bootstrap(per_item, "vehicle", resamples=20).values())


def test_per_item_pools_add_up_to_the_per_source_pools():
    items = [it for it in load_eval_set("tune") if it.source in {"vtest", "pypi"}][:6]
    cfg = load_config(ROOT / "config" / "default.yaml", env={})
    per_item = evaluate_items(cfg, items)
    assert {k[1] for k in per_item} == {it.id for it in items}
    per_source = evaluate(cfg, items)
    for g in ("person", "vehicle"):
        assert by_group(per_item)[g].result() == by_group(per_source)[g].result()
    assert by_group(per_item)["person"].result()["tp"] > 0


def test_cli_prints_an_interval_line_per_scored_group():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "eval_detector.py"), "--split", "tune",
                          "--only", "nanodet-pertensor", "--ci", "30"], capture_output=True, text=True, check=True)
    lines = [ln for ln in out.stdout.splitlines() if "95% interval" in ln]
    assert [ln.split()[4] for ln in lines] == ["person", "vehicle"]
    lo, hi = (float(v) for v in lines[0].split("recall ")[1].split()[0].split("-"))
    assert 0 < lo <= hi <= 1
