"""Built-in output: every frame's published objects as JSON Lines, set in `output.jsonl`."""
from __future__ import annotations

from typing import Literal

from app.plugins import PluginConfig
from app.sinks.files import check_file_outputs
from app.sinks.jsonl import JsonlSink

SECTION = "output.jsonl"


class Config(PluginConfig):
    type: Literal["jsonl"] = "jsonl"


def build(cfg: Config, ctx):
    out = ctx.cfg.output
    if not out.jsonl:
        return None
    check_file_outputs(ctx.cfg)
    ctx.where.append("stdout (JSON Lines)" if out.jsonl == "-" else f"{out.jsonl} (JSON Lines)")
    return JsonlSink(out.jsonl, ctx.labels, out.append)
