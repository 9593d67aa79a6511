"""HTTP API configuration (kept free of FastAPI imports)."""
from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class ApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(False, description="serve the status API, Prometheus metrics and the status page")
    host: str = Field(
        "127.0.0.1",
        description="address to bind; 0.0.0.0 exposes it to the network (set a token: without one, POST requests "
        "are refused unless allow_unauthenticated_changes is set)",
    )
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one (logged)")
    admin_port: int | None = Field(
        None, ge=0, le=65535,
        description="second TCP port (same host) for changes; when set, changes are accepted only on it or with the "
        "token. On the camera 8081, published on the camera's loopback and reached only through the reverse-proxy "
        "path with admin access (docs/camera.md); never publish it elsewhere. 0 picks a free one (logged)",
    )
    root_path: str = Field(
        "", description="path prefix a reverse proxy adds, e.g. /local/vigil on the camera (for the OpenAPI docs)"
    )
    token: SecretStr | None = Field(None, description="bearer token; when set, requests must send 'Authorization: Bearer …'")
    protect: Literal["mutating", "all"] = Field(
        "mutating", description="what the token protects: POST endpoints, or all (/api/live never: it reveals nothing)"
    )
    allow_unauthenticated_changes: bool = Field(
        False,
        description="with no token on a non-loopback host, let anyone who reaches the API change state "
        "(POST, e.g. reset counts); off: such requests get 403",
    )

    allowed_hosts: list[str] = Field(
        [], description="host names browsers may reach the API under besides IP addresses, names without a dot, "
                        ".local names and this machine's name (e.g. camera.example.com; .example.com for a domain and "
                        "its subdomains; * for any): other Host headers get 403 (DNS rebinding)")

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        for h in v:
            if not h.strip() or any(c in h for c in "/@ ") or h.count(":") == 1:
                raise ValueError(f"{h!r} is not a host name: give a name like camera.example.com (no scheme, port or path)")
        return v

    @field_validator("token", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    @field_validator("token")
    @classmethod
    def _not_empty(cls, v: SecretStr | None) -> SecretStr | None:
        # an empty token once meant "no authentication", even with protect: all
        if v is not None and not v.get_secret_value().strip():
            raise ValueError("must not be empty; to run without a token, leave api.token unset (null)")
        return v

    @field_validator("root_path")
    @classmethod
    def _root(cls, v: str) -> str:
        v = v.strip()
        if v and not v.startswith("/"):
            raise ValueError("must start with '/' (e.g. /local/vigil)")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _two_ports(self) -> "ApiConfig":
        if self.admin_port is not None and self.admin_port == self.port and self.port != 0:
            raise ValueError(f"api.admin_port must differ from api.port ({self.port})")
        return self

    @property
    def changes_allowed_without_token(self) -> bool:
        """Whether POST routes are open when no token is set: on a loopback host, or by explicit opt-in."""
        return self.allow_unauthenticated_changes or is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the API on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything
