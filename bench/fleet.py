"""How many cameras one mosquitto carries, and a site broker bridged to a central one without losing events.

Sizing: N simulated cameras, each Vigil's real MqttPublisher (QoS 1 events, retained state, last will)
fed with the FrameResults the pipeline made of the sample clip (recorded once with the real model, then
replayed; no inference), into one mosquitto, with one subscriber on the whole fleet's events
(`vigil/+/events`). At the default rate (10 results/s per camera, the clip's own events) and a busy one
(3x): messages/s the broker took, its CPU (from /proc/<pid>/stat), event latency p50/p99 from the
hand-over to the publisher to the subscriber, and loss (new/update/end handed over but not received).

    python bench/fleet.py                       # N = 10, 100, 500, 1000; then the bridge
    python bench/fleet.py --sizes 10 100 --no-bridge
    python bench/fleet.py --sizes --outage 60   # only the bridge

Bridge: cameras -> site mosquitto -> (QoS 1 bridge, clean session off, persistence) -> central mosquitto
-> a subscriber with a persistent session. The central broker is restarted, then the link is cut for
--outage seconds (a proxy between the brokers refuses connections); every new/end must arrive.
Loopback only. The machine is shared and busy: where the load generator (Python, same 2 cores) cannot
keep the asked rate, the `sent/s` column says so, and the broker is not what limited it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# named by the code that shapes a result, so a checkout with other result or event types never reads it
_SHAPE = hashlib.sha256(b"".join(p.read_bytes() for p in sorted([ROOT / "app" / "types.py", ROOT / "app" / "events.py",
                                                                  *(ROOT / "app" / "analytics").glob("*.py")])))
CACHE = Path(tempfile.gettempdir()) / f"vigil-bench-fleet-results-{_SHAPE.hexdigest()[:12]}.pkl"
RECORD_FRAMES = 300  # 30 s of the clip at its 10 fps


def record() -> list:
    """The pipeline's FrameResults for the sample clip (images dropped), cached; one pickle, so the
    unchanged counts stay one object from frame to frame as the publisher expects."""
    if CACHE.exists() and CACHE.stat().st_mtime > (ROOT / "samples" / "vtest.mp4").stat().st_mtime:
        return pickle.loads(CACHE.read_bytes())
    from dataclasses import replace

    from app import pipeline
    from app.config import load_config

    got = []

    class Recorder:
        def on_result(self, r) -> None:
            got.append(replace(r, frame=None, tracks=None, overlay=None))

        def close(self) -> None:
            pass

    cfg = load_config(None, {"output.progress": False, "zones": {"left": {"polygon": [[0, 0], [0.5, 0], [0.5, 1],
                                                                                       [0, 1]]}},
                             "lines": {"middle": {"start": [0.5, 0], "end": [0.5, 1]}}}, env={})
    pipeline.run(cfg, max_frames=RECORD_FRAMES, consumers=[Recorder()])
    CACHE.write_bytes(pickle.dumps(got))
    return got


# ---- one load-generating process: `count` publishers from `first` ----------------------------------

def worker(port: int, first: int, count: int, rate: float, start_at: float, seconds: float) -> None:
    from dataclasses import replace

    from app.publish.config import MqttConfig
    from app.publish.mqtt import MqttPublisher

    results = record()
    pubs = []
    for i in range(first, first + count):
        cfg = MqttConfig(enabled=True, port=port, stats_interval=0, queue_size=100000, keepalive=60)
        p = MqttPublisher(cfg, f"sim{i:04d}", ["person"])
        p.start()
        pubs.append(p)
    handed = {"new": 0, "update": 0, "end": 0}
    ticks = 0
    while time.time() < start_at:
        time.sleep(0.01)
    t0 = time.monotonic()
    behind = 0.0
    while (now := time.monotonic()) < t0 + seconds:
        due = t0 + ticks / rate
        if now < due:
            time.sleep(due - now)  # pacing the replay, not synchronisation
        r = results[ticks % len(results)]
        for k, p in enumerate(pubs):
            wall = time.time()
            events = tuple(e.model_copy(update={"after": e.after.model_copy(update={"frame_time": wall})})
                           for e in r.events)
            for e in events:
                handed[e.type.value] += 1
            p.on_result(r if not events else replace(r, events=events))
        behind = max(behind, time.monotonic() - due)
        ticks += 1
    fed = time.monotonic() - t0
    for p in pubs:
        p.flush(10)
    sent = sum(p.sent for p in pubs)
    dropped = sum(sum(p.snapshot().dropped.model_dump().values()) for p in pubs)
    for p in pubs:
        try:
            p.close(2)
        except AttributeError:  # paho's loop_stop can race its own thread's exit; the numbers are taken
            pass
    print(json.dumps({"handed": handed, "sent": sent, "dropped": dropped, "ticks": ticks, "fed": fed,
                      "behind": behind}), flush=True)


# ---- the measurement --------------------------------------------------------------------------------

def size_run(n: int, rate: float, seconds: float, tmp: Path, light: bool) -> dict | None:
    from _feed import Broker

    broker = Broker(tmp / f"b{n}-{rate:g}-{light}", extra=["max_queued_messages 0"]).start()
    try:
        row = measure(broker, n, rate, seconds, light)
        if row is not None:
            row["mode"] = "stream" if light else "publisher"
        return row
    finally:
        broker.stop()


def measure(broker, n: int, rate: float, seconds: float, light: bool) -> dict | None:
    from _feed import percentiles
    from _proc import cpu
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    lat: list[float] = []
    got = {"new": 0, "update": 0, "end": 0}
    lock = threading.Lock()

    def on_message(client, userdata, msg) -> None:
        try:
            e = json.loads(msg.payload)
            with lock:
                got[e["type"]] += 1
                lat.append(time.time() - e["after"]["frame_time"])
        except Exception:  # noqa: BLE001 - a callback given to paho keeps its thread alive
            pass

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fleet-sub-{n}")
    sub.on_message = on_message
    sub.on_connect = lambda c, *a: c.subscribe("vigil/+/events", qos=1)
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    per = 500 if light else 250
    groups = [(i, min(per, n - i)) for i in range(0, n, per)]
    start_at = time.time() + 8 + n / 60  # every publisher connected before the feeding starts
    how = ([str(ROOT / "bench" / "fleet_stream.py")] if light else [__file__, "--worker"])
    speed = rate / 10.0 if light else rate
    procs = [subprocess.Popen([sys.executable, *how, str(broker.port), str(first), str(count),
                               str(speed), str(start_at), str(seconds)], stdout=subprocess.PIPE, text=True)
             for first, count in groups]
    while time.time() < start_at:
        time.sleep(0.05)
    c0, w0 = cpu(broker.proc.pid), time.monotonic()
    outs = [p.communicate(timeout=seconds + 600)[0].strip().splitlines() for p in procs]
    window = time.monotonic() - w0
    broker_cpu = (cpu(broker.proc.pid) - c0) / window
    if not all(outs):
        sub.loop_stop()
        return None  # a worker failed (its traceback is on stderr)
    outs = [json.loads(o[-1]) for o in outs]
    handed = {k: sum(o["handed"][k] for o in outs) for k in got}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(got.values()) < sum(handed.values()):
        time.sleep(0.1)
    sub.loop_stop()
    sub.disconnect()
    p50, p99 = percentiles(lat, (50, 99))
    fed = max(o["fed"] for o in outs)
    return {"n": n, "rate": rate, "asked": n * rate, "results_per_s": sum(o["ticks"] for o in outs) * per_cam(groups)
            / fed, "msgs_per_s": sum(o["sent"] for o in outs) / fed, "events": sum(handed.values()),
            "lost": sum(handed.values()) - sum(got.values()), "lost_new_end": handed["new"] + handed["end"]
            - got["new"] - got["end"], "dropped": sum(o["dropped"] for o in outs), "broker_cpu": broker_cpu,
            "p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "behind_s": max(o["behind"] for o in outs)}


def per_cam(groups) -> float:
    return sum(c for _, c in groups) / len(groups)


def print_row(r: dict) -> None:
    print(f"{r['n']:5d} cameras {r['rate']:4.0f}/s ({r['mode']:9s}): results {r['results_per_s']:8.0f}/s (asked {r['asked']:6.0f}), "
          f"broker took {r['msgs_per_s']:7.0f} msg/s at {r['broker_cpu'] * 100:5.1f}% of a core; events "
          f"{r['events']}, lost {r['lost']} (new/end {r['lost_new_end']}), dropped {r['dropped']}; "
          f"latency p50 {r['p50_ms']:.0f} ms p99 {r['p99_ms']:.0f} ms; replay behind by up to {r['behind_s']:.1f} s",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10, 100, 500, 1000])
    ap.add_argument("--rates", type=float, nargs="+", default=[10.0, 30.0], help="results/s per camera")
    ap.add_argument("--seconds", type=float, default=15.0, help="feeding time per setting")
    ap.add_argument("--no-bridge", action="store_true")
    ap.add_argument("--publishers-up-to", type=int, default=100,
                    help="N up to which each camera is a real MqttPublisher (2 threads each); above, the light "
                         "replay of its recorded messages (bench/fleet_stream.py); both at this N")
    ap.add_argument("--outage", type=float, default=60.0, help="seconds the bridge link is cut")
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a broker with 1,000 clients needs the files
    sys.path.insert(0, str(ROOT / "bench"))
    results = record()
    events = sum(len(r.events) for r in results)
    print(f"machine: shared 2-core VM, busy (load average {os.getloadavg()[0]:.1f}); recorded {len(results)} results, "
          f"{events} events ({events / len(results) * 10:.1f} events/s at 10 results/s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        from fleet_stream import record_stream

        stream = record_stream(results)
        print(f"recorded the real publisher's stream: {len(stream)} messages in {len(results) / 10:.0f} s of the clip "
              f"({len(stream) / (len(results) / 10):.1f} msg/s per camera at the default rate)", flush=True)
        for n in args.sizes:
            modes = [m for m, ok in ((False, n <= args.publishers_up_to), (True, n >= args.publishers_up_to)) if ok]
            for light in modes:
                for rate in args.rates:
                    row = size_run(n, rate, args.seconds, Path(tmp), light)
                    if row is None:
                        print(f"{n:5d} cameras {rate:4.0f}/s: a load generator failed (see above)")
                        continue
                    print_row(row)
                    if row["results_per_s"] < 0.8 * row["asked"]:
                        print(f"{n:5d} cameras: the load generator (Python, on the same cores) could not keep "
                              "this rate; faster rates skipped")
                        break
        if not args.no_bridge:
            from bridge import bridge_run  # bench/bridge.py

            bridge_run(Path(tmp), args.outage)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "--worker":
        a = sys.argv[2:]
        worker(int(a[0]), int(a[1]), int(a[2]), float(a[3]), float(a[4]), float(a[5]))
    else:
        sys.exit(main())
