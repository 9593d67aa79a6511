"""One validated configuration tree: YAML file, then VIGIL_… environment variables, then CLI flags."""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import yaml
from pydantic import (
    BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator,
)

from app.backends import BACKENDS
from app.capture import SOURCES
from app.decoders import DECODERS
from app.errors import ConfigError
from app.plugins import PluginConfig, Registry, registries
from app.tracking import TRACKERS
from app.analytics.config import (
    NAME_PATTERN, EventsConfig, FiltersConfig, LineConfig, StationaryConfig, ZoneConfig,
)
from app.api.config import ApiConfig
from app.publish.config import MqttConfig

log = logging.getLogger(__name__)

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

ENV_PREFIX = "VIGIL_"
ENV_NESTING = "__"
ENV_NOT_KEYS = {"VIGIL_CONFIG"}  # environment variables that are not config keys

# keys that moved into a plugin's section, with the default they had: files, VIGIL_… variables
# and --set keys using the old name keep working; one the chosen type lacks is dropped when it
# holds that default (an old copy of default.yaml), else refused naming the type it belongs to
MOVED_KEYS: dict[str, tuple[str, Any]] = {
    "model.device": ("model.backend.device", "cpu"),
    "model.threads": ("model.backend.threads", 1),
    "model.server_path": ("model.backend.server_path", None),
    "acap_runtime.inflight": ("model.backend.inflight", 2),
    "acap_runtime.load_timeout": ("model.backend.load_timeout", 300.0),
}


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

    @field_validator("input_range")
    @classmethod
    def _increasing(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        # an empty or reversed range maps every pixel to one value: the model sees a blank image
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError(f"must be [low, high] with low < high, e.g. [-1, 1] (got {list(v)})")
        return v


class TilingConfig(_Section):
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
    merge_threshold: float = Field(0.6, gt=0.0, le=1.0, description="overlap above which tile detections are merged")
    merge_metric: Literal["iou", "ios"] = Field("ios", description="'ios' (intersection over smaller) also merges partial boxes cut by tile edges")


class PreprocessConfig(_Section):
    resize: Literal["letterbox", "stretch"] = Field("letterbox", description="keep aspect with padding, or stretch")
    tiling: TilingConfig = Field(default_factory=TilingConfig, description="overlapping tiles for small objects")


class OutputConfig(_Section):
    jsonl: str | None = Field(None, description="JSON Lines file of per-frame tracked objects; '-' for stdout")
    video: str | None = Field(None, description="annotated video (.mp4/.avi) or latest annotated image (.jpg/.png)")
    progress: bool = Field(True, description="show a progress bar on stderr")


class AcapRuntimeConfig(_Section):
    address: str = Field("unix:///tmp/acap-runtime.sock", description="ACAP Runtime gRPC address: unix:///path or host:port")
    tls_cert: str | None = Field(None, description="server certificate (PEM) to connect with TLS; none = insecure")
    tls_authority: str = Field("localhost", description="name checked against the TLS certificate")
    connect_timeout: float = Field(120.0, ge=0, description="seconds to wait for the server and model at start; 0 = forever")
    retry_timeout: float = Field(600.0, ge=0, description="seconds of transient failures (restart, busy DLPU) tolerated mid-run; 0 = forever")
    timeout: float = Field(10.0, gt=0, description="deadline of calls other than the Predict that loads the model")
    parameters: bool = Field(False, description="read settings from the camera's parameters (manifest paramConfig) at start")
    parameter_prefix: str = Field("root.Vigil", description="parameter group of the app on the camera")
    parameter_poll: float = Field(
        10.0, ge=0,
        description="seconds between checks for changed camera parameters; a change restarts Vigil to apply it; 0 = off",
    )


class StateConfig(_Section):
    file: str | None = Field(
        None, description="JSON file that keeps line counts (and when they started) across restarts, and beside it "
                           "<name>.tracks.json the open tracks, ended (reason restart) by the next start after a crash; "
                           "none = start from 0"
    )
    interval: float = Field(
        60.0, ge=1.0, le=3600.0,
        description="seconds between saves while counts change (also saved on reset and at exit); spares camera flash",
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
    acap_runtime: AcapRuntimeConfig = Field(
        default_factory=AcapRuntimeConfig, description="ACAP Runtime connection (acap-runtime backend and source)"
    )
    device_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = Field(
        None, description="this device's name in topics and payloads; default: the host name (on the camera: its serial)"
    )
    zones: dict[Name, ZoneConfig] = Field({}, description="named polygon zones: occupancy, entered/left, dwell, loitering")
    lines: dict[Name, LineConfig] = Field({}, description="named counting lines: directional in/out counts")
    filters: FiltersConfig = Field(default_factory=FiltersConfig, description="what a track must pass before it is published")
    stationary: StationaryConfig = Field(default_factory=StationaryConfig, description="when an object counts as stationary")
    events: EventsConfig = Field(default_factory=EventsConfig, description="when update events are sent")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT publishing (events, counts, state)")
    api: ApiConfig = Field(default_factory=ApiConfig, description="HTTP status API, metrics and status page")
    state: StateConfig = Field(default_factory=StateConfig, description="what survives a restart")
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
                                   *((z, "labels", expand_labels) for z in self.zones.values()),
                                   *((ln, "labels", expand_labels) for ln in self.lines.values())):
            value = getattr(owner, key)
            expanded = expand(value, g)
            if expanded != value:
                setattr(owner, key, expanded)
        return self


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


def _set_dotted(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if isinstance(nxt, str) and ".".join(parts[: i + 1]) in _plugin_keys():
            nxt = {"type": nxt}  # `model.backend: acap-runtime`, then model.backend.device
        if not isinstance(nxt, dict):
            nxt = {}
        node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def _get_dotted(tree: dict, key: str) -> tuple[bool, Any]:
    node: Any = tree
    for p in key.split("."):
        if not isinstance(node, dict) or p not in node:
            return False, None
        node = node[p]
    return True, node


def _pop_dotted(tree: dict, key: str) -> None:
    *path, last = key.split(".")
    found, node = _get_dotted(tree, ".".join(path)) if path else (True, tree)
    if found and isinstance(node, dict):
        node.pop(last, None)


def _plugin_keys() -> dict[str, Registry]:
    return {r.key: r for r in registries()}


def _apply(tree: dict, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted keys in tree, old names (MOVED_KEYS) at their new place; returns the old ones used."""
    moved = {}
    for key, value in settings.items():
        if key in MOVED_KEYS:
            moved[key] = value
            key = MOVED_KEYS[key][0]
        _set_dotted(tree, key, value)
    return moved


def _move_old_keys(tree: dict) -> dict[str, Any]:
    """Old key names in a file's tree moved to their new place (the new name wins when both are given)."""
    moved = {}
    for old, (new, _) in MOVED_KEYS.items():
        found, value = _get_dotted(tree, old)
        if not found:
            continue
        _pop_dotted(tree, old)
        moved[old] = value
        if not _get_dotted(tree, new)[0]:
            _set_dotted(tree, new, value)
    return moved


def _drop_other_types_defaults(tree: dict) -> list[str]:
    """In a section of the default type, keys of another type holding that type's default are
    dropped (an old copy of default.yaml lists the YOLO and MediaPipe keys flat under decoder, the
    camera stream under source); returns them. A type chosen explicitly gets no such leniency."""
    dropped = []
    for registry in registries():
        found, node = _get_dotted(tree, registry.key)
        if not found or not isinstance(node, dict):
            continue
        chosen = node.get("type", registry.default)
        if chosen != registry.default:
            continue
        mine = registry.config_class(chosen).model_fields
        defaults = {}
        for name in registry.names():
            cls = registry.config_class(name)
            if cls is not registry.config_class(chosen):
                defaults.setdefault(cls, cls.model_validate({"type": name}).model_dump(mode="json"))
        for key in [k for k in node if k not in mine]:
            if any(key in d and node[key] == d[key] for d in defaults.values()):
                del node[key]
                dropped.append(f"{registry.key}.{key}")
    return dropped


def _drop_moved_defaults(tree: dict, moved: Mapping[str, Any]) -> None:
    """Moved keys the section's chosen type lacks, when they hold their old default, are dropped."""
    for old in moved:
        new, default = MOVED_KEYS[old]
        section, name = new.rsplit(".", 1)
        registry = _plugin_keys()[section]
        found, node = _get_dotted(tree, section)
        chosen = node.get("type", registry.default) if isinstance(node, dict) else registry.default
        if chosen not in registry.modules or name in registry.config_class(chosen).model_fields:
            continue
        found, value = _get_dotted(tree, new)
        if found and value == default:
            _pop_dotted(tree, new)


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """VIGIL_MODEL__PATH=x -> {"model.path": x}; values parsed as YAML scalars/lists ("true", "5", "[1,2]")."""
    out = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_KEYS:
            continue
        key = name[len(ENV_PREFIX) :].lower().replace(ENV_NESTING, ".")
        out[key] = parse_scalar(raw)
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader refusing a key given twice in one mapping (PyYAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` may be overridden by the keys after it
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first.setdefault(key, key_node)
            except TypeError:
                continue  # unhashable: the base class says so
            if earlier is not key_node:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {earlier.start_mark.line + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep)


def parse_scalar(raw: str) -> Any:
    try:
        return yaml.load(raw, Loader=_UniqueKeyLoader) if raw.strip() else raw
    except yaml.YAMLError:
        return raw


def format_validation_error(e: ValidationError, prefix: str = "") -> str:
    """One line naming the first bad key and the problem."""
    errs = e.errors()
    first = errs[0]
    parts = [*(prefix.split(".") if prefix else []), *first["loc"]]
    registry, plugin_type = _plugin_section(parts)
    loc = ".".join(str(p) for p in parts)
    msg = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    if first["type"] == "union_tag_invalid" and registry is not None:
        line = f"{loc}.type: unknown {registry.kind} {first['ctx']['tag']!r}; choose one of {', '.join(registry.names())}"
    elif first["type"] == "extra_forbidden":
        line = f"{loc}: unknown key"
        if plugin_type is not None:
            line += f" for {registry.key}.type {plugin_type}" + _other_type_hint(registry, str(parts[-1]), plugin_type)
    else:
        line = f"{loc}: {msg}"
        if first["type"] != "missing" and not isinstance(got, (dict, list)):
            line += f" (got {got!r})"
    if len(errs) > 1:
        line += f" (and {len(errs) - 1} more)"
    return line


def _plugin_section(parts: list) -> tuple[Registry | None, str | None]:
    """The registry whose section `parts` is in, and the plugin type pydantic put in the path (the
    union's tag, which users never write; removed from `parts`)."""
    for registry in registries():
        key = registry.key.split(".")
        if parts[: len(key)] != key:
            continue
        if len(parts) > len(key) + 1 and parts[len(key)] in registry.modules:
            return registry, parts.pop(len(key))
        return registry, None
    return None, None


def _other_type_hint(registry: Registry, key: str, plugin_type: str) -> str:
    owners = registry.owners(key, besides=plugin_type)
    if not owners:
        return ""
    article = "an" if owners[0][0] in "aeiou" else "a"
    return f" (it is {article} {' and '.join(owners)} key: set {registry.key}.type: {owners[0]})"


def read_yaml(path: str | Path) -> dict:
    """The YAML mapping in `path`, or a ConfigError saying what is wrong with the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{p} line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}{where}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections, got {type(data).__name__}")
    return data


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Defaults < YAML file < VIGIL_… environment < CLI overrides (dotted keys), validated once."""
    tree = read_yaml(path) if path else {}
    env = os.environ if env is None else env
    moved = _move_old_keys(tree)
    moved.update(_apply(tree, {**_env_overrides(env), **(overrides or {})}))
    _drop_moved_defaults(tree, moved)
    ignored = _drop_other_types_defaults(tree)
    try:
        cfg = Config.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None
    if moved:
        log.warning("config: old key names still read: %s", ", ".join(
            f"{old} (now {MOVED_KEYS[old][0]})" for old in moved))
    if ignored:
        log.warning("config: keys of other plugin types, at their defaults, ignored: %s", ", ".join(ignored))
    return cfg


BUNDLED_LABELS = Path(__file__).resolve().parent / "labels"


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
            out[int(head)] = rest.strip()  # Axis/Coral "<id> <label>" form
        else:
            out[i] = ln
    return [out.get(i, str(i)) for i in range(max(out) + 1)] if out else []


def _yaml_value(v: Any) -> str:
    if isinstance(v, tuple):
        v = list(v)
    return yaml.safe_dump(v, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def _render(model: BaseModel, pad: str, lines: list[str], only: Mapping[str, Any] | None = None) -> None:
    """model's fields (or `only` those) as YAML lines, each after its description; `pad` is the
    indent, ending in "# " for a commented-out alternative."""
    registry = _registry_of(model)
    for name, field in (only or type(model).model_fields).items():
        value = getattr(model, name)
        description = field.description
        if registry is not None and name == "type":
            description = f"one of: {', '.join(registry.names())}" + (f"; {description}" if description else "")
        if description:
            lines.append(f"{pad}# {description}")
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            _render(value, pad + "  ", lines)
        else:
            lines.append(f"{pad}{name}: {_yaml_value(value)}")
    if registry is not None and only is None and not pad.endswith("# "):
        _render_alternatives(registry, model, pad, lines)


def _registry_of(model: BaseModel) -> Registry | None:
    if isinstance(model, PluginConfig):
        for registry in registries():
            if type(model) in registry.configs().values():
                return registry
    return None


def _render_alternatives(registry: Registry, chosen: PluginConfig, pad: str, lines: list[str]) -> None:
    """The other types' keys, commented out, so users find them: those the chosen type lacks or
    has with another default or meaning."""
    mine = type(chosen).model_fields
    names: dict[type[PluginConfig], list[str]] = {}
    for name, cls in registry.configs().items():
        if cls is not type(chosen):
            names.setdefault(cls, []).append(name)
    for cls, types in names.items():
        other = cls.model_validate({"type": types[0]})
        theirs = {k: f for k, f in cls.model_fields.items() if k != "type" and not (
            k in mine and getattr(other, k) == getattr(chosen, k) and f.description == mine[k].description)}
        if not theirs:
            lines.append(f"{pad}# or type: {' or '.join(types)} (no keys of its own)")
            continue
        how = "which adds" if all(k in cls.model_fields for k in mine) else \
            "with these keys of its own (those above it lacks are refused)"
        lines.append(f"{pad}# or type: {' or '.join(types)}, {how}:")
        _render(other, pad + "# ", lines, only=theirs)


def render_defaults(header: str = "") -> str:
    """The whole configuration with every key, its default and its description, as YAML."""
    lines = [header.rstrip()] if header else []
    _render(Config(), "", lines)
    return "\n".join(lines) + "\n"
