"""The plugin convention (app/plugins.py): a module with Config and build plus one registry line."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.backends import BACKENDS
from app.capture import SOURCES
from pydantic import TypeAdapter, ValidationError

from app.config import PLUGINS, Config, load_config
from app.config_render import render_defaults
from app.decoders import DECODERS
from app.errors import ConfigError
from app.outputs import OUTPUTS
from app.plugins import PluginConfig, Registry, RunContext, format_validation_error
from app.tracking import TRACKERS

ROOT = Path(__file__).resolve().parents[1]

# a tracker and a decoder that live outside app/, as a new plugin would
PLUGIN_MODULES = {
    "still_tracker.py": '''
        from typing import Literal
        from pydantic import Field
        from app.plugins import PluginConfig
        from app.types import Detections

        class Config(PluginConfig):
            type: Literal["still"] = "still"
            hold: int = Field(5, ge=1, description="frames a track is held")

        class StillTracker:
            def __init__(self, cfg, ctx, class_groups):
                self.cfg, self.ctx, self.class_groups = cfg, ctx, class_groups

        def build(cfg, ctx, class_groups=None):
            return StillTracker(cfg, ctx, class_groups)
    ''',
    "logit_decoder.py": '''
        from typing import Literal
        from app.decoders import DecoderBase

        class Config(DecoderBase):
            type: Literal["logits"] = "logits"
            temperature: float = 1.0

        def matches(name, specs):
            return len(specs) == 1 and tuple(specs[0].shape) == (1, 1001)

        class LogitDecoder:
            def __init__(self, cfg):
                self.cfg = cfg

        def build(cfg, ctx, specs, labels, input_size):
            return LogitDecoder(cfg)
    ''',
}

SCRIPT = '''
import json, sys
import numpy as np
from app.decoders import DECODERS, build_decoder
from app.tracking import TRACKERS, build_tracker

TRACKERS.modules["still"] = "still_tracker"  # the one registry line per plugin
DECODERS.modules["logits"] = "logit_decoder"

from app.modelfile import TensorSpec
from app.config import ConfigError, load_config
from app.config_render import render_defaults

cfg = load_config(None, {"tracker.type": "still", "tracker.hold": 3, "decoder.score_threshold": 0.6}, env={})
tracker = build_tracker(cfg.tracker)
decoder = build_decoder(cfg.decoder, [TensorSpec("o", (1, 1001), np.dtype(np.float32))], ["x"], (224, 224))
try:
    load_config(None, {"tracker.hold": 3}, env={})
    refused = ""
except ConfigError as e:
    refused = str(e)
print(json.dumps({
    "tracker": type(tracker).__name__, "hold": tracker.cfg.hold,
    "decoder": type(decoder).__name__, "decoder_cfg": decoder.cfg.model_dump(),
    "refused": refused, "documented": "# or type: still, with these keys of its own" in render_defaults(),
}))
'''


@pytest.fixture(scope="module")
def with_new_plugins(tmp_path_factory) -> dict:
    where = tmp_path_factory.mktemp("plugins")
    for name, text in PLUGIN_MODULES.items():
        (where / name).write_text(textwrap.dedent(text))
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": f"{where}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_tracker_registered_by_one_line_is_selectable_from_config(with_new_plugins):
    assert with_new_plugins["tracker"] == "StillTracker" and with_new_plugins["hold"] == 3


def test_auto_picks_a_decoder_registered_by_one_line_with_its_defaults_and_the_common_keys(with_new_plugins):
    cfg = with_new_plugins["decoder_cfg"]
    assert with_new_plugins["decoder"] == "LogitDecoder"
    assert (cfg["type"], cfg["temperature"], cfg["score_threshold"]) == ("logits", 1.0, 0.6)


def test_a_new_plugins_keys_get_the_other_type_hint_and_are_documented(with_new_plugins):
    assert with_new_plugins["refused"] == (
        "tracker.hold: unknown key for tracker.type bytetrack (it is a still key: set tracker.type: still)")
    assert with_new_plugins["documented"]


def test_every_registered_plugin_has_a_config_tagged_by_its_name_and_a_builder():
    for registry in (BACKENDS, SOURCES, DECODERS, TRACKERS, OUTPUTS):
        for name, cls in registry.configs().items():
            assert issubclass(cls, PluginConfig) and cls.model_config["extra"] == "forbid"
            assert cls.model_validate({"type": name}).type == name
            assert callable(registry.module(name).build)


def test_unknown_plugin_type_is_one_line_listing_the_choices():
    with pytest.raises(ConfigError) as e:
        TRACKERS.module("deepsort")
    assert str(e.value) == "tracker.type: unknown tracker 'deepsort'; choose one of sort, bytetrack"


def test_run_context_defaults_are_fresh_per_plugin():
    a, b = RunContext(), RunContext()
    assert a.health is not b.health and a.cancel is None and a.acap is None


def test_default_config_documents_the_other_types_keys_commented_out():
    text = render_defaults()
    section = text[text.index("\ndecoder:"):text.index("\ntracker:")]
    assert "  # or type: mediapipe_ssd, which adds:\n" in section and "  # person_box: body\n" in section
    assert "  # or type: yolov5 or yolov8, which adds:\n" in section and "  # yolo_score: obj_x_cls\n" in section
    assert "\n  person_box:" not in section  # not a key of the default (auto)
    assert Config().decoder.type == "auto" and Config().tracker.type == "bytetrack"


def test_the_config_tree_imports_no_heavy_runtime():
    """Every registered module is imported for its Config, so their top levels stay cheap (camera memory)."""
    code = ("import sys; import app.config; "
            "print(sorted(m for m in ('cv2', 'grpc', 'ai_edge_litert', 'tflite_runtime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_kind_has_its_registry_in_the_config_tree():
    cfg = Config()
    assert {(r.key, r.default) for r in (BACKENDS, SOURCES, DECODERS, TRACKERS)} == {
        ("model.backend", "tflite"), ("source", "opencv"), ("decoder", "auto"), ("tracker", "bytetrack")}
    assert (cfg.model.backend.type, cfg.source.type) == ("tflite", "opencv")


# settings a user gets wrong, each refused naming the plugin type whose section it is in
MISTAKES = [
    {"tracker.type": "sort", "tracker.track_thresh": 0.5},
    {"model.backend": "acap-runtime", "model.backend.threads": 2},
    {"source.type": "acap-runtime", "source.uri": "x.mp4"},
    {"preprocess.planner.type": "fixed", "preprocess.planner.motion_threshold": 3},
    {"rules": {"lane": {"type": "x"}}},
]
REFUSED = [
    "tracker.track_thresh: unknown key for tracker.type sort (it is a bytetrack key: set tracker.type: bytetrack)",
    "model.backend.threads: unknown key for model.backend.type acap-runtime "
    "(it is a tflite key: set model.backend.type: tflite)",
    "source.uri: unknown key for source.type acap-runtime (it is an opencv key: set source.type: opencv)",
    "preprocess.planner.motion_threshold: unknown key for preprocess.planner.type fixed",
    "rules.lane: unknown rule 'x'; none is registered",
]


def refusals(mistakes: list[dict]) -> list[str]:
    out = []
    for overrides in mistakes:
        with pytest.raises(ConfigError) as e:
            load_config(None, overrides, env={})
        out.append(str(e.value))
    return out


def test_config_errors_name_the_plugin_type_with_only_the_config_module_imported():
    """The registries the messages know are the config tree's declared PLUGINS, not whichever were imported."""
    code = ("import json, sys; from app.config import ConfigError, load_config\n"
            "out = []\n"
            "for o in json.loads(sys.argv[1]):\n"
            "    try:\n"
            "        load_config(None, o, env={})\n"
            "    except ConfigError as e:\n"
            "        out.append(str(e))\n"
            "print(json.dumps(out))")
    alone = subprocess.run([sys.executable, "-c", code, json.dumps(MISTAKES)], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout) == REFUSED
    assert refusals(MISTAKES) == REFUSED  # and the same here, after every test module's imports


def test_a_registry_outside_the_declared_list_is_known_only_where_it_is_passed():
    before = render_defaults()
    gadgets = Registry("gadget", "gadget", dict(TRACKERS.modules))  # as a test or an outside module might
    assert gadgets not in PLUGINS
    assert render_defaults() == before and refusals(MISTAKES) == REFUSED  # the config tree does not see it
    with pytest.raises(ValidationError) as e:
        TypeAdapter(gadgets.section()).validate_python({"type": "sort", "track_thresh": 0.5})
    # not passed: its section is not a plugin section (pydantic's tag stays in the key)
    assert format_validation_error(e.value, PLUGINS, prefix="gadget") == "gadget.sort.track_thresh: unknown key"
    assert format_validation_error(e.value, (*PLUGINS, gadgets), prefix="gadget") == (
        "gadget.track_thresh: unknown key for gadget.type sort (it is a bytetrack key: set gadget.type: bytetrack)")
    with pytest.raises(ConfigError) as parsed:  # a section validated on its own knows its own registry
        gadgets.parse({"type": "sort", "track_thresh": 0.5})
    assert str(parsed.value) == format_validation_error(e.value, (gadgets,), prefix="gadget")


def test_the_config_tree_declares_every_kind_once():
    assert len(set(map(id, PLUGINS))) == len(PLUGINS) == 7
    sections = {r.key.split(".")[0] for r in PLUGINS}
    assert sections <= set(Config.model_fields), sections - set(Config.model_fields)
