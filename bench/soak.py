"""Memory soak: RSS of `vigil run --loop` with the HTTP API polled and MQTT on, over a long run.

Starts a private mosquitto (or uses --broker), runs `vigil run --loop --api PORT --mqtt HOST:PORT`
on the bundled clip with the configured default model, polls what the status page polls every
--poll s, samples the process's RSS every --sample s and prints the curve as it goes, then
start / steady / end, the peak and the growth over the last --last minutes.

    nice -n 10 .venv/bin/python bench/soak.py --minutes 30
    .venv/bin/python bench/soak.py --minutes 3 --no-api --no-mqtt   # the bare pipeline
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# what the status page (app/api/static/status.js) fetches on every tick
PAGE = ["api/latest.jpg?h=480&quality=70", "api/stats", "api/counts", "api/health", "api/events?limit=15"]


def rss_mib(pid: int) -> dict[str, float]:
    """VmRSS and its anonymous / file-backed parts of a process, in MiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Poller(threading.Thread):
    """GETs the status page's endpoints every `interval` s; remembers the last /api/stats."""

    def __init__(self, port: int, interval: float) -> None:
        super().__init__(daemon=True, name="poller")
        self.base = f"http://127.0.0.1:{port}/"
        self.interval = interval
        self.stop = threading.Event()
        self.polls = 0
        self.errors = 0
        self.stats: dict = {}

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            for path in PAGE:
                try:
                    with urllib.request.urlopen(self.base + path, timeout=10) as r:
                        body = r.read()
                    if path == "api/stats":
                        self.stats = json.loads(body)
                except Exception:  # 404 before the first frame, 503 while degraded: counted, not fatal
                    self.errors += 1
            self.polls += 1


def processed(stats: dict) -> int:
    """Frames processed, from an /api/stats answer (0 before the first)."""
    frames = stats.get("frames")
    return int(frames.get("processed", 0)) if isinstance(frames, dict) else 0


def configured_model(args) -> str:
    from app.run_options import find_file
    from app.config import load_config

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = value
    cfg = load_config(args.config, overrides)
    return f"{find_file(cfg.model.path)} (backend {cfg.model.backend.type}, decoder {cfg.decoder.type})"


def summarise(samples: list[tuple[float, float]], warmup: float, last: float) -> dict[str, float]:
    """start, steady (median after warm-up), end, peak, growth over the last `last` s and its slope."""
    t_end = samples[-1][0]
    steady = [r for t, r in samples if t >= warmup] or [r for _, r in samples]
    window = [(t, r) for t, r in samples if t >= t_end - last]
    growth = window[-1][1] - window[0][1] if len(window) > 1 else 0.0
    slope = 0.0
    if len(window) > 2:  # least squares, MiB per hour: less sensitive to one noisy sample than end - start
        mt = statistics.fmean(t for t, _ in window)
        mr = statistics.fmean(r for _, r in window)
        den = sum((t - mt) ** 2 for t, _ in window)
        slope = sum((t - mt) * (r - mr) for t, r in window) / den * 3600 if den else 0.0
    return {"start": samples[0][1], "steady": statistics.median(steady), "end": samples[-1][1],
            "peak": max(r for _, r in samples), "growth": growth, "window_s": window[-1][0] - window[0][0],
            "slope_per_h": slope}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    p.add_argument("--poll", type=float, default=3.0, help="seconds between polls of the status page's endpoints")
    p.add_argument("--sample", type=float, default=30.0, help="seconds between RSS samples")
    p.add_argument("--warmup", type=float, default=3.0, help="minutes left out of the steady-state median")
    p.add_argument("--last", type=float, default=20.0, help="minutes over which growth is reported")
    p.add_argument("--source", default=str(ROOT / "samples" / "vtest.mp4"), help="video looped by vigil run")
    p.add_argument("--config", help="vigil config file (default: the built-in defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to vigil run")
    p.add_argument("--broker", metavar="HOST:PORT", help="use this broker instead of a private mosquitto")
    p.add_argument("--no-api", action="store_true", help="run without the HTTP API (and without polling)")
    p.add_argument("--no-mqtt", action="store_true", help="run without MQTT")
    p.add_argument("--json", help="also write the samples and summary here")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vigil-soak-"))
    broker = None
    cmd = [sys.executable, "-m", "app", "run", "--loop", "--source", args.source, "--no-progress"]
    if args.config:
        cmd += ["--config", args.config]
    for item in args.set:
        cmd += ["--set", item]
    if not args.no_mqtt:
        address = args.broker
        if address is None:
            from tests.mqtt_util import Broker

            broker = Broker(work / "mosquitto").start()
            address = f"127.0.0.1:{broker.port}"
        cmd += ["--mqtt", address]
    port = None
    if not args.no_api:
        port = free_port()
        cmd += ["--api", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    print(f"soak: {' '.join(cmd[2:])}", flush=True)
    print(f"soak: model {configured_model(args)}", flush=True)
    print(f"soak: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; {args.minutes:g} min, API poll every "
          f"{args.poll:g} s, RSS every {args.sample:g} s", flush=True)
    log = open(work / "vigil.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    poller = None
    if port is not None:
        poller = Poller(port, args.poll)
        poller.start()
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # the curve starts at the first processed frame (model loaded, source open, API up)
    while not stop.is_set() and proc.poll() is None and time.monotonic() - t0 < 600:
        if poller is None and time.monotonic() - t0 >= args.sample:
            break
        if poller is not None and processed(poller.stats):
            break
        stop.wait(0.5)
    print(f"soak: first frame after {time.monotonic() - t0:.0f} s", flush=True)
    t0 = time.monotonic()
    print(f"{'min':>6} {'RSS MiB':>8} {'anon':>7} {'file':>6} {'frames':>8} {'fps':>5}", flush=True)
    try:
        while not stop.is_set() and proc.poll() is None:
            t = time.monotonic() - t0
            mem = rss_mib(proc.pid)
            samples.append((t, mem["VmRSS"]))
            stats = poller.stats if poller else {}
            frames = processed(stats) if poller else ""
            fps = stats.get("process_fps")
            print(f"{t / 60:6.1f} {mem['VmRSS']:8.1f} {mem.get('RssAnon', 0):7.1f} {mem.get('RssFile', 0):6.1f} "
                  f"{frames!s:>8} {'' if fps is None else f'{fps:5.1f}'}", flush=True)
            if t >= args.minutes * 60:
                break
            stop.wait(min(args.sample, max(0.0, args.minutes * 60 - t)) or args.sample)
    finally:
        if poller is not None:
            poller.stop.set()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if broker is not None:
            broker.stop()
    if proc.returncode not in (0, -signal.SIGTERM):
        print(f"soak: vigil exited with {proc.returncode}; last log lines:", file=sys.stderr)
        print("\n".join((work / "vigil.log").read_text().splitlines()[-15:]), file=sys.stderr)
    if len(samples) < 2:
        print("soak: too few samples", file=sys.stderr)
        return 1
    s = summarise(samples, args.warmup * 60, args.last * 60)
    print(f"soak: RSS start {s['start']:.1f} MiB, steady {s['steady']:.1f} MiB (median after {args.warmup:g} min), "
          f"end {s['end']:.1f} MiB, peak {s['peak']:.1f} MiB")
    print(f"soak: growth over the last {s['window_s'] / 60:.1f} min: {s['growth']:+.1f} MiB "
          f"(least-squares slope {s['slope_per_h']:+.1f} MiB/h)")
    if poller is not None:
        print(f"soak: {poller.polls} API polls, {poller.errors} failed requests")
    tail = [line for line in (work / "vigil.log").read_text().splitlines() if line.startswith("vigil:")]
    for line in tail:
        print(f"soak: {line}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cmd": cmd, "samples": samples, "summary": s}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
