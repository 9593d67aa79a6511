"""The stats and health documents as pydantic models: one definition that the API serves (GET
/api/stats, /api/health), MQTT publishes (…/stats) and docs/schemas/stats.schema.json is generated
from (`stats_schema`)."""
from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_ID = "https://vigil.invalid/schemas/stats.schema.json"


class _Doc(BaseModel):
    # every key is always present in the document, defaults included
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


class Ms(_Doc):
    """Median and 95th percentile in milliseconds (null before the first sample)."""

    p50: float | None = Field(None, ge=0)
    p95: float | None = Field(None, ge=0)


class Frames(_Doc):
    read: int = Field(ge=0, description="frames the source delivered")
    processed: int = Field(ge=0, description="frames through inference and tracking")
    skipped: int = Field(ge=0, description="frames left out by the fps cap")
    dropped: int = Field(ge=0, description="live frames dropped because inference was busy")
    reconnects: int = Field(ge=0, description="times a live source failed or stalled and was reopened")


class Queues(_Doc):
    capture: int | None = Field(None, ge=0, description="frames decoded and waiting for inference")
    outputs: int | None = Field(None, ge=0, description="frame results waiting for the outputs (files, MQTT, status)")


class TrackerStatsDoc(_Doc):
    active_tracks: int = Field(ge=0)
    tentative_tracks: int = Field(ge=0)
    tracks_confirmed: int = Field(ge=0)
    tracks_ended: int = Field(ge=0)
    update_ms: Ms


class EventTotals(_Doc):
    new: int = Field(ge=0)
    update: int = Field(ge=0)
    end: int = Field(ge=0)


class Objects(_Doc):
    present: int = Field(ge=0, description="published objects present now")
    events: EventTotals


class MqttDropped(_Doc):
    frame: int = Field(0, ge=0)
    update: int = Field(0, ge=0)
    stats: int = Field(0, ge=0)
    critical: int = Field(0, ge=0)


class MqttUndelivered(_Doc):
    critical: int = Field(0, ge=0, description="new/end events")
    update: int = Field(0, ge=0)
    other: int = Field(0, ge=0, description="state, frames, stats")


class MqttOff(_Doc):
    enabled: Literal[False] = False


class MqttStats(_Doc):
    enabled: Literal[True] = True
    connected: bool
    state: Literal["starting", "connected", "connecting", "unreachable", "tls_failed", "no_handshake", "refused",
                   "auth_failed", "closed"] = Field(
        description="starting: configured, connects once the model is loaded; tls_failed: the TCP connection "
                    "opened but the TLS handshake failed (a plain listener, an untrusted certificate); "
                    "no_handshake: the peer took the TCP connection but never answered CONNECT")
    broker: str
    client_id: str
    topic_prefix: str
    queued: int = Field(ge=0)
    inflight: int = Field(ge=0)
    sent: int = Field(ge=0, description="messages the broker acknowledged (QoS 1) or that were written to it (QoS 0)")
    dropped: MqttDropped
    undelivered: MqttUndelivered = Field(
        description="messages still queued or unacknowledged when Vigil stopped, so never delivered (0 while running)")
    reconnects: int = Field(ge=0)
    last_error: str | None


class Stats(_Doc):
    """Rates, timings, queues and MQTT state of one Vigil (one camera). The fps names are Frigate's for the
    same quantities, but the document is flat, not Frigate's /api/stats shape. QoS 0, not retained, every
    mqtt.stats_interval seconds."""

    model_config = ConfigDict(title="vigil/<device>/stats and GET /api/stats")

    device_id: str
    version: str
    timestamp: float
    uptime: float = Field(ge=0, description="seconds")
    camera_fps: float = Field(ge=0, description="frames read from the source per second")
    process_fps: float = Field(ge=0, description="frames through inference and tracking per second")
    skipped_fps: float = Field(ge=0, description="frames left out by the fps cap per second")
    dropped_fps: float = Field(ge=0, description="live frames dropped because inference was busy")
    detection_fps: float = Field(ge=0, description="model runs per second (Frigate's meaning)")
    model_run_ms: Ms = Field(description="milliseconds of one model run (one view: the whole frame or one tile)")
    frame_detect_ms: Ms = Field(description="milliseconds of all model runs of one frame, with decoding and merging")
    model_runs_per_frame: float = Field(
        ge=0, description="model runs (views) per frame, mean since start: the fixed plan's views, or what the "
        "regions planner ran (0 on frames with nothing to look at)")
    frame_coverage: float = Field(
        ge=0, le=1, description="share of the frame inside the views the model ran on, mean since start")
    stages: dict[str, Ms] = Field(description="milliseconds per call of each pipeline stage")
    detection: bool = Field(
        True, description="false while the Detection switch (MQTT, Home Assistant) is off: frames are read, no model runs")
    model_threads: int | None = Field(
        None, ge=1, description="threads of each interpreter of the in-process model (model.backend.threads, by "
        "default the CPUs the process may use shared among its interpreters); null when the model runs elsewhere "
        "(backend acap-runtime: the camera's DLPU)")
    model_interpreters: int | None = Field(
        None, ge=1, description="interpreters of the in-process model, each running a frame of its own at the same time "
        "(model.backend.interpreters); null when the model runs elsewhere")
    frames: Frames
    queues: Queues
    tracker: TrackerStatsDoc
    objects: Objects
    mqtt: MqttStats | MqttOff


class ComponentDoc(_Doc):
    status: Literal["ok", "degraded", "failing"]
    detail: str


class HealthDoc(_Doc):
    """GET /api/health: the worst component's level, and each component's."""

    status: Literal["ok", "degraded", "failing"]
    components: dict[str, ComponentDoc]


def stats_schema() -> dict:
    """The JSON Schema of the stats document, as committed in docs/schemas/stats.schema.json."""
    schema = Stats.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def stats_schema_text() -> str:
    return json.dumps(stats_schema(), indent=2, ensure_ascii=False) + "\n"
