"""ACAP Runtime backend plugin: inference on the camera's DLPU through Axis's gRPC inference server.

The client is `app.acap.inference.AcapRuntimeModel`. The tensor specs (names, shapes, dtypes,
quantisation) come from the local copy of the .tflite, so decoders see exactly what the TFLite
backend gives; the connection settings come from the shared `acap_runtime` config section
(RunContext.acap), this backend's own from its `model.backend` section. grpc is imported by build.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from app.acap.chips import chip_id
from app.acap.config import AcapRuntimeConfig
from app.backends import check_model_file
from app.errors import ConfigError
from app.modelfile import read_model
from app.plugins import PluginConfig, RunContext
from app.retry import RetryPolicy

if TYPE_CHECKING:
    from app.acap.inference import AcapRuntimeModel


class Config(PluginConfig):
    """The camera's inference server (the connection itself is the acap_runtime section)."""

    type: Literal["acap-runtime"] = "acap-runtime"
    device: str = Field("cpu", description="the server's chip (its -j): cpu, artpec7, artpec8 or cv25")
    server_path: str | None = Field(
        None, description="the model's path inside the inference-server container; default: model.path"
    )
    inflight: int = Field(
        2, ge=1, le=8,
        description="Predict requests kept at the server while tiles of a frame run: the next one travels "
        "while this one is inferred; 1 = one at a time",
    )
    load_timeout: float = Field(
        300.0, gt=0, description="deadline of a Predict that loads the model (a DLPU compile takes minutes)"
    )

    @field_validator("device")
    @classmethod
    def _known_chip(cls, v: str) -> str:
        try:
            chip_id(v)
        except ConfigError as e:
            raise ValueError(str(e).split(": ", 1)[-1]) from None
        return v


def build(cfg: Config, ctx: RunContext, path) -> AcapRuntimeModel:
    """Connect to ACAP Runtime and load the model there; ctx.health receives progress and ctx.cancel
    (an Event) ends waiting for the server early."""
    # grpc comes with app.acap: imported when this backend is built, not with the config
    from app.acap.client import Endpoint
    from app.acap.inference import AcapRuntimeModel

    acap = ctx.acap or AcapRuntimeConfig()
    local = check_model_file(path)
    return AcapRuntimeModel(
        local, cfg.server_path or str(path), Endpoint.from_config(acap), RetryPolicy(timeout=acap.retry_timeout),
        specs=read_model(local).io_specs(), connect_timeout=acap.connect_timeout, load_timeout=cfg.load_timeout,
        timeout=acap.timeout, chip=chip_id(cfg.device), inflight=cfg.inflight, health=ctx.health, cancel=ctx.cancel,
    )
