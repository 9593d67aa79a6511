"""Who may change Vigil over HTTP, decided per request.

Laptop: the bearer token (api.token) when one is set; without one, changes are open on a loopback
bind (or with api.allow_unauthenticated_changes) and refused otherwise.
Camera: the app also listens on api.admin_port, which only the camera's admin-level reverse-proxy
path reaches (both ports are published on the camera's loopback). A request that arrived on that
socket was authenticated by the camera as an admin: it may change anything. On the read port, changes
need the token. Which socket a request came on is the ASGI scope's `server` (the local address),
not anything the client says.
"""
from __future__ import annotations

import hmac
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from app.api.config import ApiConfig, is_loopback

log = logging.getLogger("app.api.server")  # one logger name for everything the API says
ADMIN_PATH = "admin"  # manifest.json: the reverseProxy entry with access "admin" (/local/<app>/admin/…)
How = Literal["admin", "token", "loopback", "open", "none"]

bearer = HTTPBearer(auto_error=False, description="the api.token, when one is configured")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


class Problem(BaseModel):
    detail: str


class AccessDoc(BaseModel):
    can_change: bool
    how: How
    token_required: bool
    admin_url: str | None


class Access:
    """The access rules of one API configuration; its methods are FastAPI dependencies."""

    def __init__(self, api: ApiConfig) -> None:
        self.token = api.token.get_secret_value().encode() if api.token else None
        self.admin_port = api.admin_port  # the bound one when 0: ApiServer sets app.state.admin_port
        self.open_without_token = api.changes_allowed_without_token
        self.loopback = is_loopback(api.host)
        self.root_path = api.root_path
        self.protect_reads = self.token is not None and api.protect == "all"

    @property
    def camera(self) -> bool:
        return self.admin_port is not None

    def on_admin_port(self, request: Request) -> bool:
        port = getattr(request.app.state, "admin_port", self.admin_port)
        server = request.scope.get("server")
        return port is not None and server is not None and server[1] == port

    def token_ok(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return (self.token is not None and scheme.lower() == "bearer"
                and hmac.compare_digest(given.strip().encode(), self.token))

    def how(self, request: Request) -> How:
        """How this request may change state, or "none"."""
        if self.on_admin_port(request):
            return "admin"
        if self.token_ok(request):
            return "token"
        if self.token is not None or self.camera:
            return "none"  # with a token set it is the only way; on the camera the read port never changes
        if self.loopback:
            return "loopback"
        return "open" if self.open_without_token else "none"

    def who(self, request: Request) -> str:
        """Who made a change, as the log and the feed say it."""
        how = self.how(request)
        if how == "admin":
            return "camera admin"
        if how == "token":
            return "token holder"
        return f"{request.client.host if request.client else 'unknown'} (no token)"

    def admin_url(self) -> str | None:
        """The settings page on the admin path, as an absolute path on the camera (None off the camera)."""
        if not self.camera or not self.root_path:
            return None
        return f"{self.root_path}/{ADMIN_PATH}/api/ui/"

    # ---- dependencies ------------------------------------------------------------------------

    def read(self, request: Request, cred: Bearer = None) -> None:
        """Reads with api.protect: all: the token, or the admin port."""
        if self.protect_reads and not self.on_admin_port(request) and not self.token_ok(request):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    def write(self, request: Request, cred: Bearer = None) -> None:
        """Every route that changes state depends on this (`cred` only puts the scheme in the OpenAPI document)."""
        if self.how(request) != "none":
            return
        if self.token is not None:
            where = " or the camera's admin path" if self.camera else ""
            raise HTTPException(401, f"missing or wrong bearer token (changes need api.token{where})",
                                headers={"WWW-Authenticate": "Bearer"})
        if self.camera:
            raise HTTPException(403, "changes are accepted only through the camera's admin path "
                                     f"({self.admin_url() or '/local/<app>/' + ADMIN_PATH + '/'}, camera admin) "
                                     "or with api.token")
        raise HTTPException(403, "changes over the network need api.token (or api.allow_unauthenticated_changes: true)")

    def read_dependencies(self) -> list:
        """The dependency list of a read route: only when reads need the token, so OpenAPI says which routes do."""
        return [Depends(self.read)] if self.protect_reads else []

    def read_responses(self) -> dict:
        """The OpenAPI error responses of a read route."""
        return {401: {"model": Problem, "description": "missing or wrong bearer token"}} if self.protect_reads else {}

    def write_responses(self) -> dict:
        """The OpenAPI error responses of a write route."""
        out = {}
        if self.token is not None:
            out[401] = {"model": Problem, "description": "missing or wrong bearer token"}
        if self.camera or (self.token is None and not self.open_without_token):
            out[403] = {"model": Problem, "description": "changes refused here (admin path or api.token needed)"}
        return out

    def write_dependencies(self) -> list:
        """The dependency list of a write route: none when anyone may write (so OpenAPI shows no security)."""
        if self.token is None and not self.camera and self.open_without_token:
            return []
        return [Depends(self.write)]


def warn_exposure(api: ApiConfig) -> None:
    """Say loudly at start when the API is reachable from the network without a token."""
    if api.token is not None or is_loopback(api.host):
        return
    if api.admin_port is not None:
        log.info("api: %s without api.token: reads open to whoever reaches port %d, changes only on the admin "
                 "port %d (publish both on loopback only, as docker-compose.acap.yml does)", api.host, api.port,
                 api.admin_port)
        return
    if api.allow_unauthenticated_changes:
        log.warning("api: %s without api.token and with api.allow_unauthenticated_changes: anyone who reaches "
                    "this address can read everything and reset counts", api.host)
    else:
        log.warning("api: %s without api.token: anyone who reaches this address can read status, counts and "
                    "frames; changes (POST) are refused until api.token is set", api.host)


def router(access: Access) -> APIRouter:
    r = APIRouter()

    @r.get("/api/access", response_model=AccessDoc,
           summary="whether this request may change settings, how, and where the admin settings page is")
    def access_doc(request: Request) -> AccessDoc:
        how = access.how(request)
        return AccessDoc(can_change=how != "none", how=how,
                         token_required=access.token is not None and how in ("none", "token"),
                         admin_url=access.admin_url())

    return r
