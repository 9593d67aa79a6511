"""Outputs: every consumer of FrameResults, built from one registry in its declared order.

An output is one module defining

    class Config(PluginConfig):              # its own config section, tagged by type
        type: Literal["mine"] = "mine"
        url: str
    def build(cfg: Config, ctx: OutputContext) -> Consumer | None: ...   # None: not wanted in this run

and one line `"mine": "app.outputs.mine"` in OUTPUTS (or `OUTPUTS.modules["mine"] = "my_module"` from
outside app/). An added output is configured as an entry of the config's `outputs` list
(`outputs: [{type: mine, url: …}]`); the built-in ones keep the sections users know (`output.jsonl`,
`output.video`, `snapshots`, `state`, `mqtt`, `api`), name that section in `SECTION`, and are built
whenever the run has them. The registry's order is the order results reach the outputs (and the
reverse is the order they are closed); outputs listed under `outputs` go in that order too, after
the built-ins. Outputs never hold each other: what they tell each other goes through `ctx.links`
(app/outputs/links.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field

from app.outputs.links import Links
from app.plugins import PluginConfig, Registry
from app.timing import StageTimer
from app.types import FrameResult
from app.worker import Consumer

if TYPE_CHECKING:
    from app.publish.live import LivePublisher
    from app.publish.state import RunState
    from app.snapshots import SnapshotStore
    from app.status import Status

__all__ = ["OUTPUTS", "Links", "OutputContext", "OutputRegistry", "build_outputs"]


@dataclass
class OutputContext:
    """What an output's build gets besides its own section: the run's parts it may hand results to or
    listen through. Built-in outputs read their long-standing sections from `cfg`, the whole config."""

    cfg: Any  # app.config.Config (not imported: the config tree imports this module)
    labels: list[str]
    run_id: str
    fps: float | None  # frames per second of the source, for a video written at its pace
    initial: FrameResult  # the state as the run starts (line counts restored from state.file)
    links: Links = field(default_factory=Links)
    timer: StageTimer = field(default_factory=StageTimer)
    status: Status | None = None  # made before the outputs: the HTTP API serves it while the model loads
    mqtt: LivePublisher | None = None  # likewise, so /api/health shows it while starting up
    snapshots: SnapshotStore | None = None  # the store snapshots fill (while each result is made) and the API reads
    state: RunState | None = None  # the state files, opened (locked, restored) before any output
    where: list[str] = field(default_factory=list)  # where each output writes, for the run's summary


class OutputRegistry(Registry):
    """The outputs' Registry: its config is a list of sections (one per added output), each tagged by
    `type`, where a built-in output's type is refused naming the section it is set in."""

    def builtin(self, name: str) -> str | None:
        """The config section a built-in output reads (None for an added output)."""
        return getattr(self.module(name), "SECTION", None) if name in self.modules else None

    def names(self) -> list[str]:
        """The types an entry of `outputs` may name: the added ones."""
        return [name for name in self.modules if not self.builtin(name)]

    def section(self) -> Any:
        def known(v: Any) -> Any:
            kind = v.get("type") if isinstance(v, dict) else getattr(v, "type", None)
            if isinstance(kind, str) and (where := self.builtin(kind)):
                raise ValueError(f"{kind} is a built-in output, set in `{where}`; list here only added outputs")
            return v

        return Annotated[self.union(), BeforeValidator(known)]

    def field(self, description: str) -> Any:
        return Field(default_factory=list, description=description)

    def added(self, sections: list[PluginConfig]) -> list[PluginConfig]:
        """The sections of every output to build, in the registry's order: each built-in's (its type
        alone), then the configured ones in theirs (two of one type in the order they are listed)."""
        rank = {name: i for i, name in enumerate(self.modules)}
        built_in = [self.config_class(name)(type=name) for name in self.modules if self.builtin(name)]
        return built_in + sorted(sections, key=lambda s: rank[s.type])


# one line per output, in the order results reach them (a result is frozen and complete before any
# output sees it: has_snapshot is decided while it is made, app/snapshots/flags.py); the open-tracks
# file (state) before the publisher, so that a track is on disk before its `new` is queued
OUTPUTS = OutputRegistry("output", "outputs", {
    "jsonl": "app.outputs.jsonl",
    "video": "app.outputs.video",
    "status": "app.outputs.status",
    "state": "app.outputs.state",
    "tracks": "app.outputs.tracks",
    "mqtt": "app.outputs.mqtt",
})


def build_outputs(sections: list[PluginConfig], ctx: OutputContext) -> list[Consumer]:
    """Every output the run has, built in the registry's order (those whose build says None left out)."""
    built = (OUTPUTS.build(section, ctx) for section in OUTPUTS.added(sections))
    return [c for c in built if c is not None]
