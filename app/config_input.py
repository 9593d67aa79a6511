"""What the config tree is merged from: a YAML file, VIGIL_… environment variables and dotted
overrides (flags, camera parameters), with old key names moved to their new place."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from app.errors import ConfigError
from app.plugins import Registry

ENV_PREFIX = "VIGIL_"
ENV_NESTING = "__"
ENV_NOT_KEYS = {"VIGIL_CONFIG"}  # environment variables that are not config keys

# old key name -> its place in a plugin's section: files, VIGIL_… variables and --set keys using
# the old name keep working
MOVED_KEYS: dict[str, str] = {
    "model.device": "model.backend.device",
    "model.threads": "model.backend.threads",
    "model.server_path": "model.backend.server_path",
    "acap_runtime.inflight": "model.backend.inflight",
    "acap_runtime.load_timeout": "model.backend.load_timeout",
    # the tile keys are the `fixed` view planner's (app/regions)
    **{f"preprocess.tiling.{k}": f"preprocess.planner.{k}" for k in (
        "enabled", "auto_scale", "tile_size", "overlap", "full_frame", "merge_threshold", "merge_metric")},
}

# values an earlier config/default.yaml wrote for a key whose default has changed since: under a type that
# lacks the key they change nothing either, so an old copy of that file still loads (threads: 1 with acap-runtime)
OLD_DEFAULTS: dict[str, tuple] = {"model.backend.threads": (1,)}


def set_dotted(tree: dict, key: str, value: Any, plugins: Sequence[Registry] = ()) -> None:
    """Set a dotted key, making the sections on its way; a section of one of `plugins` given by name
    becomes that type's section (`model.backend: acap-runtime`, then model.backend.device)."""
    parts = key.split(".")
    node = tree
    keys = _plugin_keys(plugins)
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if isinstance(nxt, str) and ".".join(parts[: i + 1]) in keys:
            nxt = {"type": nxt}  # `model.backend: acap-runtime`, then model.backend.device
        if not isinstance(nxt, dict):
            nxt = {}
        node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def get_dotted(tree: dict, key: str) -> tuple[bool, Any]:
    node: Any = tree
    for p in key.split("."):
        if not isinstance(node, dict) or p not in node:
            return False, None
        node = node[p]
    return True, node


def pop_dotted(tree: dict, key: str) -> None:
    """Remove a dotted key, and the sections it leaves empty (an old `preprocess.tiling` moved away)."""
    *path, last = key.split(".")
    found, node = get_dotted(tree, ".".join(path)) if path else (True, tree)
    if found and isinstance(node, dict):
        node.pop(last, None)
        if not node and path:
            pop_dotted(tree, ".".join(path))


def _plugin_keys(plugins: Sequence[Registry]) -> dict[str, Registry]:
    return {r.key: r for r in plugins}


def _apply(tree: dict, settings: Mapping[str, Any], plugins: Sequence[Registry]) -> dict[str, Any]:
    """Set dotted keys in tree, old names (MOVED_KEYS) at their new place; a plugin section set to a
    name sets its type and keeps its other keys (VIGIL_MODEL__BACKEND=acap-runtime, as --backend).
    Returns the old names used."""
    moved = {}
    keys = _plugin_keys(plugins)
    for key, value in settings.items():
        if key in MOVED_KEYS:
            moved[key] = value
            key = MOVED_KEYS[key]
        elif isinstance(value, str) and key in keys:
            key += ".type"
        set_dotted(tree, key, value, plugins)
    return moved


def _move_old_keys(tree: dict, plugins: Sequence[Registry]) -> dict[str, Any]:
    """Old key names in a file's tree moved to their new place (the new name wins when both are given)."""
    moved = {}
    for old, new in MOVED_KEYS.items():
        found, value = get_dotted(tree, old)
        if not found:
            continue
        pop_dotted(tree, old)
        moved[old] = value
        if not get_dotted(tree, new)[0]:
            set_dotted(tree, new, value, plugins)
    return moved


def _section_types(tree: dict, plugins: Sequence[Registry]) -> dict[str, str | None]:
    """Each plugin section's type as the tree has it now (None: the section has no type of its own)."""
    out = {}
    for registry in plugins:
        found, node = get_dotted(tree, registry.key)
        out[registry.key] = node.get("type", registry.default) if found and isinstance(node, dict) else None
    return out


def _drop_unused_defaults(tree: dict, moved: Mapping[str, Any], file_types: Mapping[str, str | None],
                          plugins: Sequence[Registry]) -> list[str]:
    """Keys a section's type lacks that hold another type's default change nothing; they are dropped
    (and returned) where an older file put them: in a section of the default type (an old copy of
    default.yaml lists the YOLO and MediaPipe keys flat under decoder, the camera stream under
    source), under an old key name (`model.threads: 1` with backend acap-runtime), or in a file whose
    type the environment or a flag changed (`--config config/default.yaml --set tracker.type=sort`:
    the file's ByteTrack keys, at their defaults). Elsewhere, or holding another value, they are
    refused naming the type they belong to."""
    old_places = {MOVED_KEYS[old] for old in moved}
    dropped = []
    for registry in plugins:
        found, node = get_dotted(tree, registry.key)
        chosen = node.get("type", registry.default) if found and isinstance(node, dict) else None
        if chosen not in registry.modules:
            continue
        mine = registry.config_class(chosen)
        others = {}
        for name in registry.names():
            cls = registry.config_class(name)
            if cls is not mine:
                others.setdefault(cls, cls.model_validate({"type": name}).model_dump(mode="json"))
        for key in [k for k in node if k not in mine.model_fields]:
            where = f"{registry.key}.{key}"
            switched = file_types.get(registry.key) not in (None, chosen)
            if chosen != registry.default and where not in old_places and not switched:
                continue
            old_default = node[key] in OLD_DEFAULTS.get(where, ())
            if old_default or any(key in d and node[key] == d[key] for d in others.values()):
                del node[key]
                dropped.append(where)
    return dropped


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """VIGIL_MODEL__PATH=x -> {"model.path": x}; values parsed as YAML scalars/lists ("true", "5", "[1,2]")."""
    out = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_KEYS:
            continue
        key = name[len(ENV_PREFIX) :].lower().replace(ENV_NESTING, ".")
        if not all(key.split(".")):  # VIGIL___X, VIGIL_SOURCE__: no key to name
            raise ConfigError(f"environment variable {name}: not a config key; the form is "
                              f"VIGIL_<SECTION>__<KEY>, e.g. VIGIL_MODEL__PATH")
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


def read_yaml(path: str | Path) -> dict:
    """The YAML mapping in `path`, or a ConfigError saying what is wrong with the file."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {p} is a directory; name a YAML file, e.g. config/default.yaml")
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


# The one rule of precedence, lowest first. Each layer overrides the keys it sets; the site file's
# named collections (REPLACED_WHOLE) replace the ones below whole, so a zone deleted on site stays deleted.
LAYERS = (
    "defaults (the pydantic model; config/default.yaml lists them)",
    "the model's own settings (<model>.yaml beside the model named by the layers above; under_model_sidecar)",
    "config file (--config or VIGIL_CONFIG; the image's /config/vigil.yaml)",
    "environment (VIGIL_<SECTION>__<KEY>; the compose file)",
    "camera parameters (the app's parameters in the camera's web page)",
    "site file (saved from Vigil's settings page or PUT /api/config; /data/site.yaml on the camera)",
    "command-line flags (--set, --model, …)",
)
REPLACED_WHOLE = ("zones", "lines", "rules")


def merge_site(tree: dict, site: Mapping[str, Any]) -> None:
    """Lay a site tree over `tree`: sections merge key by key, REPLACED_WHOLE collections are replaced."""
    def merge(node: dict, over: Mapping[str, Any], top: bool) -> None:
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(node.get(key), dict) and not (top and key in REPLACED_WHOLE):
                merge(node[key], value, False)
            else:
                node[key] = copy.deepcopy(value)
    merge(tree, site, True)


def merged_tree(path: str | Path | None, overrides: Mapping[str, Any] | None, env: Mapping[str, str],
                params: Mapping[str, Any] | None = None, site: Mapping[str, Any] | None = None, *,
                plugins: Sequence[Registry]) -> tuple[dict, list[str]]:
    """The raw tree, layered as LAYERS says: YAML file < VIGIL_… environment < camera parameters (dotted
    keys) < site tree < overrides (dotted keys), old names moved; and notes on what was moved or ignored
    (warnings once the tree validates). `plugins`: the registries whose sections the tree has
    (app.config.PLUGINS)."""
    tree = read_yaml(path) if path else {}
    moved = _move_old_keys(tree, plugins)
    file_types = _section_types(tree, plugins)
    moved.update(_apply(tree, {**env_overrides(env), **(params or {})}, plugins))
    if site:
        site = copy.deepcopy(dict(site))
        moved.update(_move_old_keys(site, plugins))
        merge_site(tree, site)
    moved.update(_apply(tree, dict(overrides or {}), plugins))
    ignored = _drop_unused_defaults(tree, moved, file_types, plugins)
    notes = []
    if moved:
        notes.append("config: old key names still read: " + ", ".join(
            f"{old} (now {MOVED_KEYS[old]})" for old in moved))
    if ignored:
        notes.append("config: keys of other plugin types, at their defaults, ignored: " + ", ".join(ignored))
    return tree, notes


SIDECAR_SECTIONS = {"model", "preprocess", "decoder", "tracker"}  # what a model may say about itself
SIDECAR_NOT = ("model.path", "model.backend")  # how and where it runs is the user's, not the model's


def model_sidecar(model_path: str) -> Path | None:
    """The settings file a model brings: <model>.yaml beside it (models/nanodet_int8_pertensor.yaml),
    for a relative path looked for in the working directory, then among Vigil's own files."""
    p = Path(model_path)
    places = [p] if p.is_absolute() else [p, Path(__file__).resolve().parents[1] / p]
    return next((c.with_suffix(".yaml") for c in places if c.is_file() and c.with_suffix(".yaml").is_file()), None)


def under_model_sidecar(tree: dict, default_model: str, *, plugins: Sequence[Registry]) -> tuple[dict, Path | None]:
    """`tree` layered over the sidecar of the model it names (defaults < sidecar < file, environment,
    camera parameters, flags). A plugin section the tree gives another type replaces the sidecar's."""
    model = tree.get("model")
    path = model.get("path", default_model) if isinstance(model, dict) else default_model
    sidecar = model_sidecar(path) if isinstance(path, str) and path else None
    if sidecar is None:
        return tree, None
    base = read_yaml(sidecar)
    unknown = sorted(set(base) - SIDECAR_SECTIONS) + [k for k in SIDECAR_NOT if get_dotted(base, k)[0]]
    if unknown:
        raise ConfigError(f"{sidecar}: a model's settings file may set {', '.join(sorted(SIDECAR_SECTIONS))} "
                          f"(not {', '.join(unknown)}); put the rest in the config")
    return _layer(base, tree, "", _plugin_keys(plugins)), sidecar


def _layer(base: Any, over: Any, where: str, keys: Mapping[str, Registry]) -> Any:
    """`over` merged onto `base`, mappings key by key; a plugin section (`keys`) of another type replaces base's."""
    if where in keys:
        base, over = ({"type": v} if isinstance(v, str) else v for v in (base, over))
        if isinstance(base, dict) and isinstance(over, dict) and "type" in over and over["type"] != base.get("type"):
            return over
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return over
    out = dict(base)
    for key, value in over.items():
        out[key] = _layer(base[key], value, f"{where}.{key}".lstrip("."), keys) if key in base else value
    return out
