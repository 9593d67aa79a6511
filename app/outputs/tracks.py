"""Built-in output: the tracks still open (beside state.file), so that a run that dies has their `end`
sent by the next one; set in `state`. With MQTT on, an object is forgotten once the broker has
acknowledged its `end` (`links.end_delivered`)."""
from __future__ import annotations

from typing import Literal

from app.plugins import PluginConfig

SECTION = "state"


class Config(PluginConfig):
    type: Literal["tracks"] = "tracks"


def build(cfg: Config, ctx):
    if ctx.state is None:
        return None
    ctx.links.end_delivered.connect(ctx.state.tracks.confirm)
    return ctx.state.tracks
