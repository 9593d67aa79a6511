"""Bench scripts that the docs tell users to run still work with today's config tree."""
import importlib.util
import re
from pathlib import Path

from app.backends import load

ROOT = Path(__file__).resolve().parents[1]


def bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grpc_overhead_prepares_the_views_of_the_default_config():
    # `python bench/grpc_overhead.py` (docs/camera.md, make bench-grpc) set preprocess.tiling.enabled,
    # a key the planners replaced, and died with AttributeError before measuring anything
    grpc_overhead = bench_module("grpc_overhead")
    model = load(str(ROOT / "models" / "nanodet_int8_pertensor.tflite"), "tflite", threads=1)
    try:
        whole = grpc_overhead.frame_views(model, 2, tiling=False)
        tiled = grpc_overhead.frame_views(model, 1, tiling=True)
    finally:
        model.close()
    assert [len(views) for views in whole] == [1, 1]
    assert whole[0][0].shape == (1, 416, 416, 3)
    assert len(tiled[0]) > 1  # tiles of the 768x576 clip frame plus the whole frame


def test_feed_latency_paces_the_source_the_pipeline_opens(monkeypatch):
    # the bench plays the clip like a camera by replacing cv2.VideoCapture; it once patched a module
    # attribute the capture code no longer reads, and measured an unpaced file instead
    import cv2

    from app.capture.opencv import build
    from app.config import load_config
    from app.health import Health
    from app.plugins import RunContext
    from app.timing import StageTimer

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    feed_latency = bench_module("feed_latency")
    monkeypatch.setattr(cv2, "VideoCapture", feed_latency.PacedCapture)
    cfg = load_config(None, {"source.uri": str(ROOT / "samples" / "vtest.mp4"), "source.live": True}, env={})
    ctx = RunContext(timer=StageTimer(), health=Health())
    source = build(cfg.source, ctx)
    try:
        assert isinstance(source._cap, feed_latency.PacedCapture)
        assert next(iter(source)).image.shape == (576, 768, 3)
    finally:
        source.close()


def test_acap_reconnect_measures_frames_flowing_again_after_the_server_is_back():
    # camera mode in its own process against `vigil emulator`, stopped and started again
    from tests.mqtt_util import free_port

    waits = bench_module("acap_reconnect").main(["--outages", "1", "--warmup", "6", "--port", str(free_port())])
    assert len(waits) == 1 and waits[0] < 120  # frames came again (the bench gives up waiting at 120 s)


def compare(*args: str) -> dict[tuple[str, str, str], list[str]]:
    """bench/compare_detectors.py's rows, keyed by (split, group, A / B / A - B)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "bench" / "compare_detectors.py"), "--split", "tune",
                          "--resamples", "40", *args], capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines()[1:-1]:
        split, group, *rest = line.split()
        name = "A - B" if rest[:2] == ["A", "-"] else rest[0]
        rows[(split, group, name)] = rest[3:] if name == "A - B" else rest[1:]
    return rows


def test_compare_detectors_finds_no_difference_between_a_model_and_itself():
    rows = compare()
    assert rows[("tune", "person", "A")] == rows[("tune", "person", "B")]
    assert rows[("tune", "person", "A - B")] == ["+0.000", "+0.00..+0.00"] * 3


def test_compare_detectors_pairs_two_models_on_the_same_items():
    rows = compare("--b-set", f"model.path={ROOT / 'models' / 'nanodet_int8_perchannel.tflite'}")
    a, b, diff = (rows[("tune", "person", n)] for n in ("A", "B", "A - B"))
    assert a[0] == b[0] == "84"  # the same labelled people
    recall_a, recall_b = float(a[3]), float(b[3])
    assert float(diff[0]) == round(recall_a - recall_b, 3)
    assert a != b  # per-channel weights give other detections


def test_frame_cpu_times_each_stage_in_both_modes_and_replays_recorded_outputs(tmp_path, capsys):
    # `python bench/frame_cpu.py` (docs/camera.md): the emulator's NV12 frames in camera mode, and the
    # recording that bench/qemu/camera_estimate.sh replays where no runtime exists
    frame_cpu = bench_module("frame_cpu")
    rec = tmp_path / "outputs.npz"
    assert frame_cpu.main(["--frames", "4", "--record", str(rec)]) == 0
    live = capsys.readouterr().out
    assert frame_cpu.main(["--frames", "4", "--replay", str(rec)]) == 0
    replayed = capsys.readouterr().out
    for out in (live, replayed):
        for mode in ("file", "camera"):
            section = out.split(f"{mode} mode: ")[1].split("mode: ")[0]
            assert section.startswith("4 frames of 768x576"), out
            for stage in ("capture", "plan", "preprocess", "decode", "merge", "track", "analytics", "output",
                          "per frame"):
                assert re.search(rf"^{stage} +\d+\.\d+ +\d+\.\d+", section, re.M), (stage, section)
    assert "GetFrame over gRPC" in live and "GetFrame" not in replayed  # replay makes its NV12 itself
    assert f"model outputs of 4 views saved to {rec}" in live


def test_thread_cpu_splits_a_real_run_into_the_models_cpu_and_the_rest():
    import os
    import subprocess
    import sys

    p = subprocess.run([sys.executable, str(ROOT / "bench" / "thread_cpu.py"), "--frames", "120", "--interpreters", "2",
                        "--threads", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    per = {m[0].strip(): float(m[1]) for m in re.findall(r"^(\S[^\n]*?|  [^\n]*?)\s+(\d+\.\d+)(?:   \(\d+ runs\))?$",
                                                         p.stdout, re.M)}
    assert re.search(r"^120 frames, 2 interpreter\(s\) x 1 thread\(s\)", p.stdout, re.M), p.stdout
    assert per["infer_0"] > 0 and per["infer_1"] > 0 and per["MainThread"] > 0, p.stdout
    assert "120 runs" in p.stdout
    # the model's CPU is inside the infer threads' (the kernel's per-thread figures come in ticks and are
    # sampled: a few ticks either way, spread over the frames), and the total is the sum of the rest
    tick = 1000 / os.sysconf("SC_CLK_TCK") / 120
    assert per["the model (run)"] <= per["infer_0"] + per["infer_1"] + 6 * tick, p.stdout
    assert abs(per["all threads"] - per["the model (run)"] - per["outside the model"]) < 0.05, p.stdout
