"""A model brings its own settings: <model>.yaml beside it, read whenever it is the model, layered
under the user's config (defaults < sidecar < file < VIGIL_… < camera parameters < flags)."""
from __future__ import annotations

import shutil
from argparse import Namespace
from pathlib import Path

import pytest

from app.config import load_config
from app.errors import ConfigError
from app.run_options import load
from tests.conftest import ROOT, run_vigil
from tests.test_cli import assert_one_clean_line

PERSON = "models/person_detect_int8_pertensor.tflite"


def args(**kw) -> Namespace:
    base = dict(config=None, source=None, model=None, backend=None, device=None, fps=None, loop=None, threads=None,
                jsonl=None, save_video=None, max_frames=None, mqtt=None, api=None, set=[], no_progress=True)
    return Namespace(**{**base, **kw})


def decoding(cfg) -> dict:
    """What decides how the model is read and tracked."""
    return {"model": cfg.model.model_dump(exclude={"path"}), "preprocess": cfg.preprocess.model_dump(),
            "decoder": cfg.decoder.model_dump(), "tracker": cfg.tracker.model_dump()}


@pytest.fixture(autouse=True)
def no_vigil_env(monkeypatch):
    import os

    for k in [k for k in os.environ if k.startswith("VIGIL_")]:
        monkeypatch.delenv(k)


@pytest.mark.parametrize("granularity", ["pertensor", "perchannel"])
def test_model_flag_alone_gets_what_config_blazepose_gives(granularity):
    model = f"models/person_detect_int8_{granularity}.tflite"
    by_flag = load(args(model=model))
    by_file = load(args(config="config/blazepose.yaml", model=model))
    assert by_flag.decoder.type == "mediapipe_ssd" and by_flag.model.labels == ["person"]
    assert decoding(by_flag) == decoding(by_file)


def test_the_default_model_brings_the_settings_it_always_had(tmp_path):
    cfg = load(args())
    assert cfg.model.labels.endswith("coco_labels.txt") and cfg.model.color == "bgr"
    plain = load_config(None, {"model.path": str(tmp_path / "nosuch.tflite")})  # no sidecar: defaults
    assert decoding(cfg) | {"model": None} == decoding(plain) | {"model": None}
    side = tmp_path / "pd.yaml"  # a sidecar of another colour order is taken
    shutil.copy(ROOT / PERSON, tmp_path / "pd.tflite")
    side.write_text("model:\n  color: rgb\n")
    assert load_config(None, {"model.path": str(tmp_path / "pd.tflite")}).model.color == "rgb"


def test_the_users_settings_win_over_the_models(tmp_path, monkeypatch):
    cfg = load(args(model=PERSON, set=["decoder.score_threshold=0.6", "preprocess.planner.tile_size=192"]))
    assert cfg.decoder.score_threshold == 0.6 and cfg.preprocess.planner.tile_size == 192
    assert cfg.decoder.type == "mediapipe_ssd" and cfg.preprocess.planner.enabled  # the rest still the model's
    monkeypatch.setenv("VIGIL_DECODER__SCORE_THRESHOLD", "0.55")
    assert load(args(model=PERSON)).decoder.score_threshold == 0.55
    own = tmp_path / "mine.yaml"
    own.write_text("decoder:\n  type: auto\n  score_threshold: 0.4\ntracker: sort\n")
    cfg = load(args(config=str(own), model=PERSON))
    # a section of another type is the user's whole: none of the sidecar's mediapipe or bytetrack keys leak in
    assert cfg.decoder.type == "auto" and cfg.decoder.classes != ["person"] and cfg.tracker.type == "sort"
    assert cfg.model.labels == ["person"]  # model keys still the model's


def test_a_model_named_by_the_config_file_brings_its_sidecar_too(tmp_path):
    own = tmp_path / "c.yaml"
    own.write_text(f"model:\n  path: {PERSON}\n")
    assert load(args(config=str(own))).decoder.type == "mediapipe_ssd"


def copy_model(tmp_path: Path, sidecar: str | None) -> Path:
    model = tmp_path / "pd.tflite"
    shutil.copy(ROOT / PERSON, model)
    if sidecar is not None:
        (tmp_path / "pd.yaml").write_text(sidecar)
    return model


def test_a_sidecar_may_not_say_where_or_how_the_model_runs(tmp_path):
    model = copy_model(tmp_path, "model:\n  path: other.tflite\nmqtt:\n  enabled: true\n")
    with pytest.raises(ConfigError, match=r"pd.yaml: a model's settings file may set .*\(not mqtt, model.path\)"):
        load(args(model=str(model)))
    p = run_vigil("run", "--model", str(model), "--max-frames", "1", "--no-progress")
    assert_one_clean_line(p, 2, "config error", "pd.yaml")


def test_a_bad_value_in_a_sidecar_names_the_file(tmp_path):
    model = copy_model(tmp_path, "decoder:\n  score_threshold: 7\n")
    p = run_vigil("run", "--model", str(model), "--max-frames", "1", "--no-progress")
    assert_one_clean_line(p, 2, "config error", "score_threshold", "pd.yaml")


def test_a_decoder_that_does_not_fit_the_model_is_one_line(tmp_path):
    model = copy_model(tmp_path, "decoder:\n  type: nanodet\n")
    p = run_vigil("run", "--model", str(model), "--max-frames", "1", "--no-progress")
    assert_one_clean_line(p, 3, "model error", "do not fit decoder 'nanodet'", "<model>.yaml")


def test_the_person_model_by_flag_finds_people_on_the_sample(tmp_path):
    out = tmp_path / "o.jsonl"
    p = run_vigil("run", "--model", PERSON, "--max-frames", "3", "--no-progress", "--jsonl", str(out))
    assert p.returncode == 0, p.stderr
    assert "36 model run(s) per frame" in p.stderr  # the sidecar's 160 px tiles
    import json

    objects = [o for ln in out.read_text().splitlines() for o in json.loads(ln)["objects"]]
    assert objects and {o["label"] for o in objects} == {"person"}
