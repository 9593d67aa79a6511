"""The site file: the configuration an integrator saved on the device (settings page, PUT /api/config).

It lives in the persistent volume (the camera's /data, beside `state.file` elsewhere) and holds only
the keys that were set on site, as a partial config tree in the YAML's schema. Saving is atomic
(temporary file, fsync, rename) and keeps the version before as `<name>.prev`. At start a site file
that cannot be read or no longer validates is not fatal: the previous version is used, or none, and
the reason is logged and shown in /api/health (a camera's respawn must not turn it into a crash loop).
Where the site layer sits among the others is `config_input.LAYERS`.
"""
from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from app.config_input import get_dotted, pop_dotted, read_yaml, set_dotted
from app.errors import ConfigError

log = logging.getLogger(__name__)

SECRETS = ("mqtt.password", "api.token")  # write-only: never sent back, kept when a PUT leaves them out
MASK = "**********"  # how pydantic shows a SecretStr; sent back unchanged it means "keep the stored one"
# where the site file is cannot itself be set in it, nor where the API listens: a change saved from the
# settings page must not take away the way back to the settings page (the camera's admin path, the port)
NOT_SITE = ("site", "api.host", "api.port", "api.admin_port", "api.root_path")


def site_path(site_file: str | None, state_file: str | None) -> Path | None:
    """The site file: `site.file`, else `site.yaml` beside `state.file`, else none (nothing to save to)."""
    if site_file:
        return Path(site_file)
    if state_file:
        return Path(state_file).parent / "site.yaml"
    return None


def without_secrets(tree: dict) -> dict:
    """A copy of a site tree with the secret keys left out (what is sent back or exported)."""
    out = copy.deepcopy(tree)
    for key in SECRETS:
        pop_dotted(out, key)
    return out


def secrets_set(tree: dict) -> list[str]:
    """The secret keys a site tree holds a value for."""
    return [k for k in SECRETS if get_dotted(tree, k)[0] and get_dotted(tree, k)[1] not in (None, "")]


def with_kept_secrets(new: dict, stored: dict) -> dict:
    """The tree of a PUT with every secret it left out (or sent back masked, or as null) taken from the
    stored one; a secret sent as "" is removed (the layers below decide again)."""
    out = copy.deepcopy(new)
    for key in SECRETS:
        found, value = get_dotted(out, key)
        if found and value == "":
            pop_dotted(out, key)
        elif not found or value is None or value == MASK:
            kept, old = get_dotted(stored, key)
            if kept and old not in (None, ""):
                set_dotted(out, key, old)
            else:
                pop_dotted(out, key)
    return out


def check_tree(tree: Any, what: str) -> dict:
    """A site tree must be a mapping of config sections, without `site` itself."""
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{what}: must be a mapping of config sections, got {type(tree).__name__}")
    for key in NOT_SITE:
        if get_dotted(tree, key)[0]:
            msg = "cannot be set on site (it would cut off the settings page); set it in the config file, " \
                  "the environment or a flag"
            raise ConfigError(f"{what}: {key}: {msg}", [{"loc": key, "msg": msg}])
    return tree


def read_site(path: Path) -> dict:
    """The site tree stored at `path` ({} when there is none); a ConfigError when it is unusable."""
    if not path.exists():
        return {}
    return check_tree(read_yaml(path), str(path))


@dataclass
class SiteFile:
    """The site file of this device: what is stored, when, and why the stored one was not used (if so)."""

    path: Path | None
    tree: dict = field(default_factory=dict)
    saved: float | None = None
    error: str | None = None  # why the file on disk is not what runs (damaged, invalid): health shows it

    @classmethod
    def open(cls, path: Path | None, validate: Callable[[dict], None]) -> "SiteFile":
        """The site file at `path` if it reads and validates, else its previous version, else none;
        what was wrong is logged once and kept in `error`."""
        site = cls(path)
        if path is None:
            return site
        problems = []
        for candidate in (path, prev_path(path)):
            if not candidate.exists():
                continue
            try:
                tree = read_site(candidate)
                validate(tree)
            except ConfigError as e:
                problems.append(f"{candidate}: {e}")
                continue
            site.tree, site.saved = tree, candidate.stat().st_mtime
            if candidate != path:
                site.error = f"site file not used ({problems[0]}); running on its previous version {candidate}"
            break
        else:
            if problems:
                site.error = f"site file not used ({'; '.join(problems)}); running without it"
        if site.error:
            log.error("config: %s", site.error)
        return site

    def save(self, tree: dict) -> None:
        """Write `tree` atomically (temporary file, fsync, rename), keeping the version before as .prev."""
        if self.path is None:
            msg = "no site file to save to: set site.file (or state.file, beside which it goes)"
            raise ConfigError(msg, [{"loc": "site.file", "msg": msg}])
        path = self.path
        text = "# Vigil site configuration: saved from the settings page / PUT /api/config.\n" \
               "# Layered over the image's configuration (docs/configuration order: config_input.LAYERS).\n" + \
               yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                if path.exists():
                    os.replace(path, prev_path(path))
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as e:
            raise ConfigError(f"cannot save the site file {path}: {e.strerror or e}") from None
        self.tree, self.saved, self.error = copy.deepcopy(tree), time.time(), None

    def files_dir(self) -> Path:
        """Where uploaded certificates and keys are kept (beside the site file)."""
        if self.path is None:
            raise ConfigError("no site file, so nowhere to store files: set site.file (or state.file)")
        return self.path.parent / "files"


def prev_path(path: Path) -> Path:
    return path.with_name(path.name + ".prev")
