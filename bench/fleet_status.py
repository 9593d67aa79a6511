"""How long `vigil fleet status` takes for a site: N simulated cameras (one uvicorn process answering like
Vigil's /api/health, /api/stats and /api/events on N loopback addresses 127.0.x.y, so every camera is its
own host and its own connections), and optionally R real Vigils (`vigil run` on the sample clip, --fps 2).

    python bench/fleet_status.py                    # 1,000 simulated cameras, concurrency 16, 64, 256
    python bench/fleet_status.py --real 20 --simulated 0

Prints the wall time of the whole command (a fresh `python -m app fleet status --json` process) per
setting, with the command's own start-up measured alone as the baseline. Loopback only; the machine is
shared, so read the numbers as ratios to that baseline.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _proc import cpu  # noqa: E402


def address(i: int) -> str:
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


def serve(n: int, port: int) -> None:
    """The simulated cameras (runs in its own process): one app, n listening sockets."""
    import asyncio

    import uvicorn
    from fastapi import FastAPI, Request

    app = FastAPI()
    start = time.time()

    def name(request: Request) -> str:
        return "sim-" + request.url.hostname.replace(".", "-")

    @app.get("/api/health")
    async def health() -> dict:
        return {"status": "ok", "components": {"source": {"status": "ok", "detail": "frames arriving"}}}

    @app.get("/api/stats")
    async def stats(request: Request) -> dict:
        now = time.time()
        return {"device_id": name(request), "version": "0.1.0", "timestamp": now, "uptime": now - start,
                "process_fps": 10.0, "model_runs_per_frame": 1.0,
                "mqtt": {"enabled": True, "connected": True, "state": "connected"}}

    @app.get("/api/events")
    async def events() -> list:
        return [{"type": "end", "seq": 7, "after": {"end_time": time.time() - 12.0}}]

    socks = []
    for i in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address(i), port))
        s.listen(256)
        socks.append(s)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, backlog=256))
    asyncio.run(server.serve(sockets=socks))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fleetfile: Path, env: dict, *extra: str) -> tuple[float, dict | None, int]:
    t0 = time.monotonic()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-m", "app", "fleet", "status", str(fleetfile), "--json", *extra],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    took = time.monotonic() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    timed.cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    try:
        return took, json.loads(r.stdout), r.returncode
    except ValueError:
        print(r.stderr[-2000:], file=sys.stderr)
        return took, None, r.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--simulated", type=int, default=1000, help="simulated cameras (default 1000)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--real", type=int, default=0, help="real Vigil instances (each loads the model: ~200 MB)")
    ap.add_argument("--timeout", type=float, default=20)
    args = ap.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    work = Path(tempfile.mkdtemp(prefix="vigil-fleet-bench-"))
    print("machine: shared 2-core VM, other engineers' jobs running; times include the command's start-up")
    base = work / "none.yaml"
    base.write_text(yaml.safe_dump({"cameras": {"x": {"url": "http://127.0.0.1:9/"}}}))
    took = timed(base, env)[0]
    print(f"baseline (one dead camera, start-up of the command): {took:.2f} s wall, CPU {timed.cpu:.2f} s")
    if args.simulated:
        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(args.simulated), str(port)], cwd=ROOT)
        try:
            wait_port(address(args.simulated - 1), port, server)
            doc = {"defaults": {"auth": "none"},
                   "cameras": {f"sim{i}": {"url": f"http://{address(i)}:{port}/"} for i in range(args.simulated)}}
            path = work / "simulated.yaml"
            path.write_text(yaml.safe_dump(doc))
            for c in args.concurrency:
                s0 = cpu(server.pid)
                took, out, code = timed(path, env, "--concurrency", str(c), "--timeout", str(args.timeout))
                ok = out["summary"]["ok"] if out else 0
                print(f"{args.simulated} simulated cameras, concurrency {c}: {took:.2f} s wall, command CPU "
                      f"{timed.cpu:.2f} s, simulator CPU {cpu(server.pid) - s0:.2f} s; {ok} ok, exit {code}")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    if args.real:
        real(args, env, work)
    return 0


def real(args, env: dict, work: Path) -> None:
    from tests.fleet_rig import Instance, fleet_doc, tokens, wait_all
    from tests.mqtt_util import Broker

    broker = Broker(work / "broker").start()
    cams = [Instance(work / "real", i, broker.port).start() for i in range(args.real)]
    try:
        t0 = time.monotonic()
        wait_all(cams, 600)
        print(f"{args.real} real Vigils ready in {time.monotonic() - t0:.0f} s")
        path = work / "real.yaml"
        path.write_text(yaml.safe_dump(fleet_doc(cams)))
        for c in args.concurrency:
            took, out, code = timed(path, {**env, **tokens(cams)}, "--concurrency", str(c))
            ok = out["summary"]["ok"] if out else 0
            slowest = max((r["answered_in_ms"] or 0) for r in out["cameras"]) if out else 0
            print(f"{args.real} real Vigils, concurrency {c}: {took:.2f} s wall, CPU {timed.cpu:.2f} s, {ok} ok, exit {code}, "
                  f"slowest camera {slowest:.0f} ms")
    finally:
        for c in cams:
            c.stop()
        broker.stop()


def wait_port(host: str, port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the simulated cameras exited {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit("the simulated cameras did not start")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(main())
