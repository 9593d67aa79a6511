"""Built-in output: the run's status behind the HTTP API, page and metrics (app/status.py), set in `api`
(and made for `mqtt` too, whose stats and health it assembles)."""
from __future__ import annotations

from typing import Literal

from app.plugins import PluginConfig

SECTION = "api"


class Config(PluginConfig):
    type: Literal["status"] = "status"


def build(cfg: Config, ctx):
    if ctx.status is None:  # neither the API nor MQTT is on
        return None
    ctx.status.set_initial(ctx.initial)
    return ctx.status
