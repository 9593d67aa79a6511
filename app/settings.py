"""Settings changed on site: checked like a start, saved in the site file, then applied to the running
Vigil in the cheapest way that is complete.

- zones, lines, filters, stationary, events: live, between two frames (tracks keep their ids, unchanged
  lines keep their counts; app/analytics/live.py);
- mqtt: the publisher is replaced; queued events carry over and `seq` continues (app/publish/live.py);
- anything else (model, source, planner, tracker, api, …): the pipeline restarts in the same process,
  as for changed camera parameters (end events, counts saved, back within seconds).
Every change is one log line and one message on `<prefix>/config` saying who changed what.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from app.config import PLUGINS, Config
from app.config_input import get_dotted, merge_site
from pydantic import ValidationError

from app.errors import ConfigError
from app.logtext import shorten_list
from app.plugins import format_validation_error, validation_items
from app.run_options import startup_checks
from app.site import MASK, SECRETS, SiteFile, check_tree, secrets_set, site_path, with_kept_secrets, without_secrets

log = logging.getLogger("app.config")

LIVE = ("zones", "lines", "filters", "stationary", "events")
RECONNECT = ("mqtt",)
NAMED = ("zones", "lines", "rules")  # changes are reported per item: zones.door, not zones.door.polygon.0.1


@dataclass
class Plan:
    """What a change does: the keys that change (old and new values) and how each section is applied."""

    changes: list[dict] = field(default_factory=list)
    live: list[str] = field(default_factory=list)
    reconnect: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)

    overridden: list[str] = field(default_factory=list)  # site keys a higher layer (a flag) sets otherwise

    def doc(self) -> dict:
        return {"changes": self.changes, "apply": {"live": self.live, "reconnect": self.reconnect,
                                                   "restart": self.restart}, "overridden": self.overridden}


def diff(old: Any, new: Any, key: str = "") -> list[dict]:
    """The keys whose values differ between two JSON trees, with both values (secrets masked)."""
    parts = key.split(".") if key else []
    item = len(parts) == 2 and parts[0] in NAMED
    retyped = isinstance(old, dict) and isinstance(new, dict) and old.get("type") != new.get("type")
    if isinstance(old, dict) and isinstance(new, dict) and not item and not retyped:
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            out += diff(old.get(k), new.get(k), f"{key}.{k}" if key else k)
        return out
    if old == new:
        return []
    if key in SECRETS:
        return [{"key": key, "from": MASK if old else None, "to": MASK if new else None}]
    return [{"key": key, "from": old, "to": new}]


def plan(old: Config, new: Config) -> Plan:
    """How to go from the running configuration to `new`."""
    # the dump masks secrets: they are compared by their values below
    p = Plan([c for c in diff(old.model_dump(mode="json"), new.model_dump(mode="json")) if c["key"] not in SECRETS])
    for c in p.changes:
        section = c["key"].split(".")[0]
        kind = p.live if section in LIVE else p.reconnect if section in RECONNECT else p.restart
        if section not in kind:
            kind.append(section)
    for key in SECRETS:
        a, b = (secret(c, key) for c in (old, new))
        if a != b:
            section = key.split(".")[0]
            p.changes.append({"key": key, "from": MASK if a else None, "to": MASK if b else None})
            kind = p.reconnect if section in RECONNECT else p.restart
            if section not in kind:
                kind.append(section)
    return p


def overridden(site: dict, running: dict, key: str = "") -> list[str]:
    """The keys of a site tree whose value does not hold in the config it made: a command-line flag sets them."""
    if isinstance(site, dict) and key.split(".")[0] not in NAMED:
        return [k for name, v in site.items() for k in overridden(v, running, f"{key}.{name}" if key else name)]
    if key in SECRETS:
        return []
    found, value = get_dotted(running, key)
    same = found and (value == site or isinstance(value, list) and list(value) == list(site or []))
    return [] if same or (isinstance(value, dict) and isinstance(site, dict)) else [key]


def secret(cfg: Config, key: str) -> str | None:
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node.get_secret_value() if node is not None else None


class FixedLayers:
    """The layers of a run made from a Config alone (tests, `pipeline.run`): the site tree goes over it."""

    def __init__(self, cfg: Config) -> None:
        self.tree = cfg.model_dump(exclude={"site"})

    def check(self, site: dict | None) -> Config:
        tree = copy.deepcopy(self.tree)
        merge_site(tree, site or {})
        try:
            cfg = Config.model_validate(tree)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, PLUGINS), validation_items(e, PLUGINS)) from None
        return startup_checks(cfg)


class Settings:
    """The running configuration and the one way to change it on site; one change at a time."""

    def __init__(self, cfg: Config, layers=None, site: SiteFile | None = None,
                 restart: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.layers = layers or FixedLayers(cfg)
        self.site = site or SiteFile(site_path(cfg.site.file, cfg.state.file))
        self.restart = restart  # ends this run so that the caller starts again with the saved settings
        self.apply_live: Callable[[Config], list[str]] | None = None  # the run's: returns lines that kept counts
        self.reconnect: Callable[[Config], None] | None = None  # the run's: replaces the MQTT publisher
        self.announce: Callable[[dict], None] | None = None  # the run's: a message on <prefix>/config
        self._lock = threading.Lock()

    def doc(self) -> dict:
        """The running configuration, secrets redacted."""
        return self.cfg.model_dump(mode="json")

    def site_doc(self) -> dict:
        return {"site": without_secrets(self.site.tree), "file": str(self.site.path) if self.site.path else None,
                "saved": self.site.saved, "secrets_set": secrets_set(self.site.tree), "error": self.site.error}

    def check(self, tree: Any) -> tuple[Config, Plan, dict]:
        """The config a site tree makes, what it changes and the tree as it would be saved; ConfigError when invalid."""
        tree = with_kept_secrets(check_tree(tree, "site configuration"), self.site.tree)
        new = self.layers.check(tree)
        p = plan(self.cfg, new)
        p.overridden = overridden(tree, new.model_dump(mode="json"))
        return new, p, tree

    def put(self, tree: Any, who: str) -> tuple[dict, Callable[[], None] | None]:
        """Check, save and apply a site tree; the answer, and the restart to run once it is sent (if one is needed)."""
        with self._lock:
            t0 = time.perf_counter()
            new, p, stored = self.check(tree)
            self.site.save(stored)
            keys = shorten_list([c["key"] for c in p.changes], 20) or "nothing"  # 100,000 zones: one short line
            how = ("restart" if p.restart else "reconnect" if p.reconnect else "live") if p.changes else "nothing to do"
            log.info("config: changed by %s: %s (%s)", who, keys, how)
            if p.overridden:
                log.warning("config: saved, but a command-line flag sets %s otherwise", shorten_list(p.overridden, 20))
            if p.changes and self.announce is not None:
                self.announce({"by": who, "time": round(time.time(), 3), **p.doc()})
            later = None
            kept: list[str] = []
            if p.restart and self.restart is not None:
                reason = f"settings saved by {who} ({', '.join(p.restart)})"
                later = lambda: self.restart(reason)  # noqa: E731
            else:
                # no restart to be had (a run without the vigil command): what can apply now does, the
                # rest waits for the next start and stays a pending change in later answers
                if p.reconnect and self.reconnect is not None:
                    self.reconnect(new)
                if p.live and self.apply_live is not None:
                    kept = self.apply_live(new)
                self.cfg = new.model_copy(update={s: getattr(self.cfg, s) for s in p.restart})
            doc = {**p.doc(), "lines_kept": kept, "applied_in_ms": round((time.perf_counter() - t0) * 1000, 1)}
            if p.restart and later is None:
                doc["note"] = "saved; applied at the next start"
            return doc, later
