"""`vigil fleet config push` / `pull`: one site configuration for many cameras, each its own differences.

push checks every camera's whole site configuration here first (nothing is sent if one is invalid),
then either asks each camera what it would change (--dry-run: POST /api/config/check) or saves it
(PUT /api/config), camera by camera, each with its own result. A camera's PUT is atomic: one that
refuses (422) or drops keeps what it ran. pull saves each camera's exported site file and a fleet
file to start from (what all cameras share as `common`, the rest per camera).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.config import load_config
from app.config_input import set_dotted
from app.errors import ConfigError
from app.fleet.client import Pool, Target, Unreachable, Untrusted, detail, each, refused
from app.fleet.fleetfile import Camera, FleetFile, fleet_text, site_tree


@dataclass
class PushResult:
    """What one camera did with its configuration."""

    name: str
    outcome: str  # applied, unchanged, would change (dry run), refused, unauthorised, unreachable, error
    detail: str = ""
    changes: list[dict] = field(default_factory=list)
    apply: dict[str, list[str]] = field(default_factory=dict)
    applied_in_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("applied", "unchanged", "would change")


def trees(fleet: FleetFile, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every camera's site configuration, with the secrets the fleet file names taken from the environment."""
    out = {}
    for name in fleet.cameras:
        tree = site_tree(fleet, name)
        for key, var in fleet.secrets.items():
            if not env.get(var):
                raise ConfigError(f"secrets: {key}: environment variable {var} is not set")
            set_dotted(tree, key, env[var])
        out[name] = tree
    return out


def check_locally(site: dict[str, dict[str, Any]]) -> list[str]:
    """Each camera's site configuration validated as Vigil validates it at start: the problems, one a line."""
    problems = []
    for name, tree in site.items():
        try:
            load_config(None, env={}, site=tree)
        except ConfigError as e:
            items = getattr(e, "items", None) or [{"loc": "", "msg": str(e)}]
            problems += [f"{name}: {i['loc']}: {i['msg']}" if i.get("loc") else f"{name}: {i['msg']}" for i in items]
    return problems


async def push(targets: list[Target], site: dict[str, dict[str, Any]], pool: Pool, dry_run: bool,
               concurrency: int, deadline: float) -> list[PushResult]:
    """Check (dry run) or save and apply each camera's site configuration; one result per camera."""

    async def one(t: Target) -> PushResult:
        method, path = ("POST", "api/config/check") if dry_run else ("PUT", "api/config")
        r = await pool.request(t, method, path, admin=True, json=site[t.name])
        why = refused(r)
        if why:
            return PushResult(t.name, "unauthorised", why)
        if r.status_code == 422:
            return PushResult(t.name, "refused", detail(r))
        if r.status_code != 200:
            return PushResult(t.name, "error", f"{method} {path}: {detail(r)}")
        try:
            doc = r.json()
            changes, apply = doc["changes"], doc["apply"]
        except (ValueError, KeyError, TypeError):
            return PushResult(t.name, "error", "not a Vigil answer")
        outcome = ("would change" if changes else "unchanged") if dry_run else ("applied" if changes else "unchanged")
        return PushResult(t.name, outcome, changes=changes, apply=apply, applied_in_ms=doc.get("applied_in_ms"))

    def failed(t: Target, e: BaseException) -> PushResult:
        note = "" if dry_run else "; it keeps the configuration it had unless it saved this one before the link dropped"
        if isinstance(e, Untrusted):  # refused before anything was sent
            note = "" if dry_run else "; nothing was sent"
        return PushResult(t.name, "unreachable", f"{e}{note}" if isinstance(e, Unreachable) else repr(e))

    return await each(pool, targets, one, concurrency, deadline, "check" if dry_run else "push", failed)


def value(v: Any) -> str:
    text = "-" if v is None else json.dumps(v, separators=(",", ":"))
    return text if len(text) <= 100 else text[:97] + "..."


def print_push(results: list[PushResult], dry_run: bool, as_json: bool) -> int:
    """Each camera's result (with its diff on a dry run), a summary; exit 1 when a camera failed."""
    if as_json:
        print(json.dumps([{**r.__dict__, "ok": r.ok} for r in results], indent=2))
    else:
        for r in results:
            how = ", ".join(f"{kind}: {' '.join(keys)}" for kind, keys in r.apply.items() if keys)
            took = f" in {r.applied_in_ms:.0f} ms" if r.applied_in_ms is not None else ""
            head = f"{r.name}: {r.outcome}"
            if r.ok and r.changes:
                head += f" ({len(r.changes)} change{'s' * (len(r.changes) != 1)}{'; ' + how if how else ''}){took}"
            print(head + (f": {r.detail}" if r.detail else ""))
            if dry_run:
                for c in r.changes:
                    print(f"    {c.get('key')}: {value(c.get('from'))} -> {value(c.get('to'))}")
        bad = [r for r in results if not r.ok]
        verb = "checked" if dry_run else "pushed"
        print(f"{len(results)} cameras {verb}: {len(results) - len(bad)} ok"
              + (f", {len(bad)} failed ({', '.join(r.name for r in bad)})" if bad else ""))
    return 0 if all(r.ok for r in results) else 1


@dataclass
class Pulled:
    name: str
    tree: dict[str, Any] | None
    problem: str | None = None


async def pull(targets: list[Target], pool: Pool, concurrency: int, deadline: float) -> list[Pulled]:
    """Each camera's site configuration as it exports it (secrets left out)."""

    async def one(t: Target) -> Pulled:
        r = await pool.request(t, "GET", "api/config/export")
        why = refused(r)
        if why or r.status_code != 200:
            return Pulled(t.name, None, why or f"GET api/config/export: {detail(r)}")
        try:
            tree = yaml.safe_load(r.text) or {}
        except yaml.YAMLError:
            return Pulled(t.name, None, "the export is not YAML")
        if not isinstance(tree, dict):
            return Pulled(t.name, None, "the export is not a mapping")
        return Pulled(t.name, tree)

    return await each(pool, targets, one, concurrency, deadline, "pull",
                      lambda t, e: Pulled(t.name, None, str(e) if isinstance(e, Unreachable) else repr(e)))


def starting_fleet(fleet: FleetFile, pulled: list[Pulled]) -> FleetFile:
    """A fleet file from what the cameras run: sections equal on every camera (two or more) as `common`,
    the rest per camera; a camera that could not be read keeps the site it had in `fleet`."""
    got = {p.name: p.tree for p in pulled if p.tree is not None}
    common: dict[str, Any] = {}
    if len(got) >= 2:
        first = next(iter(got.values()))
        common = {k: v for k, v in first.items() if all(k in t and t[k] == v for t in got.values())}
    cameras: dict[str, Camera] = {}
    for name, cam in fleet.cameras.items():
        site = {k: v for k, v in got[name].items() if k not in common} if name in got else cam.site
        cameras[name] = cam.model_copy(update={"site": site})
    return FleetFile(defaults=fleet.defaults, common=common, secrets=fleet.secrets, cameras=cameras)


def write_pull(out: Path, fleet: FleetFile, pulled: list[Pulled]) -> int:
    """<out>/<camera>.yaml per camera read, <out>/fleet.yaml; one line per camera; 1 when one failed."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for p in pulled:
            if p.tree is not None:
                (out / f"{p.name}.yaml").write_text(
                    yaml.safe_dump(p.tree, sort_keys=False, allow_unicode=True, default_flow_style=None))
        (out / "fleet.yaml").write_text(fleet_text(starting_fleet(fleet, pulled)))
    except OSError as e:
        raise ConfigError(f"--out {out}: {e.strerror or e}") from None
    for p in pulled:
        print(f"{p.name}: " + (f"saved {out / (p.name + '.yaml')}" if p.tree is not None else f"not saved: {p.problem}"))
    bad = [p.name for p in pulled if p.tree is None]
    print(f"{len(pulled)} cameras pulled: {len(pulled) - len(bad)} saved" + (f", {len(bad)} failed ({', '.join(bad)})"
                                                                               if bad else "")
          + f"; fleet file {out / 'fleet.yaml'}")
    return 1 if bad else 0
