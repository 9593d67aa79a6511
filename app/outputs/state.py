"""Built-in output: the line counts kept across restarts (state.file and its journal), set in `state`."""
from __future__ import annotations

from typing import Literal

from app.plugins import PluginConfig

SECTION = "state"


class Config(PluginConfig):
    type: Literal["state"] = "state"


def build(cfg: Config, ctx):
    return ctx.state.lines if ctx.state is not None else None
