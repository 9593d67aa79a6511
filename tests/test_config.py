from pathlib import Path

import pytest

from app.config import Config, load_config, resolve_labels
from app.config_render import render_defaults
from app.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_built_in_defaults_validate_without_file():
    cfg = load_config(None, env={})
    assert cfg.model.path.endswith(".tflite")
    assert cfg.tracker.type in ("sort", "bytetrack")


def test_default_yaml_documents_every_key_with_its_default():
    text = (ROOT / "config" / "default.yaml").read_text()
    body = text[text.index("source:"):]
    assert body == render_defaults()[render_defaults().index("source:"):], (
        "config/default.yaml is out of date: run `python tools/gen_default_config.py`"
    )
    assert load_config(ROOT / "config" / "default.yaml", env={}) == Config()


def test_file_then_env_then_cli_precedence(tmp_path):
    p = write(tmp_path, "model:\n  backend: {threads: 2}\nsource:\n  fps: 5\n")
    env = {"VIGIL_MODEL__BACKEND__THREADS": "3", "VIGIL_SOURCE__LOOP": "true", "HOME": "/x"}
    cfg = load_config(p, env=env)
    assert (cfg.model.backend.threads, cfg.source.fps, cfg.source.loop) == (3, 5.0, True)
    cfg = load_config(p, {"model.backend.threads": 4}, env=env)
    assert cfg.model.backend.threads == 4


def test_env_list_values_are_parsed(tmp_path):
    cfg = load_config(None, env={"VIGIL_MODEL__INPUT_RANGE": "[-1, 1]"})
    assert cfg.model.input_range == (-1.0, 1.0)


def test_bad_value_names_key_and_value(tmp_path):
    p = write(tmp_path, "model:\n  backend:\n    threads: 0\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    msg = str(e.value)
    assert msg.startswith("model.backend.threads: ") and "greater than or equal to 1" in msg and "(got 0)" in msg
    assert "\n" not in msg


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"^preprocess\.tilling: unknown key$"):
        load_config(write(tmp_path, "preprocess:\n  tilling: {}\n"), env={})


def test_unknown_env_key_is_named():
    with pytest.raises(ConfigError, match=r"^modle: unknown key"):
        load_config(None, env={"VIGIL_MODLE__PATH": "x"})


def test_tracker_errors_do_not_show_the_union_tag(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "tracker:\n  type: sort\n  iou_threshold: 7\n"), env={})
    assert str(e.value).startswith("tracker.iou_threshold: ")


def test_unknown_tracker_type_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"^tracker"):
        load_config(write(tmp_path, "tracker:\n  type: deepsort\n"), env={})


def test_invalid_yaml_reports_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.yaml line 2: invalid YAML"):
        load_config(write(tmp_path, "model:\n  path: a: b\n  threads: 2\n"), env={})


def test_non_mapping_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"), env={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", env={})


def test_labels_file_plain_and_indexed(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("person\nbicycle\n\ncar\n")
    assert resolve_labels(str(plain)) == ["person", "bicycle", "car"]
    indexed = tmp_path / "coco.txt"
    indexed.write_text("0 person\n2 car\n3 motor cycle\n")
    assert resolve_labels(str(indexed)) == ["person", "1", "car", "motor cycle"]
    with pytest.raises(ConfigError, match="labels file not found"):
        resolve_labels(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize("how", ["set", "env", "yaml"])
def test_tracker_keys_without_type_apply_to_the_default_tracker(tmp_path, how):
    if how == "set":
        cfg = load_config(None, {"tracker.track_thresh": 0.6}, env={})
    elif how == "env":
        cfg = load_config(None, env={"VIGIL_TRACKER__TRACK_THRESH": "0.6"})
    else:
        cfg = load_config(write(tmp_path, "tracker: {track_thresh: 0.6}\n"), env={})
    assert cfg.tracker.type == Config().tracker.type and cfg.tracker.track_thresh == 0.6


def test_tracker_keys_apply_to_the_configured_tracker_type(tmp_path):
    cfg = load_config(write(tmp_path, "tracker:\n  type: sort\n"), {"tracker.max_age": 10}, env={})
    assert (cfg.tracker.type, cfg.tracker.max_age) == ("sort", 10)


def test_a_key_of_the_other_tracker_names_the_type_it_belongs_to():
    with pytest.raises(ConfigError) as e:
        load_config(None, {"tracker.max_age": 10}, env={})
    assert str(e.value) == "tracker.max_age: unknown key for tracker.type bytetrack (it is a sort key: set tracker.type: sort)"


def test_duplicate_yaml_key_is_an_error_naming_both_lines(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "model:\n  threads: 2\n  path: x.tflite\n  threads: 3\n"), env={})
    assert str(e.value).endswith("c.yaml line 4: invalid YAML: duplicate key 'threads' (first on line 2)")


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    p = write(tmp_path, "zones:\n  a: &z {polygon: [[0, 0], [1, 0], [1, 1]], inertia: 2}\n  b:\n    <<: *z\n    inertia: 5\n")
    assert load_config(p, env={}).zones["b"].inertia == 5


def test_non_utf8_config_file_is_one_line_naming_file_and_line(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes("model:\n  threads: 2\n# caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    assert str(e.value) == f"{p} line 3: not UTF-8 text (byte 0xe9); save the file as UTF-8"


def test_non_utf8_labels_file_is_a_config_error(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_bytes(b"person\nv\xe9lo\n")
    with pytest.raises(ConfigError, match="model.labels: cannot read labels file .*: not UTF-8 text"):
        resolve_labels(str(p))


@pytest.mark.parametrize("bad", [[1, 1], [1, -1], [0, float("inf")]])
def test_empty_reversed_or_infinite_input_range_is_refused(bad):
    with pytest.raises(ConfigError, match=r"^model\.input_range: must be \[low, high\] with low < high"):
        load_config(None, {"model.input_range": bad}, env={})


def test_empty_api_token_is_refused():
    with pytest.raises(ConfigError, match=r"^api\.token: must not be empty"):
        load_config(None, {"api.token": ""}, env={})
    assert load_config(None, {"api.token": "t"}, env={}).api.token.get_secret_value() == "t"


def test_label_groups_stand_for_their_members_in_every_label_list():
    cfg = load_config(None, {
        "decoder.classes": ["person", "vehicle"],
        "decoder.class_thresholds": {"vehicle": 0.4, "bus": 0.6},
        "zones": {"road": {"polygon": [[0, 0], [1, 0], [1, 1]], "labels": ["vehicle"]}},
        "lines": {"gate": {"start": [0, 0.5], "end": [1, 0.5], "labels": ["person", "vehicle"]}},
        "filters": {"labels": {"vehicle": {"min_score": 0.5}}},
    }, env={})
    members = ["bicycle", "car", "motorcycle", "bus", "truck"]
    assert cfg.decoder.classes == ["person", *members]
    assert cfg.decoder.class_thresholds == {**{m: 0.4 for m in members}, "bus": 0.6}  # the member's own wins
    assert cfg.zones["road"].labels == members and cfg.lines["gate"].labels == ["person", *members]
    assert set(cfg.filters.labels) == set(members) and cfg.filters.labels["car"].min_score == 0.5


def test_a_custom_group_works_the_same_way():
    cfg = load_config(None, {"model.groups": {"pets": ["cat", "dog"]}, "decoder.classes": ["pets"]}, env={})
    assert cfg.decoder.classes == ["cat", "dog"]


def test_relative_labels_file_is_found_beside_the_model_then_among_vigils_own(tmp_path):
    (tmp_path / "mine.txt").write_text("cat\ndog\n")
    model = tmp_path / "m.tflite"
    assert resolve_labels("mine.txt", str(model)) == ["cat", "dog"]
    coco = resolve_labels("coco_labels.txt", str(model))  # not beside it: the bundled COCO list
    assert len(coco) == 80 and coco[:3] == ["person", "bicycle", "car"] and coco[-1] == "toothbrush"
    with pytest.raises(ConfigError, match="labels file not found: nope.txt"):
        resolve_labels("nope.txt", str(model))


def test_a_key_of_another_decoder_type_is_refused_naming_the_type_it_belongs_to(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "decoder:\n  type: yolov5\n  person_box: body\n"), env={})
    assert str(e.value) == ("decoder.person_box: unknown key for decoder.type yolov5 "
                            "(it is a mediapipe_ssd key: set decoder.type: mediapipe_ssd)")
    with pytest.raises(ConfigError) as e:
        load_config(None, {"decoder.yolo_score": "objectness"}, env={})  # no type: auto
    assert str(e.value) == ("decoder.yolo_score: unknown key for decoder.type auto "
                            "(it is a yolov5 and yolov8 key: set decoder.type: yolov5)")


def test_decoder_errors_do_not_show_the_union_tag(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "decoder:\n  type: mediapipe_ssd\n  anchors: {num_layers: 0}\n"), env={})
    assert str(e.value).startswith("decoder.anchors.num_layers: Input should be greater than or equal to 1 (got 0)")


def test_unknown_decoder_type_lists_the_registered_ones():
    with pytest.raises(ConfigError) as e:
        load_config(None, {"decoder.type": "yolov9"}, env={})
    assert str(e.value) == ("decoder.type: unknown decoder 'yolov9'; choose one of auto, ssd_postprocess, "
                            "yolov5, yolov8, mediapipe_ssd, nanodet")


def test_decoder_keys_of_the_chosen_type_apply(tmp_path):
    cfg = load_config(write(tmp_path, "decoder:\n  type: mediapipe_ssd\n  person_box: regressed\n"),
                      {"decoder.score_threshold": 0.3}, env={})
    assert (cfg.decoder.type, cfg.decoder.person_box, cfg.decoder.score_threshold) == ("mediapipe_ssd", "regressed", 0.3)
    assert cfg.decoder.classes == Config().decoder.classes  # the common keys keep their defaults


def test_backend_settings_are_one_section_tagged_by_type(tmp_path):
    cfg = load_config(write(tmp_path, "model:\n  backend:\n    type: acap-runtime\n    device: artpec8\n    inflight: 3\n"),
                      env={})
    assert (cfg.model.backend.type, cfg.model.backend.device, cfg.model.backend.inflight) == ("acap-runtime", "artpec8", 3)
    assert Config().model.backend.type == "tflite" and Config().model.backend.threads is None  # None: the usable CPUs
    with pytest.raises(ConfigError) as e:
        load_config(None, {"model.backend.type": "acap-runtime", "model.backend.threads": 2}, env={})
    assert str(e.value) == ("model.backend.threads: unknown key for model.backend.type acap-runtime "
                            "(it is a tflite key: set model.backend.type: tflite)")
    with pytest.raises(ConfigError, match=r"^model\.backend\.device: 'artpec3' is not an ACAP Runtime chip"):
        load_config(None, {"model.backend": "acap-runtime", "model.backend.device": "artpec3"}, env={})


@pytest.mark.parametrize("how", ["yaml", "env", "set"])
def test_old_backend_keys_are_still_read_at_their_new_place(tmp_path, how, caplog):
    old = {"model.backend": "acap-runtime", "model.device": "artpec8", "model.server_path": "/models/m.tflite",
           "acap_runtime.inflight": 1, "acap_runtime.load_timeout": 60}
    if how == "yaml":
        cfg = load_config(write(tmp_path, "model:\n  backend: acap-runtime\n  device: artpec8\n  server_path: "
                                "/models/m.tflite\nacap_runtime:\n  inflight: 1\n  load_timeout: 60\n"), env={})
    elif how == "env":
        cfg = load_config(None, env={f"VIGIL_{k.upper().replace('.', '__')}": str(v) for k, v in old.items()})
    else:
        cfg = load_config(None, old, env={})
    assert cfg.model.backend.model_dump() == {"type": "acap-runtime", "device": "artpec8",
                                              "server_path": "/models/m.tflite", "inflight": 1, "load_timeout": 60.0}
    assert "model.device (now model.backend.device)" in caplog.text


def test_an_old_default_yaml_still_loads_whatever_the_backend(tmp_path):
    old = "model:\n  backend: {b}\n  device: cpu\n  server_path: null\n  threads: 1\n" \
          "acap_runtime:\n  load_timeout: 300.0\n  inflight: 2\n"
    for backend in ("tflite", "acap-runtime"):
        assert load_config(write(tmp_path, old.format(b=backend)), env={}).model.backend.type == backend
    with pytest.raises(ConfigError, match=r"^model\.backend\.threads: unknown key for model\.backend\.type acap-runtime"):
        load_config(write(tmp_path, old.format(b="acap-runtime").replace("threads: 1", "threads: 2")), env={})


def test_source_keys_belong_to_their_source_type(tmp_path):
    cfg = load_config(write(tmp_path, "source:\n  type: acap-runtime\n  stream: {width: 1280, height: 720}\n"), env={})
    assert (cfg.source.type, cfg.source.stream.width, cfg.source.queue_size) == ("acap-runtime", 1280, 4)
    with pytest.raises(ConfigError) as e:
        load_config(None, {"source.type": "acap-runtime", "source.uri": "x.mp4"}, env={})
    assert str(e.value) == ("source.uri: unknown key for source.type acap-runtime "
                            "(it is an opencv key: set source.type: opencv)")
    with pytest.raises(ConfigError, match=r"^source\.stream: unknown key for source\.type opencv \(it is an acap-runtime"):
        load_config(None, {"source.stream.width": 320}, env={})


def test_an_old_copy_of_default_yaml_loads_as_todays_defaults(caplog):
    """config/default.yaml before the plugin sections: flat backend keys under model and acap_runtime,
    YOLO and MediaPipe keys under decoder, the camera stream under source. Same values, same Config."""
    cfg = load_config(ROOT / "tests" / "fixtures" / "default-before-plugins.yaml", env={})
    # its `threads: 1` was the default then; a file saying 1 keeps 1 (today's default is the usable CPUs)
    assert cfg.model.backend.threads == 1
    assert cfg.model_copy(update={"model": cfg.model.model_copy(update={
        "backend": cfg.model.backend.model_copy(update={"threads": None})})}) == Config()
    assert "model.device (now model.backend.device)" in caplog.text
    ignored = caplog.text.split("at their defaults, ignored: ")[1].split("\n")[0].split(", ")
    assert {"model.backend.inflight", "source.stream", "decoder.yolo_score", "decoder.anchors"} <= set(ignored)


def test_other_types_keys_are_refused_when_they_would_change_something_or_the_type_is_chosen():
    with pytest.raises(ConfigError, match=r"^decoder\.person_box: unknown key for decoder\.type auto"):
        load_config(None, {"decoder.person_box": "regressed"}, env={})  # not mediapipe_ssd's default
    with pytest.raises(ConfigError, match=r"^decoder\.person_box: unknown key for decoder\.type nanodet"):
        load_config(None, {"decoder.type": "nanodet", "decoder.person_box": "body"}, env={})
    assert load_config(None, {"decoder.person_box": "body"}, env={}).decoder == Config().decoder


def test_a_plugin_section_set_to_a_name_sets_its_type_and_keeps_its_keys(tmp_path):
    p = write(tmp_path, "model:\n  backend: {device: artpec8, inflight: 1}\n")
    cfg = load_config(p, env={"VIGIL_MODEL__BACKEND": "acap-runtime"})
    assert (cfg.model.backend.type, cfg.model.backend.device, cfg.model.backend.inflight) == ("acap-runtime", "artpec8", 1)
    assert load_config(None, {"tracker": "sort"}, env={}).tracker.type == "sort"
    assert load_config(write(tmp_path, "tracker: sort\n"), env={}).tracker.type == "sort"


def test_switching_a_plugin_type_on_top_of_default_yaml_works_and_a_changed_key_of_the_old_type_is_refused():
    """`--config config/default.yaml --set tracker.type=sort`: the file lists ByteTrack's keys at their
    defaults; they change nothing for SORT and are ignored. A value the user changed is still refused."""
    default_yaml = ROOT / "config" / "default.yaml"
    cfg = load_config(default_yaml, {"tracker.type": "sort"}, env={})
    sort = load_config(None, {"tracker.type": "sort", "tracker.per_class": True}, env={}).tracker
    assert cfg.tracker.type == "sort" and cfg.tracker == sort  # per_class is SORT's key too: the file's value holds
    planner = load_config(default_yaml, env={"VIGIL_PREPROCESS__PLANNER__TYPE": "regions"}).preprocess.planner
    assert planner.type == "regions"
    with pytest.raises(ConfigError, match="tracker.track_thresh: unknown key for tracker.type sort"):
        load_config(default_yaml, {"tracker.type": "sort", "tracker.track_thresh": 0.3}, env={})


@pytest.mark.parametrize("value", [2, -0.1])
def test_class_threshold_outside_0_1_is_refused_like_score_threshold(value):
    # a threshold of 2 silently dropped every detection of the label
    with pytest.raises(ConfigError, match=rf"^decoder\.class_thresholds\.person: .*\(got {value}\)"):
        load_config(None, {"decoder.class_thresholds": {"person": value}}, env={})


@pytest.mark.parametrize("name", ["VIGIL___X", "VIGIL_SOURCE__", "VIGIL_SOURCE____URI"])
def test_env_variable_with_an_empty_key_part_is_named(name):
    # was ': unknown key' / 'source.: unknown key', naming neither the variable nor the problem
    with pytest.raises(ConfigError, match=rf"^environment variable {name}: not a config key; the form is VIGIL_<SECTION>__<KEY>"):
        load_config(None, env={name: "1"})


def test_a_directory_as_config_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match=rf"^config file {tmp_path} is a directory; name a YAML file"):
        load_config(tmp_path, env={})


# ---- input that costs memory, and what is logged of it (issue 23 §5) ------------------------------------

def test_a_labels_file_with_a_huge_id_is_one_line_not_a_memory_error(tmp_path):
    import resource

    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    labels = tmp_path / "labels.txt"
    labels.write_text("0 person\n1 car\n99999999 far\n")

    def limit_memory():  # a 4 GB address space: a 100-million-entry list does not fit
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    r = subprocess.run([sys.executable, "-m", "app", "run", "--max-frames", "1", "--no-progress",
                        "--set", f"model.labels={labels}"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300, preexec_fn=limit_memory)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "MemoryError" not in r.stderr, r.stderr[-2000:]
    assert (f"vigil: config error: model.labels: {labels}: label id 99999999 (far) is too large (ids are class "
            "numbers, below 100000)") in r.stderr


def test_labels_beyond_the_models_classes_are_said_in_one_line(caplog):
    from app.decoders import DecoderBase, ScoreFilter

    class Cfg(DecoderBase):
        type: str = "x"

    f = ScoreFilter(Cfg(), ["person", "car"] + [f"extra{i}" for i in range(5000)], 2)
    assert len(f.thresholds) == 5002
    [line] = [r.getMessage() for r in caplog.records if "beyond" in r.getMessage()]
    assert line.startswith("model.labels: 5000 label(s) beyond the model's 2 classes are never detected (extra0, ")
    assert len(line) < 300


def test_a_huge_bad_value_in_the_config_is_cut_in_its_error_line(tmp_path):
    cfg = tmp_path / "big.yaml"
    cfg.write_text(f"source:\n  fps: {'x' * 300_000}\n")
    from tests.conftest import run_vigil

    r = run_vigil("run", "--config", str(cfg), "--max-frames", "1", "--no-progress")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-500:]
    [line] = [ln for ln in r.stderr.splitlines() if "config error" in ln]
    assert line.startswith("vigil: config error: source.fps: ") and "(+299,9" in line and len(line) < 400


def test_shorten_cuts_long_input_and_says_how_much_was_left_out():
    from app.logtext import shorten, shorten_list

    assert shorten("door") == "door" and shorten(["a"]) == "['a']"
    assert shorten("x" * 1000, 10) == "xxxxxxxxxx… (+990 characters)"
    names = [f"line{i}" for i in range(200_000)]
    text = shorten_list(names)
    assert text.startswith("line0, line1, ") and text.endswith(", … (+199,990 more)") and len(text) < 200


@pytest.mark.parametrize("groups, message", [
    ({"nothing": []}, "model.groups: group 'nothing' is empty; list its labels or remove it"),
    ({"person": ["person", "bicycle"]},
     "model.groups: group 'person' is named like the model's label 'person'; give the group another name"),
    ({"traffic light": ["car"]}, "model.groups: group 'traffic light' is named like the model's label 'traffic light'"),
    ({"traffic/light": ["car"]}, "model.groups: group 'traffic/light' is published on the same topic "
                                 "(counts/traffic_light) as the model's label 'traffic light'"),
    ({"x y": ["car"], "x/y": ["bus"]}, "model.groups: groups 'x y' and 'x/y' are both published as counts/x_y; "
                                       "rename one"),
])
def test_label_groups_that_would_mean_something_else_silently_are_one_line(tmp_path, groups, message):
    # an empty group in decoder.classes meant every label; `person` redefined the label; x y and x/y shared a count
    import yaml

    from tests.conftest import run_vigil

    cfg = tmp_path / "groups.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"groups": groups}, "decoder": {"classes": list(groups)}}))
    r = run_vigil("run", "--config", str(cfg), "--max-frames", "1", "--no-progress")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-1500:]
    assert f"vigil: config error: {message}" in r.stderr
