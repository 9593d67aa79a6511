"""Built-in output: each published object's best view as JPEGs (app/snapshots/), set in `snapshots`."""
from __future__ import annotations

from typing import Literal

from app.plugins import PluginConfig

SECTION = "snapshots"


class Config(PluginConfig):
    type: Literal["snapshots"] = "snapshots"


def build(cfg: Config, ctx):
    if ctx.snapshots is None:  # snapshots.enabled is off: the run opened no store
        return None
    from app.snapshots.consumer import Snapshots  # cv2's encoder: only when snapshots are on

    c = ctx.cfg
    # an image for MQTT is made only when the run publishes on MQTT and snapshots.mqtt asks for one
    ready = ctx.links.snapshot_ready if c.mqtt.enabled and c.snapshots.mqtt.enabled else None
    return Snapshots(c.snapshots, ctx.labels, ctx.snapshots, ctx.run_id, ready, ctx.links.snapshots_on)
