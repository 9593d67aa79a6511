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


def publisher(cfg, status, labels: list[str], snapshots: bool):
    """An MQTT publisher for the run's config `cfg` (not started), its stats and health from `status`: at
    start (inside the run's LivePublisher) and again when settings change on site. `snapshots`: the run
    keeps snapshots (then snapshots.mqtt says whether their images are published)."""
    from app.publish.discovery import status_page_url
    from app.publish.expected import Expected
    from app.publish.images import LatestImage
    from app.publish.mqtt import MqttPublisher  # paho: only when MQTT is on

    return MqttPublisher(cfg.mqtt, status.device_id, labels,
                         stats=lambda: status.stats().model_dump(mode="json"),
                         health=lambda: status.health().model_dump(mode="json"), lines=list(cfg.lines),
                         configuration_url=status_page_url(cfg.api, cfg.mqtt.home_assistant),
                         snapshots=snapshots and cfg.snapshots.mqtt.enabled,
                         latest=LatestImage(cfg.mqtt.latest_image, labels, cfg.zones, cfg.lines),
                         expected=Expected.of(cfg, labels))
