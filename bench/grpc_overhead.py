#!/usr/bin/env python3
"""Per-frame cost of the ACAP Runtime gRPC path versus the in-process TFLite backend.

Same model, same input tensors from frames of the sample clip, two measurements:
  per call    one model run: TFLiteModel.run vs AcapRuntimeModel.run against `vigil emulator`
              in its own process over a Unix socket (same TFLite model, same thread count),
              the gRPC client's share split into request build/serialise, round trip, deserialise
  per frame   every view of a frame under the default config (full frame + tiles), as the
              pipeline runs them: run_many in process vs run_many over gRPC, which keeps
              `model.backend.inflight` requests at the server so transport overlaps inference
Backends alternate in rounds so a burst of load on a shared machine hits both.

  python bench/grpc_overhead.py [--model M] [--frames 100] [--rounds 5] [--frame-count 10] [--inflight 2]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.acap.client import Endpoint  # noqa: E402
from app.acap.inference import AcapRuntimeModel  # noqa: E402
from app.backends import load  # noqa: E402
from app.backends.acap_runtime import Config as AcapBackendConfig  # noqa: E402
from app.config import Config  # noqa: E402
from app.detector import Detector  # noqa: E402
from app.retry import RetryPolicy  # noqa: E402
from app.types import Frame  # noqa: E402


def frame_views(model, n: int, tiling: bool | None = None) -> list[list[np.ndarray]]:
    """The model inputs of every view of n clip frames, as the pipeline prepares them under the
    default config (tiling=False: one letterboxed view of the whole frame; None: as configured)."""
    cfg = Config()
    if tiling is not None:
        cfg.preprocess.planner.enabled = tiling
    detector = Detector.load(cfg, model=model)
    cap = cv2.VideoCapture(str(ROOT / "samples" / "vtest.mp4"))
    out = []
    while len(out) < n:
        ok, img = cap.read()
        if not ok:
            break
        out.append(detector.prepare(Frame(img, 0.0, len(out))))
    cap.release()
    return out


def echo_round_trip(request_bytes: int, reply_bytes: int, calls: int = 300) -> float:
    """Median ms of a unary gRPC call to a no-op Python server over a Unix socket: the transport floor."""
    from concurrent import futures

    import grpc

    reply = b"\0" * reply_bytes
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: reply)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("floor.Echo", {"Call": handler}),))
    sock = tempfile.mkdtemp(prefix="vgf", dir="/tmp")
    server.add_insecure_port(f"unix://{sock}/s")
    server.start()
    try:
        with grpc.insecure_channel(f"unix://{sock}/s") as channel:
            call = channel.unary_unary("/floor.Echo/Call")
            payload = b"\0" * request_bytes
            for _ in range(30):
                call(payload)
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                call(payload)
                times.append(time.perf_counter() - t0)
        return 1000 * statistics.median(times)
    finally:
        server.stop(None)
        shutil.rmtree(sock, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "models" / "nanodet_int8_pertensor.tflite"))
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--frame-count", type=int, default=10, help="frames for the per-frame (all views) measurement")
    p.add_argument("--inflight", type=int, default=AcapBackendConfig().inflight)
    p.add_argument("--address", help="time a running ACAP Runtime here instead of starting `vigil emulator` "
                   "(on a camera: ACAP Runtime started with -j 2, so both sides run TFLite on the same CPU)")
    p.add_argument("--server-path", help="the model's path inside the server's container (default: --model)")
    args = p.parse_args()

    sock_dir = tempfile.mkdtemp(prefix="vgb", dir="/tmp")
    address, emu = args.address, None
    if address is None:
        address = f"unix://{sock_dir}/bench.sock"
        emu = subprocess.Popen([sys.executable, "-m", "app", "emulator", "--address", address, "--threads",
                                str(args.threads), "-m", args.model], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        if emu is not None:
            emu.stdout.readline()  # "… services on …": the socket is listening
        local = load(args.model, "tflite", threads=args.threads)
        remote = AcapRuntimeModel(Path(args.model), args.server_path or args.model, Endpoint(address), RetryPolicy(timeout=30),
                                  specs=(local.inputs, local.outputs), inflight=args.inflight)
        inputs = [views[0] for views in frame_views(local, args.frames, tiling=False)]
        for x in inputs[:5]:  # warm both
            local.run([x])
            remote.run([x])
        t_local, t_remote, t_build, t_rtt, t_parse = [], [], [], [], []
        predict = remote._predict
        for _ in range(args.rounds):
            for x in inputs:
                t0 = time.perf_counter()
                local.run([x])
                t_local.append(time.perf_counter() - t0)
            for x in inputs:
                t0 = time.perf_counter()
                remote.run([x])
                t_remote.append(time.perf_counter() - t0)
            for x in inputs:  # the same call in pieces
                t0 = time.perf_counter()
                req = remote.request([x])
                req.SerializeToString()
                t1 = time.perf_counter()
                reply = predict(req, timeout=30)
                t2 = time.perf_counter()
                remote.outputs_from(reply)
                t3 = time.perf_counter()
                t_build.append(t1 - t0)
                t_rtt.append(t2 - t1)
                t_parse.append(t3 - t2)
        ms = lambda v: 1000 * statistics.median(v)  # noqa: E731
        spec = local.inputs[0]
        print(f"model {Path(args.model).name}: input {list(spec.shape)} {spec.dtype} "
              f"({int(np.prod(spec.shape)) * spec.dtype.itemsize} bytes), {len(local.outputs)} outputs; "
              f"{len(inputs)} frames x {args.rounds} rounds, {args.threads} thread(s), medians")
        print(f"in-process TFLite run        {ms(t_local):7.3f} ms/frame")
        print(f"{'gRPC (' + ('emulator' if emu else 'server') + ')':28} {ms(t_remote):7.3f} ms/frame")
        print(f"  request build + serialise  {ms(t_build):7.3f} ms")
        print(f"  round trip (incl. server)  {ms(t_rtt):7.3f} ms")
        print(f"  response to arrays         {ms(t_parse):7.3f} ms")
        print(f"overhead                     {ms(t_remote) - ms(t_local):7.3f} ms/frame")
        print(f"ratio gRPC / in-process      {ms(t_remote) / ms(t_local):7.3f}x  (one call at a time)")
        floor = echo_round_trip(int(np.prod(spec.shape)) * spec.dtype.itemsize,
                                sum(int(np.prod(o.shape)) * o.dtype.itemsize for o in local.outputs))
        print(f"Python gRPC floor: no-op echo of the same bytes {floor:.3f} ms -> best possible ratio "
              f"{(ms(t_local) + floor) / ms(t_local):.3f}x with a Python server (ACAP Runtime itself is C++)")

        views = frame_views(local, args.frame_count)
        f_local, f_remote = [], []
        for _ in range(args.rounds):
            for tensors in views:
                for results, times in ((local.run_many([t] for t in tensors), f_local),
                                       (remote.run_many([t] for t in tensors), f_remote)):
                    t0 = time.perf_counter()
                    for _ in results:
                        pass
                    times.append(time.perf_counter() - t0)
        n = len(views[0])
        print(f"per frame, default config: {n} views/frame, {len(views)} frames x {args.rounds} rounds, "
              f"{args.inflight} request(s) in flight")
        print(f"in-process TFLite run_many   {ms(f_local):7.2f} ms/frame  ({ms(f_local) / n:.3f} ms/view)")
        print(f"gRPC run_many                {ms(f_remote):7.2f} ms/frame  ({ms(f_remote) / n:.3f} ms/view)")
        print(f"ratio gRPC / in-process      {ms(f_remote) / ms(f_local):7.3f}x  (target <= 1.15x)")
        remote.close()
    finally:
        if emu is not None:
            emu.terminate()
            emu.wait(10)
        shutil.rmtree(sock_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
