"""ACAP Runtime backend plugin: inference on the camera's DLPU through Axis's gRPC inference server.

The client is `app.acap.inference.AcapRuntimeModel`. The tensor specs (names, shapes, dtypes,
quantisation) come from the local copy of the .tflite, so decoders see exactly what the TFLite
backend gives; the connection settings come from the `acap_runtime` config section.
"""
from __future__ import annotations

from app.acap.client import Endpoint
from app.acap.inference import AcapRuntimeModel, chip_id
from app.backends import check_model_file
from app.config import AcapRuntimeConfig
from app.health import Health
from app.modelfile import read_model
from app.retry import RetryPolicy


def load(path, device: str = "artpec8", threads: int = 1, *, acap=None, server_path: str | None = None,
         health: Health | None = None, cancel=None, **_options) -> AcapRuntimeModel:
    """Connect to ACAP Runtime and load the model there; `acap` is the config's acap_runtime section,
    `health` receives progress and `cancel` (an Event) ends waiting for the server early."""
    acap = acap or AcapRuntimeConfig()
    local = check_model_file(path)
    chip = chip_id(device)
    remote = server_path or str(path)
    return AcapRuntimeModel(
        local, remote, Endpoint.from_config(acap), RetryPolicy(timeout=acap.retry_timeout),
        specs=read_model(local).io_specs(), connect_timeout=acap.connect_timeout, load_timeout=acap.load_timeout,
        timeout=acap.timeout, chip=chip, inflight=acap.inflight, health=health, cancel=cancel,
    )
