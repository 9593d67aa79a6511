"""The `vigil fleet` commands: status of every camera of a site, push and pull their configuration."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from app.errors import ConfigError
from app.fleet.client import Pool, Target
from app.fleet.configure import check_locally, print_push, pull, push, trees, write_pull
from app.fleet.fleetfile import FleetFile, admin_base, credentials, load_fleet
from app.fleet.status import fleet_status, print_status


def add_commands(sub) -> None:
    """Register `vigil fleet status` and `vigil fleet config push|pull` on the CLI's subparsers."""
    fleet = sub.add_parser("fleet", help="many cameras at once: status, push and pull their site configuration")
    verbs = fleet.add_subparsers(dest="fleet_command", required=True)
    s = verbs.add_parser("status", help="one line per camera: health, fps, model runs, MQTT, version, last event")
    common_options(s)
    s.add_argument("--json", action="store_true", help="one JSON document (cameras and a summary) for scripts")
    s.set_defaults(func=cmd_status)
    config = verbs.add_parser("config", help="push the fleet file's site configuration, or pull the cameras'")
    what = config.add_subparsers(dest="config_command", required=True)
    p = what.add_parser("push", help="check every camera's configuration here, then save it on each camera")
    common_options(p)
    p.add_argument("--dry-run", action="store_true", help="only show what each camera would change (its diff)")
    p.add_argument("--json", action="store_true", help="the per-camera results as JSON")
    p.set_defaults(func=cmd_push)
    q = what.add_parser("pull", help="save every camera's site configuration and a fleet file to start from")
    common_options(q)
    q.add_argument("--out", required=True, metavar="DIR", help="where to write <camera>.yaml and fleet.yaml")
    q.set_defaults(func=cmd_pull)


def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("fleetfile", metavar="FLEETFILE", help="the fleet file (YAML; docs/fleet.md)")
    p.add_argument("--insecure", action="store_true", help="do not check the cameras' TLS certificates (said loudly)")
    p.add_argument("--concurrency", type=int, default=32, metavar="N", help="cameras asked at once (default 32)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds per request and camera (default 10; a camera's own timeout wins)")
    p.add_argument("--camera", action="append", metavar="NAME", help="only this camera (repeatable)")


def targets(args) -> tuple[FleetFile, list[Target]]:
    """The fleet file and the cameras to ask, credentials resolved (a ConfigError before anything is sent)."""
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency: must be at least 1 (got {args.concurrency})")
    if args.timeout <= 0:
        raise ConfigError(f"--timeout: must be positive (got {args.timeout:g})")
    fleet = load_fleet(args.fleetfile)
    names = list(fleet.cameras)
    if args.camera:
        unknown = [n for n in args.camera if n not in fleet.cameras]
        if unknown:
            raise ConfigError(f"--camera: not in {args.fleetfile}: {', '.join(unknown)}")
        names = [n for n in names if n in args.camera]
    if args.insecure:
        print("vigil fleet: WARNING: --insecure: TLS certificates are NOT checked; anyone on the path can read "
              "and change what is sent, credentials included", file=sys.stderr)
    out = []
    for n in names:
        cam = fleet.cameras[n]
        creds = credentials(fleet, n)
        if cam.url.startswith("http://") and creds.auth == "basic":
            print(f"vigil fleet: WARNING: camera {n}: basic authentication over plain http sends the password "
                  "readable on the network", file=sys.stderr)
        out.append(Target(n, cam.url, admin_base(cam), creds))
    return fleet, out


def deadline(args, parts: int = 1) -> float:
    """A camera's whole deadline: its requests, each with the timeout, plus digest's extra round trip."""
    return args.timeout * (parts + 1)


def cmd_status(args) -> int:
    _, cams = targets(args)
    t0 = time.monotonic()

    async def go():
        async with Pool(args.timeout, args.insecure) as pool:
            return await fleet_status(cams, pool, args.concurrency, deadline(args))

    rows = asyncio.run(go())
    return print_status(rows, args.json, time.monotonic() - t0)


def cmd_push(args) -> int:
    fleet, cams = targets(args)
    site = trees(fleet, dict(os.environ))
    problems = check_locally({t.name: site[t.name] for t in cams})
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        raise ConfigError(f"{len({p.split(':')[0] for p in problems})} camera(s) with an invalid configuration: "
                          "nothing was sent")

    async def go():
        async with Pool(args.timeout, args.insecure) as pool:
            return await push(cams, site, pool, args.dry_run, args.concurrency, deadline(args))

    return print_push(asyncio.run(go()), args.dry_run, args.json)


def cmd_pull(args) -> int:
    fleet, cams = targets(args)

    async def go():
        async with Pool(args.timeout, args.insecure) as pool:
            return await pull(cams, pool, args.concurrency, deadline(args))

    return write_pull(Path(args.out), fleet, asyncio.run(go()))
