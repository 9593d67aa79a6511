"""The ACAP Runtime connection settings (the `acap_runtime` section): pydantic only, cheap to import.

One connection is shared by the acap-runtime backend, the camera source and the parameter poll,
so it is a section of its own (RunContext.acap), not a plugin's.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AcapRuntimeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    address: str = Field("unix:///tmp/acap-runtime.sock", description="ACAP Runtime gRPC address: unix:///path or host:port")
    tls_cert: str | None = Field(None, description="server certificate (PEM) to connect with TLS; none = insecure")
    tls_authority: str = Field("localhost", description="name checked against the TLS certificate")
    connect_timeout: float = Field(120.0, ge=0, description="seconds to wait for the server and model at start; 0 = forever")
    retry_timeout: float = Field(600.0, ge=0, description="seconds of transient failures (restart, busy DLPU) tolerated mid-run; 0 = forever")
    timeout: float = Field(10.0, gt=0, description="deadline of calls other than the Predict that loads the model")
    parameters: bool = Field(False, description="read settings from the camera's parameters (manifest paramConfig) at start")
    parameter_prefix: str = Field("root.Vigil", description="parameter group of the app on the camera")
    parameter_poll: float = Field(
        10.0, ge=0,
        description="seconds between checks for changed camera parameters; a change restarts Vigil to apply it; 0 = off",
    )
