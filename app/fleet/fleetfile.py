"""The fleet file: which cameras make a site, how to reach each, and the site configuration they share.

    defaults:                      # connection settings each camera takes unless it sets its own
      auth: digest                 # digest (the camera's default), basic, token (a laptop's api.token), none
      user: vigil-admin            # a user name is not a secret; its password comes from the environment
      password_env: VIGIL_CAMERA_PASSWORD   # or ~/.netrc's entry for the camera's host when not set
      ca: /etc/site/ca.pem         # TLS: the site's CA (https URLs); --insecure skips the check, loudly
      timeout: 10
    secrets:                       # secret site keys, each from an environment variable
      mqtt.password: VIGIL_MQTT_PASSWORD
    common:                        # the site configuration every camera gets (broker, thresholds, ...)
      mqtt: {enabled: true, host: broker.site, port: 1883}
    cameras:
      door:
        url: https://10.0.0.11/local/vigil/          # reads (the camera's reverse proxy) ...
        admin_url: https://10.0.0.11/local/vigil/admin/   # ... and changes (default: url + admin/)
        site: {device_id: door, zones: {entrance: {polygon: [[0,0],[1,0],[1,1]]}}}

No secret has to be written in it: passwords and tokens are named by environment variable, or taken
from ~/.netrc. A camera's site configuration is `common` with its own `site` over it (a section the
camera sets replaces or deepens the common one; its zones and lines replace the common ones whole).
"""
from __future__ import annotations

import copy
import netrc
import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
WHOLE = ("zones", "lines", "rules")  # replaced whole, as the site layer does on a camera
Auth = Literal["digest", "basic", "token", "none"]


class Connection(BaseModel):
    """How to reach a camera; every field may be set in `defaults` and overridden per camera."""

    model_config = ConfigDict(extra="forbid")

    auth: Auth | None = Field(None, description="default: token when token_env is set, digest when a password is "
                                                "found (password_env or ~/.netrc), else none")
    user: str | None = None
    user_env: str | None = Field(None, description="environment variable holding the user name")
    password_env: str | None = Field(None, description="environment variable holding the password")
    token_env: str | None = Field(None, description="environment variable holding the API token (auth: token)")
    ca: str | None = Field(None, description="CA file to check the camera's TLS certificate with")
    timeout: float | None = Field(None, gt=0, description="seconds per request (default: --timeout)")


class Camera(Connection):
    url: str = Field(description="the camera's Vigil: http(s)://<camera>/local/vigil/ or http://host:port/")
    admin_url: str | None = Field(None, description="where changes go: default url + admin/ behind a camera's "
                                                    "reverse proxy (…/local/vigil/), else url")
    site: dict[str, Any] = Field({}, description="this camera's site configuration over `common`")

    @field_validator("url", "admin_url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http:// or https:// URL (got {v!r})")
        return v if v.endswith("/") else v + "/"


class FleetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: Connection = Field(default_factory=Connection)
    common: dict[str, Any] = Field({}, description="the site configuration every camera gets")
    secrets: dict[str, str] = Field({}, description="secret site keys and the environment variable holding each "
                                                    "(mqtt.password: VIGIL_MQTT_PASSWORD), sent with every push")
    cameras: dict[str, Camera] = Field(min_length=1)

    @field_validator("cameras")
    @classmethod
    def _names(cls, v: dict[str, Camera]) -> dict[str, Camera]:
        for name in v:
            if not NAME.match(name):
                raise ValueError(f"camera name {name!r}: letters, digits, _ . - only (it names files)")
        return v


def load_fleet(path: str | Path) -> FleetFile:
    """The fleet file, validated; a ConfigError naming the key otherwise."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"fleet file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"fleet file {path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"fleet file {path}: must be a mapping with cameras: (see docs/fleet.md)")
    try:
        return FleetFile.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        raise ConfigError(f"fleet file {path}: {loc}: {first['msg']}{more}") from None


def merged(base: Mapping[str, Any], over: Mapping[str, Any], top: bool = True) -> dict[str, Any]:
    """`over` on `base`: mappings merge key by key, anything else (and zones, lines) is replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not (top and key in WHOLE):
            out[key] = merged(out[key], value, top=False)
        else:
            out[key] = copy.deepcopy(value)
    return out


def site_tree(fleet: FleetFile, name: str) -> dict[str, Any]:
    """The whole site configuration camera `name` should run: common with its own over it."""
    return merged(fleet.common, fleet.cameras[name].site)


def admin_base(camera: Camera) -> str:
    """Where a camera takes changes: its admin_url, else its reverse proxy's admin path, else its url."""
    if camera.admin_url:
        return camera.admin_url
    if urlsplit(camera.url).path.rstrip("/").endswith("/local/vigil"):
        return camera.url + "admin/"
    return camera.url


class Credentials(BaseModel):
    """What one camera is asked with: resolved from the environment or ~/.netrc, never from the file."""

    model_config = ConfigDict(frozen=True)

    auth: Auth
    user: str | None = None
    password: str | None = Field(None, repr=False)
    token: str | None = Field(None, repr=False)
    ca: str | None = None
    timeout: float | None = None


def credentials(fleet: FleetFile, name: str, env: Mapping[str, str] | None = None,
                netrc_file: str | None = None) -> Credentials:
    """Camera `name`'s connection settings with its secrets looked up; ConfigError when one is missing."""
    env = os.environ if env is None else env
    cam = fleet.cameras[name]
    d = fleet.defaults
    pick = {k: getattr(cam, k) if getattr(cam, k) is not None else getattr(d, k) for k in Connection.model_fields}
    where = f"camera {name}"

    def from_env(var: str | None, what: str) -> str | None:
        if var is None:
            return None
        value = env.get(var)
        if not value:
            raise ConfigError(f"{where}: {what}: environment variable {var} is not set")
        return value

    token = from_env(pick["token_env"], "token_env")
    user = from_env(pick["user_env"], "user_env") or pick["user"]
    password = from_env(pick["password_env"], "password_env")
    auth = pick["auth"]
    if password is None and auth in (None, "digest", "basic") and token is None:
        host = urlsplit(cam.url).hostname or ""
        entry = netrc_entry(host, netrc_file, env)
        if entry is not None:
            user = user or entry[0]
            password = entry[1]
    if auth is None:
        auth = "token" if token else "digest" if password is not None else "none"
    if auth == "token" and token is None:
        raise ConfigError(f"{where}: auth token needs token_env (the environment variable holding the token)")
    if auth in ("digest", "basic") and (user is None or password is None):
        raise ConfigError(f"{where}: auth {auth} needs a user and a password (user/user_env and password_env, "
                          f"or a ~/.netrc entry for {urlsplit(cam.url).hostname})")
    if pick["ca"] and not Path(pick["ca"]).is_file():
        raise ConfigError(f"{where}: ca: no such file {pick['ca']}")
    return Credentials(auth=auth, user=user, password=password, token=token, ca=pick["ca"], timeout=pick["timeout"])


def netrc_entry(host: str, netrc_file: str | None, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(login, password) for `host` in ~/.netrc (or $NETRC), or None."""
    path = netrc_file or env.get("NETRC") or str(Path(env.get("HOME") or Path.home()) / ".netrc")
    if not Path(path).is_file():
        return None
    try:
        found = netrc.netrc(path).authenticators(host)
    except (netrc.NetrcParseError, OSError) as e:
        raise ConfigError(f"{path}: {e}") from None
    if not found or found[2] is None:
        return None
    return found[0], found[2]


def fleet_text(fleet: FleetFile) -> str:
    """A fleet file's YAML (what `pull` writes), only the keys that were set."""
    doc = fleet.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    doc.setdefault("cameras", {})
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=None)
