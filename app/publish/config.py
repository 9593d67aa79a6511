"""MQTT configuration (kept free of paho imports so loading a config stays cheap)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def topic_part(v: str | None) -> str | None:
    """A topic prefix as configured, with surrounding '/' removed; ValueError for one a broker would refuse
    or read as a pattern (wildcards, empty levels, NUL, a leading '$')."""
    if v is None:
        return v
    v = v.strip("/")
    if not v:
        raise ValueError("must not be empty")
    if len(v.encode()) > 1024:
        raise ValueError(f"is too long ({len(v.encode())} bytes, at most 1024)")
    bad = next((c for c in "+#\0" if c in v), None)
    if bad is not None:
        raise ValueError(f"must be a topic without wildcards (+, #) or NUL, not {v!r}")
    if "//" in v:
        raise ValueError(f"must not have empty topic levels ('//') in {v!r}")
    if v.startswith("$"):
        raise ValueError(f"must not start with '$' (topics the broker reserves, like $SYS): {v!r}")
    return v


def _as_text(v: Any) -> Any:
    # Environment values are parsed as YAML scalars, so a numeric password arrives as an int.
    return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


class MqttTlsConfig(_Model):
    enabled: bool = Field(False, description="connect with TLS (port 8883 is usual)")
    ca_file: str | None = Field(None, description="CA certificate file (PEM) to verify the broker; default: system CAs")
    cert_file: str | None = Field(None, description="client certificate (PEM), for brokers that require one")
    key_file: str | None = Field(None, description="client private key (PEM)")
    insecure: bool = Field(False, description="skip the broker host name check (testing only)")

    @model_validator(mode="after")
    def _pair(self) -> "MqttTlsConfig":
        # a key alone would be dropped silently: the client would connect without its certificate
        if self.key_file and not self.cert_file:
            raise ValueError("key_file is set without cert_file: set the client certificate too (or neither)")
        return self


class HomeAssistantConfig(_Model):
    discovery: bool = Field(
        False, description="publish Home Assistant MQTT discovery: counts, zone occupancy, line totals with reset "
                           "buttons, images, diagnostics (docs/mqtt.md)")
    prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix")
    configuration_url: str | None = Field(
        None, description="the status page's address shown on the device in Home Assistant; default: from api.* "
                          "(this host's name; with api.root_path, the camera's reverse proxy on port 80)")


    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return topic_part(v)

    @field_validator("configuration_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        # Home Assistant refuses a device whose configuration_url is not http(s)
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// address")
        return v


class LatestImageConfig(_Model):
    interval: float = Field(
        0.0, ge=0.0, le=86400.0,
        description="seconds between JPEGs of the latest annotated frame on <prefix>/latest_image (Home "
                    "Assistant's 'Latest frame' image); 0: off")
    height: int = Field(360, ge=16, le=2160, description="image height in pixels (never more than the frame's)")
    quality: int = Field(60, ge=1, le=100, description="JPEG quality")


class MqttConfig(_Model):
    enabled: bool = Field(False, description="publish events, counts and state to an MQTT broker")
    host: str = Field("127.0.0.1", min_length=1, description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="broker port")
    topic_prefix: str | None = Field(None, description="topic prefix; default: vigil/<device_id>")
    client_id: str | None = Field(
        None, description="MQTT client id, unique per broker; default: vigil-<device_id>-<hash of this machine's "
                          "id>, the same at every start so a dead connection is replaced at once"
    )
    username: str | None = Field(None, description="user name, when the broker requires one")
    password: SecretStr | None = Field(None, description="password (never logged; shown as ********** by /api/config)")
    tls: MqttTlsConfig = Field(default_factory=MqttTlsConfig, description="TLS settings")
    keepalive: int = Field(30, ge=5, le=3600, description="seconds between keepalive pings")
    qos: int = Field(1, ge=0, le=2, description="QoS of event messages (state topics always use 1, frames 0)")
    reconnect_min_delay: int = Field(1, ge=1, le=3600, description="seconds before the first reconnect attempt; doubles per failure")
    reconnect_max_delay: int = Field(60, ge=1, le=3600, description="cap of the reconnect back-off, seconds")
    queue_size: int = Field(
        1000, ge=10, le=1_000_000,
        description="events held while the broker is away; beyond it the oldest updates are dropped (never new/end)",
    )
    max_inflight: int = Field(100, ge=1, le=65535, description="messages sent but not yet acknowledged by the broker")
    resume_delay: float = Field(
        5.0, ge=0.0, le=600.0,
        description="after a reconnect: seconds between republishing online and the retained state and sending the "
                    "queued events, so subscribers of a restarted broker have resubscribed (bench/feed_restarts.py); 0: at once",
    )
    connect_timeout: float = Field(
        10.0, ge=1.0, le=600.0,
        description="seconds to wait for the broker's answer (CONNACK) once the TCP connection is open; then retry",
    )
    frame: bool = Field(False, description="publish …/frame: every frame's objects as Axis scene metadata (frame v1)")
    stats_interval: float = Field(60.0, ge=0.0, description="seconds between …/stats messages; 0: off")
    latest_image: LatestImageConfig = Field(default_factory=LatestImageConfig,
                                            description="the latest annotated frame as JPEG over MQTT")
    allow_unauthenticated_changes: bool = Field(
        False, description="accept line count resets on <prefix>/counts/reset/set from a broker on a network address "
                           "that Vigil reaches without credentials (with mqtt.username or a loopback broker they are "
                           "accepted anyway)")
    home_assistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig, description="Home Assistant integration")

    @field_validator("host", "topic_prefix", "client_id", "username", "password", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return _as_text(v)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        return topic_part(v)
