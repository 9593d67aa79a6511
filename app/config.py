"""One validated configuration tree: YAML file, then VIGIL_… environment variables, then CLI flags."""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import (
    BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator,
)

from app.acap.config import AcapRuntimeConfig
from app.backends import BACKENDS
from app.capture import SOURCES
from app.config_input import merged_tree, under_model_sidecar
from app.decoders import DECODERS
from app.regions import PLANNERS
from app.errors import ConfigError
from app.labels import ModelLabels
from app.logtext import shorten
from app.outputs import OUTPUTS
from app.plugins import Registry, format_validation_error, validation_items
from app.tracking import TRACKERS
from app.analytics.config import (
    NAME_PATTERN, EventsConfig, FiltersConfig, LineConfig, StationaryConfig, ZoneConfig,
)
from app.analytics.rules import RULES
from app.api.config import ApiConfig
from app.publish.config import MqttConfig
from app.publish.payloads import segment
from app.snapshots.config import SnapshotsConfig

log = logging.getLogger(__name__)

# Every plugin kind the config tree has a section for, declared here once: what reads the tree by plugin
# section (error messages, config/default.yaml, merging the layers) is given this list, never a list of the
# registries that happened to be created. A new kind of plugin is a registry, its section below and its entry here.
PLUGINS: tuple[Registry, ...] = (BACKENDS, SOURCES, DECODERS, PLANNERS, OUTPUTS, TRACKERS, RULES)

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    path: str = Field("models/nanodet_int8_pertensor.tflite", description="the .tflite model")
    backend: BACKENDS.section() = BACKENDS.field("how the model runs: its backend (type) and that backend's settings")
    labels: list[str] | str = Field(
        "coco_labels.txt",
        description="label list, or a labels file (one per line, or '<id> <label>'); a relative file name "
        "is looked for in the working directory, beside the model, then among Vigil's own (COCO's 80)",
    )
    input_range: tuple[float, float] | None = Field(
        None, description="real-valued range the model expects for pixels 0..255, e.g. [-1, 1]; default: inferred"
    )
    color: Literal["rgb", "bgr"] = Field("bgr", description="channel order of the model input")
    groups: dict[str, list[str]] = Field(
        {"vehicle": ["bicycle", "car", "motorcycle", "bus", "truck"]},
        description="named label groups, usable wherever a label is (decoder.classes and class_thresholds, zone, "
        "line and filter labels); each also gets its own count (MQTT counts/<group>)",
    )

    @field_validator("groups")
    @classmethod
    def _groups_distinct(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        # an empty group in decoder.classes would mean "every label"; two names on one topic, one count
        seen: dict[str, str] = {}
        for name, members in v.items():
            if not members:
                raise ValueError(f"group {shorten(repr(name), 60)} is empty; list its labels or remove it")
            topic = segment(name)
            if topic in seen:
                raise ValueError(f"groups {shorten(repr(seen[topic]), 60)} and {shorten(repr(name), 60)} are both "
                                 f"published as counts/{shorten(topic, 60)}; rename one")
            seen[topic] = name
        return v

    @field_validator("input_range")
    @classmethod
    def _increasing(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        # an empty or reversed range maps every pixel to one value: the model sees a blank image
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError(f"must be [low, high] with low < high, e.g. [-1, 1] (got {list(v)})")
        return v


class PreprocessConfig(_Section):
    resize: Literal["letterbox", "stretch"] = Field("letterbox", description="keep aspect with padding, or stretch")
    planner: PLANNERS.section() = PLANNERS.field(
        description="which views of each frame the model runs on: fixed (the whole frame, or tiles + the whole "
        "frame, every frame) or regions (crops around motion and tracked objects, full sweeps now and then; "
        "docs/regions.md)"
    )


class OutputConfig(_Section):
    jsonl: str | None = Field(None, description="JSON Lines file of per-frame tracked objects; '-' for stdout")
    append: bool = Field(False, description="add to an existing output.jsonl instead of replacing it (a restart "
                                            "to apply changed camera parameters does)")
    video: str | None = Field(None, description="annotated video (.mp4/.avi) or latest annotated image (.jpg/.png)")
    progress: bool = Field(True, description="show a progress bar on stderr")


class StateConfig(_Section):
    file: str | None = Field(
        None, description="JSON file that keeps line counts (and when they started) across restarts, and beside it "
                           "<name>.tracks.json the open tracks, ended (reason restart) by the next start after a crash, "
                           "<name>.journal the count changes since the last save (a crash loses at most the last "
                           "second) and <name>.lock (one Vigil per state file); none = start from 0"
    )
    interval: float = Field(
        60.0, ge=1.0, le=3600.0,
        description="seconds between saves while counts change (also saved on reset and at exit; the journal keeps "
                    "what comes between); spares camera flash",
    )


class SiteConfig(_Section):
    file: str | None = Field(
        None, description="the site file: what Vigil's settings page and PUT /api/config save, layered over this "
        "configuration (docs/configuration.md); default: site.yaml beside state.file (on the camera /data/site.yaml); "
        "neither set: settings cannot be saved. Not settable in the site file itself",
    )


class Config(_Section):
    """Everything Vigil reads at start-up."""

    source: SOURCES.section() = SOURCES.field("where frames come from")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the detector and how to run it")
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig, description="frame to model input")
    decoder: DECODERS.section() = DECODERS.field("model outputs to detections")
    # boxes of 0.35-0.45 only continue tracks, births need 0.45 (bench/track_labelled.py, tuning half)
    tracker: TRACKERS.section() = TRACKERS.field("multi-object tracker")
    output: OutputConfig = Field(default_factory=OutputConfig, description="where results go")
    outputs: list[OUTPUTS.section()] = OUTPUTS.field(
        "more outputs, each an entry tagged by the type it was registered as, with its own keys "
        "(docs/architecture.md); the built-in ones are set in their own sections (output, snapshots, state, mqtt)")
    acap_runtime: AcapRuntimeConfig = Field(
        default_factory=AcapRuntimeConfig, description="ACAP Runtime connection (acap-runtime backend and source)"
    )
    device_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = Field(
        None, description="this device's name in topics and payloads; default: on the camera its serial number, elsewhere "
        "an id made once; either kept in the state directory (device_id beside state.file) so restarts keep it; "
        "with no state file the host name"
    )
    zones: dict[Name, ZoneConfig] = Field({}, description="named polygon zones: occupancy, entered/left, dwell, loitering")
    lines: dict[Name, LineConfig] = Field({}, description="named counting lines: directional in/out counts")
    filters: FiltersConfig = Field(default_factory=FiltersConfig, description="what a track must pass before it is published")
    stationary: StationaryConfig = Field(default_factory=StationaryConfig, description="when an object counts as stationary")
    rules: dict[Name, RULES.section()] = Field(
        {}, description="named rules of registered types (docs/plugins.md), run after zones, lines and stationary"
    )
    events: EventsConfig = Field(default_factory=EventsConfig, description="when update events are sent")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT publishing (events, counts, state)")
    api: ApiConfig = Field(default_factory=ApiConfig, description="HTTP status API, metrics and status page")
    state: StateConfig = Field(default_factory=StateConfig, description="what survives a restart")
    snapshots: SnapshotsConfig = Field(default_factory=SnapshotsConfig, description="the best view of every object as JPEGs")
    site: SiteConfig = Field(default_factory=SiteConfig, description="where settings saved on site are kept")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="logging level")

    @model_validator(mode="after")
    def _expand_groups(self) -> "Config":
        """Group names in label lists and per-label maps stand for their members."""
        g = self.model.groups
        if not g:
            return self
        # assigned only when a group was named, so defaults stay defaults (model_fields_set)
        for owner, key, expand in ((self.decoder, "classes", expand_labels),
                                   (self.decoder, "class_thresholds", expand_label_map),
                                   (self.filters, "labels", expand_label_map),
                                   (self.snapshots, "labels", expand_labels),
                                   *((z, "labels", expand_labels) for z in self.zones.values()),
                                   *((ln, "labels", expand_labels) for ln in self.lines.values())):
            value = getattr(owner, key)
            expanded = expand(value, g)
            if expanded != value:
                setattr(owner, key, expanded)
        return self


def check_group_names(groups: Mapping[str, list[str]], labels: list[str]) -> None:
    """ConfigError when a group is named like one of the model's labels, or is published on its topic."""
    topics = {segment(label): label for label in labels}
    for name in groups:
        label = topics.get(segment(name))
        if label is not None:
            same = "named like" if label == name else f"published on the same topic (counts/{segment(name)}) as"
            raise ConfigError(f"model.groups: group {shorten(repr(name), 60)} is {same} the model's label "
                              f"{shorten(repr(label), 60)}; give the group another name")


def expand_labels(labels: list[str], groups: Mapping[str, list[str]]) -> list[str]:
    """Labels with every group name replaced by its members, order kept, no repeats."""
    out: list[str] = []
    for label in labels:
        for member in groups.get(label, [label]):
            if member not in out:
                out.append(member)
    return out


def expand_label_map(values: Mapping[str, Any], groups: Mapping[str, list[str]]) -> dict[str, Any]:
    """A per-label map where a group's entry applies to each member; a member's own entry wins."""
    out: dict[str, Any] = {}
    for label, v in values.items():
        if label in groups:
            for member in groups[label]:
                out.setdefault(member, v)
    for label, v in values.items():
        if label not in groups:
            out[label] = v
    return out


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    site: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults < the model's <model>.yaml < YAML file < VIGIL_… environment < camera parameters < site
    tree < CLI overrides (dotted keys), validated once (config_input.LAYERS, under_model_sidecar)."""
    tree, notes = merged_tree(path, overrides, os.environ if env is None else env, params, site, plugins=PLUGINS)
    mine, sidecar = under_model_sidecar(tree, ModelConfig.model_fields["path"].default,  # the model's own settings
                                        plugins=PLUGINS)
    try:
        cfg = Config.model_validate(mine)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, PLUGINS) + _sidecar_blamed(tree, sidecar),
                          validation_items(e, PLUGINS)) from None
    if sidecar:
        log.debug("the model's settings from %s, under the config", sidecar)
    for note in notes:
        log.warning(note)
    return cfg


def _sidecar_blamed(tree: dict, sidecar: Path | None) -> str:
    """" (with <model>.yaml, …)" when the config is valid without the model's settings file."""
    try:
        Config.model_validate(tree) if sidecar else None
    except ValidationError:
        return ""
    return f" (with {sidecar}, the model's settings)" if sidecar else ""


def check_labels(cfg: Config, labels: list[str]) -> None:
    """Labels named in zones, lines and filters must be the model's: a typo would silently count nothing.
    A group may not take a label's name (or its topic): it would silently redefine it."""
    check_group_names(cfg.model.groups, labels)
    named = [(f"zones.{n}.labels", z.labels) for n, z in cfg.zones.items()]
    named += [(f"lines.{n}.labels", c.labels) for n, c in cfg.lines.items()]
    named.append(("filters.labels", list(cfg.filters.labels)))
    named.append(("snapshots.labels", cfg.snapshots.labels))
    for key, names in named:
        for name in names:
            if name not in labels:
                shown = ", ".join(labels[:10]) + (", …" if len(labels) > 10 else "")
                raise ConfigError(f"{key}: {shorten(repr(name), 60)} is not one of the model's labels ({shown})")


def model_labels(cfg: Config) -> ModelLabels:
    """The run's one description of its model's classes (labels, groups, merge ids), for detector and tracker."""
    return ModelLabels.of(resolve_labels(cfg.model.labels, cfg.model.path), cfg.model.groups, cfg.decoder.merge_groups)


BUNDLED_LABELS = Path(__file__).resolve().parent / "labels"
MAX_LABEL_ID = 100_000  # the largest detector heads have thousands of classes; the decoder then checks its own count


def resolve_labels(labels: list[str] | str, model_path: str | None = None) -> list[str]:
    """The label list from the config value: a list as-is, or a labels file. A relative file name is
    looked for in the working directory, beside the model, then among Vigil's own (coco_labels.txt)."""
    if isinstance(labels, list):
        return labels
    p = Path(labels)
    if not p.is_absolute():
        places = [p] + ([Path(model_path).parent / p] if model_path else []) + [BUNDLED_LABELS / p]
        p = next((c for c in places if c.is_file()), p)
    if not p.is_file():
        raise ConfigError(f"model.labels: labels file not found: {labels} (looked in the working directory, "
                          f"beside the model and in {BUNDLED_LABELS})")
    out: dict[int, str] = {}
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        why = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else e.strerror or str(e)
        raise ConfigError(f"model.labels: cannot read labels file {p}: {why}") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        head, _, rest = ln.partition(" ")
        if head.isdigit() and rest.strip():
            if int(head) >= MAX_LABEL_ID:  # the list is filled up to the largest id: bound it before building it
                raise ConfigError(f"model.labels: {p}: label id {shorten(head, 20)} ({shorten(rest.strip(), 40)}) "
                                  f"is too large (ids are class numbers, below {MAX_LABEL_ID})")
            out[int(head)] = rest.strip()  # Axis/Coral "<id> <label>" form
        else:
            out[i] = ln
    return [out.get(i, str(i)) for i in range(max(out) + 1)] if out else []


