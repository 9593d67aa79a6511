"""How soon frames flow again after ACAP Runtime comes back: `vigil emulator` is stopped for each outage
and started again, while `vigil run` in camera mode (its own process, as on a camera) waits; printed is
the time from the server being back to the next processed frame (GET /api/stats).

    python bench/acap_reconnect.py [--outages 5 30]

Measured 2026-12-02 on the 2-core VM: 3.5 s after a 5 s outage and 7.9 s after a 30 s one with
retries and gRPC's reconnect back-off capped at 5 s; 1.1 s and 1.1 s with both capped at 1 s.
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> list[float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outages", type=float, nargs="+", default=[5.0, 30.0], help="seconds the server is away")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds of frames before the first outage")
    ap.add_argument("--port", type=int, default=18091, help="the run's HTTP API port")
    args = ap.parse_args(argv)
    sock = f"unix://{tempfile.mkdtemp(prefix='vgr', dir='/tmp')}/rt.sock"

    def server() -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-m", "app", "emulator", "--address", sock, "--video",
                              str(ROOT / "samples" / "vtest.mp4"), "--loop"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        p.stdout.readline()  # "ACAP Runtime services on …": serving
        return p

    def processed() -> int | None:
        try:
            return httpx.get(f"http://127.0.0.1:{args.port}/api/stats", timeout=2).json()["frames"]["processed"]
        except (httpx.HTTPError, KeyError, ValueError):
            return None

    emu = server()
    run = subprocess.Popen([sys.executable, "-m", "app", "run", "--backend", "acap-runtime", "--device", "artpec8",
                            "--source", "acap-runtime", "--no-progress", "--set", f"acap_runtime.address={sock}",
                            "--set", "source.stream.width=768", "--set", "source.stream.height=576",
                            "--set", "api.enabled=true", "--set", f"api.port={args.port}"],
                           cwd=ROOT, stderr=subprocess.DEVNULL)
    waits = []
    try:
        time.sleep(args.warmup)
        if not processed():
            raise SystemExit("acap_reconnect: the run processed no frame before the first outage")
        for outage in args.outages:
            emu.terminate()
            emu.wait()
            time.sleep(outage)
            before = processed()
            emu = server()
            back = time.monotonic()
            while processed() == before and time.monotonic() - back < 120:
                time.sleep(0.05)
            waits.append(time.monotonic() - back)
            print(f"server away {outage:g} s: frames again {waits[-1]:.1f} s after it was back", flush=True)
            time.sleep(2.0)
    finally:
        run.terminate()
        run.wait(30)
        emu.terminate()
        emu.wait(10)
    return waits


if __name__ == "__main__":
    main()
