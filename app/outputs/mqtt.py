"""Built-in output: the MQTT publisher (app/publish/), set in `mqtt`. It says when the broker has
acknowledged an `end` (`links.end_delivered`), retains the snapshots it hears of, and answers whether
snapshots are on (Home Assistant's Snapshots switch)."""
from __future__ import annotations

from typing import Literal

from app.plugins import PluginConfig

SECTION = "mqtt"


class Config(PluginConfig):
    type: Literal["mqtt"] = "mqtt"


def build(cfg: Config, ctx):
    mqtt = ctx.mqtt
    if mqtt is None:  # made before the outputs (the API shows it while starting up): mqtt.enabled is off
        return None
    mqtt.on_end_delivered = ctx.links.end_delivered
    if ctx.cfg.snapshots.mqtt.enabled:
        ctx.links.snapshot_ready.connect(mqtt.retain_snapshot)
    ctx.links.answer_snapshots_on(mqtt.switches.snapshots_on)
    return mqtt
