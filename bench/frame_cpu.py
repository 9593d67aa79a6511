"""Per-frame CPU work outside the model, stage by stage, p50/p95 in ms: what a camera's cores must do
per frame while its DLPU runs the model.

    python bench/frame_cpu.py                      # file mode and camera mode, 300 frames each
    python bench/frame_cpu.py --mode camera --frames 100
    python bench/frame_cpu.py --record out/outputs.npz   # also keep the model's outputs per frame
    python bench/frame_cpu.py --replay out/outputs.npz   # no model, no runtime: its outputs replayed (qemu)

One thread, one frame at a time, the pipeline's own parts in the pipeline's order: capture, plan,
preprocess, (model: not timed), decode, merge, track, analytics, output (the JSON Lines record make
demo writes). File mode decodes samples/vtest.mp4 with OpenCV; camera mode reads NV12 frames from the
ACAP Runtime emulator (started here, `vigil emulator`, the clip at its own 768x576) and times their
conversion to BGR as the camera source does it ("capture" is then the conversion only: the GetFrame
call is transport, shared memory on the camera, and is printed apart). Wall-clock times: on a busy
machine the p95 includes time the process waited for a core."""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import load_config  # noqa: E402
from app.modelfile import read_model  # noqa: E402
from app.timing import StageTimer  # noqa: E402
from app.types import Frame  # noqa: E402

STAGES = ["capture", "plan", "preprocess", "decode", "merge", "track", "analytics", "output"]


class Outputs:
    """The Detector's model: the real one run untimed just before the detector asks (or recorded outputs
    replayed), so the detector's own timer sees only decoding and merging."""

    def __init__(self, path: str, real, recorded: list[list[np.ndarray]] | None) -> None:
        info = read_model(path)
        self.inputs, self.outputs = list(info.inputs), list(info.outputs)
        self.real, self.recorded = real, recorded
        self.kept: list[list[np.ndarray]] = []
        self._next: list[list[np.ndarray]] = []

    def prime(self, tensors: list[np.ndarray]) -> None:
        if self.recorded is not None:
            self._next = [self.recorded.pop(0) for _ in tensors]
        else:
            self._next = [[o.copy() for o in self.real.run([t])] for t in tensors]
            self.kept.extend(self._next)

    def run(self, inputs):
        return self._next.pop(0)

    def run_many(self, batches):
        for _ in batches:
            yield self._next.pop(0)

    def close(self) -> None:
        pass


def camera_frames(count: int, size: tuple[int, int], rpc_ms: list[float], timer: StageTimer):
    """Frames as the camera source makes them: NV12 from the emulator's VideoCapture, converted to BGR."""
    from app.acap.client import Endpoint
    from app.acap.config import AcapRuntimeConfig
    from app.acap.nv12 import decode_frame
    from app.acap.video import VideoStream
    from app.capture.acap_runtime import StreamConfig
    from app.retry import RetryPolicy

    sock = Path(tempfile.mkdtemp(prefix="vfc", dir="/tmp")) / "emu.sock"
    address = f"unix://{sock}"
    emu = subprocess.Popen([sys.executable, "-m", "app", "emulator", "--address", address, "--video",
                            str(ROOT / "samples" / "vtest.mp4"), "-m", str(ROOT / "models" / "nanodet_int8_pertensor.tflite")],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        emu.stdout.readline()  # "… services on …": listening
        w, h = size
        settings = StreamConfig(width=w, height=h, framerate=30, format="yuv")
        acap = AcapRuntimeConfig(address=address)
        stream = VideoStream(Endpoint.from_config(acap), settings, RetryPolicy(timeout=30), connect_timeout=30,
                             timeout=10)
        vc = stream.pb.videocapture_pb2
        for seq in range(count):
            t0 = time.perf_counter()
            reply = stream._stub.GetFrame(vc.GetFrameRequest(stream_id=stream.stream_id, frame_reference=0), timeout=10)
            rpc_ms.append((time.perf_counter() - t0) * 1000)
            with timer.measure("capture"):
                image = decode_frame(reply.data, "yuv", w, h)
            yield Frame(image, reply.timestamp / 1e6, seq)
        stream.close()
    finally:
        emu.terminate()
        emu.wait(timeout=30)


def file_frames(uri: str, count: int, timer: StageTimer):
    import cv2

    cap = cv2.VideoCapture(uri)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    for seq in range(count):
        with timer.measure("capture"):
            ok, image = cap.read()
        if not ok:
            break
        yield Frame(image, seq / fps, seq)
    cap.release()


def run_mode(mode: str, args, recorded) -> tuple[StageTimer, list[float], list[float], list]:
    from app.analytics import Analytics
    from app.config import resolve_labels
    from app.detector import Detector, merge_ids
    from app.sinks.jsonl import JsonlSink
    from app.tracking import build_tracker

    cfg = load_config(args.config, {"output.progress": False}, env={})
    labels = resolve_labels(cfg.model.labels, cfg.model.path)
    real = None
    if recorded is None:
        from app.backends.tflite import load

        real = load(cfg.model.path, cfg.model.backend.threads)
    model = Outputs(cfg.model.path, real, list(recorded) if recorded is not None else None)
    timer = StageTimer()
    detector = Detector(cfg, timer, model=model)
    tracker = build_tracker(cfg.tracker, merge_ids(labels, cfg.model.groups) if cfg.decoder.merge_groups else None)
    analytics = Analytics(labels, cfg.zones, cfg.lines, cfg.filters, cfg.stationary, cfg.events, epoch_offset=0.0,
                          run_id="bench0", device_id="bench", count_labels=cfg.decoder.classes or None,
                          groups=cfg.model.groups)
    totals, cpu, rpc_ms = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        sink = JsonlSink(str(Path(tmp) / "bench.jsonl"), labels)
        if mode == "file":
            frames = file_frames(cfg.source.uri, args.frames, timer)
        else:
            frames = camera_frames(args.frames, (768, 576), rpc_ms, timer)
        it = iter(frames)
        while True:
            c0 = time.thread_time()
            t0 = time.perf_counter()
            frame = next(it, None)
            if frame is None:
                break
            plan = detector.plan(frame, tracker)
            tensors = detector.prepare(frame, plan)
            t1, c1 = time.perf_counter(), time.thread_time()
            model.prime(tensors)  # the model: not timed
            t2, c2 = time.perf_counter(), time.thread_time()
            dets = detector.infer(frame, tensors, plan)
            with timer.measure("track"):
                tracked = tracker.update(dets, frame.timestamp)
                events = tracker.pop_events()
            with timer.measure("analytics"):
                result = analytics.update(frame, tracked, events)
            with timer.measure("output"):
                sink.on_result(result)
            t3, c3 = time.perf_counter(), time.thread_time()
            if mode == "camera":  # the GetFrame call is inside t0..t1: transport, not the camera's work
                t1 -= rpc_ms[-1] / 1000
            totals.append((t1 - t0 + t3 - t2) * 1000)
            cpu.append((c1 - c0 + c3 - c2) * 1000)
        sink.close()
    return timer, totals, cpu, model.kept if recorded is None else [], rpc_ms


def report(mode: str, timer: StageTimer, totals: list[float], cpu: list[float], rpc_ms: list[float]) -> None:
    print(f"\n{mode} mode: {len(totals)} frames of 768x576, one thread, model not timed")
    print(f"{'stage':<12}{'p50 ms':>9}{'p95 ms':>9}")
    summary = timer.summary()
    for stage in STAGES:
        s = summary.get(stage)
        if s:
            print(f"{stage:<12}{s['p50']:>9.3f}{s['p95']:>9.3f}")
    # the whole frame's outside-the-model time, per frame (not a sum of per-stage percentiles)
    print(f"{'per frame':<12}{np.percentile(totals, 50):>9.3f}{np.percentile(totals, 95):>9.3f}   "
          f"wall clock, all stages (target p95 <= 3 ms)")
    print(f"{'  cpu time':<12}{np.percentile(cpu, 50):>9.3f}{np.percentile(cpu, 95):>9.3f}   "
          f"this thread's CPU time (OpenCV's own worker threads, if any, not counted)")
    if rpc_ms:
        print(f"(GetFrame over gRPC to the emulator, not counted above: p50 {np.percentile(rpc_ms, 50):.3f} ms)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["file", "camera", "both"], default="both")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--config", default=str(ROOT / "config" / "default.yaml"))
    p.add_argument("--record", help="save the model's outputs per view (file mode) to this .npz")
    p.add_argument("--replay", help="use outputs saved by --record instead of the model (no runtime needed)")
    p.add_argument("--threads", type=int, default=1, help="OpenCV threads (cv2.setNumThreads); 1: one core's work")
    args = p.parse_args(argv)
    import cv2

    cv2.setNumThreads(args.threads)
    recorded = None
    if args.replay:
        with np.load(args.replay) as z:
            n = int(z["n_outputs"])
            recorded = [[z[f"v{i}_{j}"] for j in range(n)] for i in range(int(z["n_views"]))]
    modes = ["file", "camera"] if args.mode == "both" else [args.mode]
    if args.replay:
        modes = [m for m in modes if m == "file"] or ["file"]  # recorded outputs belong to the file's frames
    for mode in modes:
        timer, totals, cpu, kept, rpc_ms = run_mode(mode, args, recorded)
        report(mode, timer, totals, cpu, rpc_ms)
        if args.record and mode == "file":
            arrays = {f"v{i}_{j}": o for i, outs in enumerate(kept) for j, o in enumerate(outs)}
            np.savez_compressed(args.record, n_views=len(kept), n_outputs=len(kept[0]), **arrays)
            print(f"model outputs of {len(kept)} views saved to {args.record}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
