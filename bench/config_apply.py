"""Time from PUT /api/config to its effect, per kind of change, on a running `vigil run` (sample clip, looped).

    python bench/config_apply.py [--repeat 5]

- zone (live): PUT sent -> the new zone's first count on the MQTT feed;
- line (live): PUT sent -> the new line's first retained state on the feed;
- broker (new publisher): PUT sent -> the first message on the other broker;
- tracker (restart in the process): PUT sent -> the restarted pipeline has processed a frame.
Prints the answer time of the PUT and the time to effect, median and worst of --repeat tries. Uses
two private mosquitto brokers on loopback ports; the machine's other load shows in the numbers.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _feed import ROOT, Broker, Subscriber, wait_until

import httpx

sys.path.insert(0, str(ROOT))
from tests.mqtt_util import free_port  # noqa: E402


def put(client: httpx.Client, tree: dict) -> tuple[float, float]:
    """(monotonic time the PUT was sent, seconds until it was answered)."""
    t0 = time.monotonic()
    r = client.put("/api/config", json=tree)
    r.raise_for_status()
    return t0, time.monotonic() - t0


def zone(i: int) -> dict:
    y = 0.4 + 0.01 * i
    return {"polygon": [[0.0, y], [1.0, y], [1.0, 1.0], [0.0, 1.0]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="tries per kind of change (default 5)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vigil-config-apply-"))
    a, b = Broker(work / "a").start(), Broker(work / "b").start()
    port = free_port()
    log = open(work / "vigil.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "app", "run", "--loop", "--fps", "10", "--no-progress",
                             "--api", str(port), "--set", "device_id=bench",
                             "--set", f"state.file={work / 'state.json'}"], cwd=ROOT, stdout=log, stderr=log,
                            # MQTT from the environment: a flag (--mqtt) would win over the site settings
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "VIGIL_MQTT__ENABLED": "true",
                                 "VIGIL_MQTT__PORT": str(a.port)})
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    subs = {a.port: Subscriber(a.port, "vigil/bench/#"), b.port: Subscriber(b.port, "vigil/bench/#")}
    results: dict[str, list[tuple[float, float]]] = {"zone (live)": [], "line (live)": [],
                                                     "broker (new publisher)": [], "tracker (restart)": []}

    def processed() -> int:
        try:
            return client.get("/api/stats").json()["frames"]["processed"]
        except (httpx.TransportError, KeyError, ValueError):
            return -1

    def restarted(tracker: str) -> bool:
        try:
            return client.get("/api/config").json()["tracker"]["type"] == tracker and processed() > 0
        except (httpx.TransportError, KeyError, ValueError):
            return False

    try:
        wait_until(lambda: processed() > 5, 60, 0.1, "vigil to run")
        broker = a.port
        tracker = "bytetrack"
        for i in range(args.repeat):
            sub = subs[broker]
            name = f"z{i}"
            t0, answer = put(client, {"zones": {name: zone(i)}, "mqtt": {"port": broker},
                                      "tracker": {"type": tracker}})
            m = sub.wait_for(lambda m, n=name: m.topic.startswith(f"vigil/bench/zones/{n}/") and m.at >= t0, 30)
            results["zone (live)"].append((answer, m.at - t0))
            line = f"l{i}"
            t0, answer = put(client, {"zones": {name: zone(i)}, "lines": {line: {"start": [0.5, 0.9], "end": [0.5, 0.1]}},
                                      "mqtt": {"port": broker}, "tracker": {"type": tracker}})
            m = sub.wait_for(lambda m, n=line: m.topic == f"vigil/bench/lines/{n}" and m.at >= t0, 30)
            results["line (live)"].append((answer, m.at - t0))
            broker = b.port if broker == a.port else a.port
            t0, answer = put(client, {"mqtt": {"port": broker}, "tracker": {"type": tracker}})
            m = subs[broker].wait_for(lambda m: m.at >= t0 and m.payload, 30)
            results["broker (new publisher)"].append((answer, m.at - t0))
            tracker = "sort" if tracker == "bytetrack" else "bytetrack"
            t0, answer = put(client, {"mqtt": {"port": broker}, "tracker": {"type": tracker}})
            wait_until(lambda t=tracker: restarted(t), 60, 0.02, "the restarted pipeline to process a frame")
            results["tracker (restart)"].append((answer, time.monotonic() - t0))
    finally:
        proc.terminate()
        proc.wait(30)
        for s in subs.values():
            s.close()
        a.stop()
        b.stop()
        client.close()
    print(f"PUT /api/config to effect, {args.repeat} tries each (seconds; this machine, with whatever else runs):")
    print(f"{'change':26} {'answered p50':>13} {'effect p50':>11} {'effect max':>11}")
    for kind, rows in results.items():
        answers, effects = [r[0] for r in rows], [r[1] for r in rows]
        print(f"{kind:26} {statistics.median(answers):13.3f} {statistics.median(effects):11.3f} {max(effects):11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
