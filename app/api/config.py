"""HTTP API configuration (kept free of FastAPI imports)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class ApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(False, description="serve the status API, Prometheus metrics and the status page")
    host: str = Field("127.0.0.1", description="address to bind; 0.0.0.0 exposes it to the network (set a token)")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one (logged)")
    root_path: str = Field(
        "", description="path prefix a reverse proxy adds, e.g. /local/vigil on the camera (for the OpenAPI docs)"
    )
    token: SecretStr | None = Field(None, description="bearer token; when set, requests must send 'Authorization: Bearer …'")
    protect: Literal["mutating", "all"] = Field("mutating", description="what the token protects: POST endpoints, or all")

    @field_validator("token", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    @field_validator("root_path")
    @classmethod
    def _root(cls, v: str) -> str:
        v = v.strip()
        if v and not v.startswith("/"):
            raise ValueError("must start with '/' (e.g. /local/vigil)")
        return v.rstrip("/")
