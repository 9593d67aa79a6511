"""How every plugin (backend, source, decoder, planner, tracker, rule, output) is registered, configured and built.

A plugin is one module defining

    class Config(PluginConfig):          # its own config section, tagged by type
        type: Literal["mine"] = "mine"
        some_key: int = 3
    def build(cfg: Config, ctx: RunContext, ...) -> <the kind's Protocol>: ...

and one line `"mine": "app.<kind>.mine"` in its kind's Registry. The config tree takes each kind's
section as the discriminated union of the registered Configs, so adding a plugin edits nothing
else. The config tree imports every registered module for its Config: a plugin module's top level
stays cheap (numpy, pydantic); heavy runtimes (ai_edge_litert, grpc, cv2) are imported in build.

Which registries make up the config tree is declared in one place, `app.config.PLUGINS`; nothing here
keeps a list of the registries that happen to exist. Whatever reads the tree by plugin section (error
messages, config/default.yaml, the merging of layers) is handed the registries it is to know.
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Sequence, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from app.errors import ConfigError
from app.logtext import shorten
from app.health import Health
from app.timing import StageTimer

if TYPE_CHECKING:
    from app.acap.config import AcapRuntimeConfig


class PluginConfig(BaseModel):
    """Base of every plugin's own config section: unknown keys are refused, `type` names the plugin."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    type: str


@dataclass
class RunContext:
    """What a plugin gets besides its own section: the run's stage timer, its own health, the cancel
    event; and the shared ACAP Runtime connection (address, TLS, retry timeouts, parameters), which
    the acap-runtime backend and source both use and so is a top-level section, not a plugin's; and for a
    backend, the most frames the run will give it at once."""

    timer: StageTimer = field(default_factory=StageTimer)
    health: Health = field(default_factory=Health)
    cancel: threading.Event | None = None
    acap: AcapRuntimeConfig | None = None
    frames: int | None = None  # the most frames the run has in the model at once (None: as many as it likes)


class Registry:
    """One kind's plugins: type name -> module path, imported only when asked for."""

    def __init__(self, kind: str, key: str, modules: dict[str, str], default: str | None = None) -> None:
        self.kind = kind  # what the plugins are, for messages ("decoder")
        self.key = key  # the config section holding the union ("decoder", "model.backend"; "rules.*": each entry)
        self.modules = modules
        self.default = default or next(iter(modules), None)  # the type of a section that names none

    def names(self) -> list[str]:
        return list(self.modules)

    def module(self, name: str) -> ModuleType:
        """The plugin module registered as `name`."""
        if name not in self.modules:
            raise ConfigError(f"{self.key}.type: unknown {self.kind} {name!r}; choose one of {', '.join(self.modules)}")
        return importlib.import_module(self.modules[name])

    def config_class(self, name: str) -> type[PluginConfig]:
        return self.module(name).Config

    def configs(self) -> dict[str, type[PluginConfig]]:
        """Every registered name with its Config class (one module may serve several names)."""
        return {name: self.config_class(name) for name in self.modules}

    def union(self) -> Any:
        """The config section's type: the registered Configs, told apart by `type`."""
        classes = list(dict.fromkeys(self.configs().values()))
        if not classes:  # a kind whose plugins all come from outside (rules): every section is refused
            return Annotated[PluginConfig, BeforeValidator(self._none_registered)]
        if len(classes) == 1:
            return classes[0]
        return Annotated[Union[tuple(classes)], Field(discriminator="type")]

    def section(self) -> Any:
        """The union as a field type where a section without `type` is of the default type (keys given
        without the type apply to the default plugin), and a bare name is a type (`backend: tflite`)."""
        def default_type(v: Any) -> Any:
            if isinstance(v, str):
                return {"type": v}
            return {"type": self.default, **v} if isinstance(v, dict) and "type" not in v else v

        return Annotated[self.union(), BeforeValidator(default_type)]

    def _none_registered(self, v: Any) -> Any:
        tag = v.get("type") if isinstance(v, dict) else v
        raise ValueError(f"unknown {self.kind} {tag!r}; none is registered" if tag else
                         f"a {self.kind} needs a type; none is registered")

    def field(self, description: str) -> Any:
        """The config tree's Field of this kind's section, defaulting to the default plugin's defaults."""
        return Field(default_factory=self.config_class(self.default), description=description)

    def parse(self, section: dict | PluginConfig) -> PluginConfig:
        """A section validated on its own (tests, tools); the config tree does the same in place."""
        if isinstance(section, PluginConfig):
            return section
        try:
            return TypeAdapter(self.section()).validate_python(section)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, (self,), prefix=self.key)) from None

    def build(self, cfg: PluginConfig, ctx: RunContext | None = None, *args: Any) -> Any:
        """The plugin of cfg.type, built from its own section, the run context and the kind's inputs."""
        return self.module(cfg.type).build(cfg, ctx or RunContext(), *args)

    def owners(self, key: str, besides: str | None = None) -> list[str]:
        """Registered names whose section has `key` (for 'it is a … key' hints)."""
        return [name for name, c in self.configs().items() if name != besides and key in c.model_fields]


def format_validation_error(e: ValidationError, plugins: Sequence[Registry], prefix: str = "") -> str:
    """One line naming the first bad key and the problem; a key in the section of one of `plugins` is
    named as users write it, with its plugin type (the config tree passes its PLUGINS, a section
    validated alone its own registry)."""
    items = validation_items(e, plugins, prefix)
    line = f"{items[0]['loc']}: {items[0]['msg']}"
    if len(items) > 1:
        line += f" (and {len(items) - 1} more)"
    return line


def validation_items(e: ValidationError, plugins: Sequence[Registry], prefix: str = "") -> list[dict[str, str]]:
    """Each problem as {"loc": dotted key, "msg": one line} (the API's 422 answer lists them all)."""
    return [_describe(err, plugins, prefix) for err in e.errors()]


def _describe(err: Any, plugins: Sequence[Registry], prefix: str) -> dict[str, str]:
    parts = [*(prefix.split(".") if prefix else []), *err["loc"]]
    registry, plugin_type = _plugin_section(parts, plugins)
    loc = shorten(".".join(str(p) for p in parts), 120)  # a key is input too: a huge one is cut
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    if err["type"] == "union_tag_invalid" and registry is not None:
        return {"loc": f"{loc}.type", "msg": f"unknown {registry.kind} {err['ctx']['tag']!r}; choose one of "
                                             f"{', '.join(registry.names()) or '(none registered)'}"}
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
        if plugin_type is not None:
            section = ".".join(str(p) for p in parts[:len(registry.key.split("."))])  # rules.* -> rules.lane
            msg += f" for {section}.type {plugin_type}" + _other_type_hint(registry, section, str(parts[-1]), plugin_type)
        return {"loc": loc, "msg": msg}
    if err["type"] != "missing" and not isinstance(got, (dict, list)):
        msg += f" (got {shorten(repr(got), 80)})"
    return {"loc": loc, "msg": msg}


def _plugin_section(parts: list, plugins: Sequence[Registry]) -> tuple[Registry | None, str | None]:
    """The registry of `plugins` whose section `parts` is in, and the plugin type pydantic put in the
    path (the union's tag, which users never write; removed from `parts`)."""
    for registry in plugins:
        key = registry.key.split(".")
        if len(parts) < len(key) or any(k not in ("*", p) for k, p in zip(key, parts)):
            continue
        at = len(key) + (1 if len(parts) > len(key) and isinstance(parts[len(key)], int) else 0)  # a list's entry
        if len(parts) > at + 1 and parts[at] in registry.modules:
            return registry, parts.pop(at)
        return registry, None
    return None, None


def _other_type_hint(registry: Registry, section: str, key: str, plugin_type: str) -> str:
    owners = registry.owners(key, besides=plugin_type)
    if not owners:
        return ""
    article = "an" if owners[0][0] in "aeiou" else "a"
    return f" (it is {article} {' and '.join(owners)} key: set {section}.type: {owners[0]})"
