"""config/default.yaml from the tree: every key with its default and description, and the keys of
the plugin types not chosen by default, commented out."""
from __future__ import annotations

from typing import Any, Mapping, get_args

import yaml
from pydantic import BaseModel

from app.config import PLUGINS, Config
from app.plugins import PluginConfig, Registry


def _yaml_value(v: Any) -> str:
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, dict):  # e.g. per-label models: only the keys they set
        v = {k: x.model_dump(exclude_none=True) if isinstance(x, BaseModel) else x for k, x in v.items()}
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
        elif value == {} and (item := _item_model(field)) is not None:
            lines.append(f"{pad}{name}: {{}}")
            _render_example(name, item, pad, lines)
        else:
            lines.append(f"{pad}{name}: {_yaml_value(value)}")
    if registry is not None and only is None and not pad.endswith("# "):
        _render_alternatives(registry, model, pad, lines)


def _item_model(field: Any) -> type[BaseModel] | None:
    """The model of a `dict[name, Model]` field's values (zones, lines), else None."""
    args = get_args(field.annotation)
    return args[1] if len(args) == 2 and isinstance(args[1], type) and issubclass(args[1], BaseModel) else None


def _render_example(name: str, item: type[BaseModel], pad: str, lines: list[str]) -> None:
    """One commented-out entry of a named collection: every key, required ones with an example value."""
    lines.append(f"{pad}# for example (names: letters, digits, _ and -; they become MQTT topic levels):")
    lines.append(f"{pad}# {name}:")
    lines.append(f"{pad}#   {EXAMPLE_NAMES.get(name, 'example')}:")
    for key, f in item.model_fields.items():
        if f.description:
            lines.append(f"{pad}#     # {f.description}")
        value = f.examples[0] if f.is_required() and f.examples else f.get_default(call_default_factory=True)
        lines.append(f"{pad}#     {key}: {_yaml_value(value)}")


EXAMPLE_NAMES = {"zones": "lawn", "lines": "gate"}


def _registry_of(model: BaseModel) -> Registry | None:
    if isinstance(model, PluginConfig):
        for registry in PLUGINS:
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
