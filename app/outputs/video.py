"""Built-in output: the annotated video (or image), set in `output.video`."""
from __future__ import annotations

from typing import Literal

from app.plugins import PluginConfig
from app.sinks.files import check_file_outputs

SECTION = "output.video"


class Config(PluginConfig):
    type: Literal["video"] = "video"


def build(cfg: Config, ctx):
    target = ctx.cfg.output.video
    if not target:
        return None
    check_file_outputs(ctx.cfg)
    from app.sinks.video import VideoSink  # cv2's writer: imported only when a video is asked for

    ctx.where.append(f"{target} (annotated)")
    return VideoSink(target, ctx.labels, ctx.fps)
