import functools
import http.server
import logging
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from app.capture import build_source
from app.capture.framequeue import FrameQueue
from app.capture.opencv import Config as SourceConfig, FramePacer
from app.errors import SourceError
from app.plugins import RunContext
from app.health import Health
from app.types import Frame
from tests.conftest import ROOT, SAMPLE_CLIP, make_clip, stalling_server
from tests.mqtt_util import free_port, wait_until


def frames_of(cfg, limit=None):
    src = build_source(cfg)
    out = []
    try:
        for f in src:
            out.append(f)
            if limit and len(out) >= limit:
                break
    finally:
        src.close()
    return src, out


def test_file_delivers_every_frame_with_position_timestamps(small_clip):
    src, frames = frames_of(SourceConfig(uri=str(small_clip)))
    assert [f.seq for f in frames] == list(range(20))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(20) / 10.0)
    assert src.total == 20 and not src.live and src.dropped == 0
    # frame content follows the clip: the square moves right by 4 px per frame
    col = [int(np.argmax(f.image[50, :, 0] > 128)) for f in frames]
    assert col == [4 * i for i in range(20)]


def test_fps_cap_subsamples_by_video_time(small_clip):
    src, frames = frames_of(SourceConfig(uri=str(small_clip), fps=5))
    assert [f.seq for f in frames] == list(range(0, 20, 2))
    assert src.skipped == 10


def test_a_source_says_the_rate_its_frames_come_at_and_the_files_it_reads(small_clip):
    # the annotated video is written at this rate: a cap above the clip's own 10 fps passes every frame
    for cap, rate in ((None, 10.0), (5.0, 5.0), (30.0, 10.0)):
        src, frames = frames_of(SourceConfig(uri=str(small_clip), fps=cap))
        assert src.fps == pytest.approx(10.0) and src.effective_fps == pytest.approx(rate)
        assert len(frames) == 20 * min(rate, 10.0) / 10.0
    assert SourceConfig(uri=str(small_clip)).inputs() == {"source.uri": str(small_clip)}
    from app.capture.acap_runtime import Config as CameraConfig

    assert CameraConfig().inputs() == {}  # a camera stream: no file an output could overwrite


def test_loop_keeps_timestamps_increasing(small_clip):
    _, frames = frames_of(SourceConfig(uri=str(small_clip), loop=True), limit=50)
    ts = [f.timestamp for f in frames]
    assert len(frames) == 50 and np.all(np.diff(ts) > 0)
    assert [f.seq for f in frames] == list(range(50))
    np.testing.assert_allclose(ts[20], 2.0)


def test_sample_clip_is_the_pedestrian_clip():
    src, frames = frames_of(SourceConfig(uri=str(SAMPLE_CLIP)), limit=3)
    assert src.size == (768, 576) and src.fps == pytest.approx(10.0) and src.total == 795
    assert frames[0].image.shape == (576, 768, 3)


def test_live_source_drops_oldest_frames_when_consumer_is_slow(tmp_path):
    clip = make_clip(tmp_path / "c.avi", frames=60)
    src = build_source(SourceConfig(uri=str(clip), live=True, queue_size=2, reconnect_delay=0.05))
    try:
        deadline = time.monotonic() + 20
        while src.dropped < 30 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a condition with a deadline, not a fixed wait
        assert src.dropped >= 30
        it = iter(src)
        got = [next(it) for _ in range(3)]
        assert got[0].seq > 2  # the first frames were replaced by newer ones
        assert got[0].seq < got[1].seq < got[2].seq
    finally:
        src.close()


def test_missing_file_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="video file not found"):
        build_source(SourceConfig(uri=str(tmp_path / "none.mp4")))


def test_directory_as_the_video_file_is_a_source_error_saying_so(tmp_path):
    with pytest.raises(SourceError, match="is a directory, not a video file"):
        build_source(SourceConfig(uri=str(tmp_path)))


@pytest.mark.parametrize("uri", ["", "  "])
def test_empty_uri_is_a_source_error_saying_it_is_empty(uri):
    # `--source ""` said "source.uri:  is a directory, not a video file" (the working directory)
    with pytest.raises(SourceError, match="^source.uri is empty; give a video file, an rtsp:// or http:// URL"):
        build_source(SourceConfig(uri=uri))


def test_unreadable_file_is_a_source_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match="bad.mp4"):
        build_source(SourceConfig(uri=str(bad)))


def test_http_url_is_a_live_source_with_wall_clock_timestamps(tmp_path):
    make_clip(tmp_path / "c.avi", frames=30)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        before = time.time()
        src, frames = frames_of(SourceConfig(uri=f"http://127.0.0.1:{server.server_address[1]}/c.avi",
                                             queue_size=64, reconnect_delay=0.05), limit=5)
        assert src.live and src.total is None and src.size == (160, 120)
        assert all(before <= f.timestamp <= time.time() for f in frames)
        assert [f.seq for f in frames] == sorted(f.seq for f in frames)
    finally:
        server.shutdown()


def test_end_of_file_meeting_a_full_queue_still_delivers_every_frame(tmp_path):
    clip = make_clip(tmp_path / "c.avi", frames=12)
    src = build_source(SourceConfig(uri=str(clip), queue_size=2))
    try:
        it = iter(src)
        first = [next(it) for _ in range(10)]
        # the last two frames fit the queue: the capture thread reads them, meets the end of the file
        # with the queue full and finishes, all before the consumer takes another frame
        src._thread.join(10)
        assert not src._thread.is_alive() and src.depth == 2
        rest = list(it)
    finally:
        src.close()
    assert [f.seq for f in first + rest] == list(range(12))


def frame(i: int) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), i / 10, i)


def test_queue_end_carries_the_producers_error_after_every_frame():
    q = FrameQueue(2, live=False)
    ended = threading.Event()

    def produce():
        for i in range(5):
            q.put(frame(i))
        q.end(SourceError("camera unplugged"))
        ended.set()

    threading.Thread(target=produce, daemon=True).start()
    it = iter(q)
    got = [next(it).seq for _ in range(3)]
    assert ended.wait(10) and q.depth == 2  # the end (with its error) met a full queue
    with pytest.raises(SourceError, match="camera unplugged"):
        for f in it:
            got.append(f.seq)
    assert got == [0, 1, 2, 3, 4]


def test_live_queue_keeps_the_newest_frames_and_counts_the_dropped_ones():
    q = FrameQueue(2, live=True)
    for i in range(5):
        q.put(frame(i))
    q.end()
    assert [f.seq for f in q] == [3, 4] and q.dropped == 3


def test_closing_the_queue_releases_a_producer_blocked_on_a_full_queue():
    q = FrameQueue(1, live=False)
    q.put(frame(0))
    producer = threading.Thread(target=lambda: q.put(frame(1)), daemon=True)
    producer.start()
    q.close()
    producer.join(10)
    assert not producer.is_alive() and q.depth == 0
    assert list(q) == []  # a closed queue ends its consumer quietly


def replace_with_directory(path):
    path.unlink()
    path.mkdir()


def replace_with_garbage(path):
    garbage = path.with_name("garbage.tmp")
    garbage.write_bytes(b"this is not a video" * 100)
    garbage.replace(path)


@pytest.mark.parametrize("change", [lambda p: p.unlink(), replace_with_directory, replace_with_garbage],
                         ids=["deleted", "directory", "garbage"])
def test_file_that_cannot_be_reopened_to_loop_ends_the_stream_with_a_source_error(tmp_path, change):
    clip = make_clip(tmp_path / "c.avi", frames=20)
    src = build_source(SourceConfig(uri=str(clip), loop=True, queue_size=2))
    got = []
    try:
        it = iter(src)
        got.append(next(it))
        change(clip)  # the open file keeps being read to its end; the reopen for the next pass fails
        with pytest.raises(SourceError, match=r"c\.avi .*(again to loop it|after restarting it) \(source\.loop\)"):
            for f in it:
                got.append(f)
    finally:
        src.close()
    assert [f.seq for f in got] == list(range(20))  # the whole first pass, then the error


def test_a_bug_in_the_capture_thread_ends_the_stream_with_a_source_error(small_clip, monkeypatch):
    def broken(self, t):
        raise RuntimeError("pacer bug")

    monkeypatch.setattr(FramePacer, "keep", broken)
    src = build_source(SourceConfig(uri=str(small_clip)))
    try:
        with pytest.raises(SourceError, match="capture failed: RuntimeError: pacer bug"):
            list(src)
    finally:
        src.close()


def test_cli_run_whose_looped_file_disappears_exits_with_a_source_error(tmp_path):
    """The file goes away while Vigil plays it in a loop: one clear line and exit code 4, not a quiet 0."""
    clip = make_clip(tmp_path / "c.avi", frames=20)
    proc = subprocess.Popen([sys.executable, "-m", "app", "run", "--source", str(clip), "--loop", "--jsonl", "-"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")})
    try:
        assert proc.stdout.readline().startswith("{")  # the first frame is through: the file is open
        clip.unlink()
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 4, err
    assert "vigil: source error: cannot open video source" in err and "again to loop it" in err
    assert "Traceback" not in err


def test_stalled_http_stream_is_detected_and_reopened(tmp_path, caplog):
    """A server that sends part of a stream and then goes silent (connection kept open) must not hang
    capture: the read times out after stall_timeout and the source reconnects and delivers again."""
    release = threading.Event()
    server = stalling_server(make_clip(tmp_path / "c.avi", frames=40).read_bytes(), release)
    caplog.set_level(logging.WARNING, logger="app.capture.opencv")
    src = build_source(SourceConfig(uri=f"http://127.0.0.1:{server.server_address[1]}/c.avi", queue_size=64,
                                   stall_timeout=1.0, reconnect_delay=0.1))
    try:
        deadline = time.monotonic() + 30
        while src.reconnects < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the reconnect counter with a deadline
        assert src.reconnects >= 2, "the stalled stream was never detected"
        frames = []
        it = iter(src)
        while len(frames) < 25 and time.monotonic() < deadline:
            frames.append(next(it))
        # more frames than one stalled connection ever delivered: the reopened streams delivered too
        assert len(frames) == 25
        assert "stopped delivering frames" in caplog.text
    finally:
        release.set()
        src.close()
        server.shutdown()


def test_the_runs_stop_ends_a_stalled_live_stream_at_once(tmp_path):
    """SIGTERM (the run's stop) while a camera's stream has gone silent: the frame loop ends at once
    and close() does not wait out the read (up to stall_timeout), or `docker stop` would kill Vigil
    before its end events and MQTT offline. The capture thread releases the stream when its read returns."""
    release = threading.Event()
    server = stalling_server(make_clip(tmp_path / "c.avi", frames=40).read_bytes(), release)
    stop = threading.Event()
    src = build_source(SourceConfig(uri=f"http://127.0.0.1:{server.server_address[1]}/c.avi", stall_timeout=60.0),
                       RunContext(cancel=stop))
    frames, done = [], threading.Event()

    def consume():
        for f in src:
            frames.append(f)
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    try:
        wait_until(lambda: frames and src.depth == 0 and src.read == len(frames) + src.dropped, 30, 0.05,
                   "the frames sent")
        time.sleep(0.5)  # the stream is silent now: no frame will come for stall_timeout (60 s)
        assert not done.is_set()
        stop.set()
        assert done.wait(10), "the frame loop went on waiting for the stalled stream"
        src.close()
        assert src._thread.is_alive()  # close() did not wait out the read
    finally:
        release.set()
        src.close()
        server.shutdown()
    src._thread.join(30)
    assert not src._thread.is_alive()  # and the thread ended once the read returned


def test_live_source_not_up_at_start_is_retried_until_it_comes_up(tmp_path):
    """A camera or NVR still booting: the URL is retried (visible in health) instead of exiting."""


    make_clip(tmp_path / "c.avi", frames=30)
    port = free_port()
    health, result = Health(), {}
    cfg = SourceConfig(uri=f"http://127.0.0.1:{port}/c.avi", queue_size=64, reconnect_delay=0.1, open_timeout=30)
    opener = threading.Thread(target=lambda: result.setdefault("src", build_source(cfg, RunContext(health=health))), daemon=True)
    opener.start()
    wait_until(lambda: health.retries >= 2, 20, what="retries while nothing listens")
    assert health.state == "retrying" and "cannot open video source" in health.last_error
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        opener.join(30)
        src = result["src"]
        try:
            frames = [f for _, f in zip(range(5), src)]
            assert len(frames) == 5 and src.size == (160, 120)
        finally:
            src.close()
    finally:
        server.shutdown()


def test_live_source_still_down_after_open_timeout_is_a_source_error():
    cfg = SourceConfig(uri=f"http://127.0.0.1:{free_port()}/c.avi", reconnect_delay=0.05, open_timeout=0.3)
    with pytest.raises(SourceError, match=r"cannot open video source .*; giving up after \d+ s \(source.open_timeout\)"):
        build_source(cfg)


def test_stop_while_a_live_source_is_retried_ends_the_wait():


    cancel = threading.Event()
    cancel.set()
    cfg = SourceConfig(uri=f"http://127.0.0.1:{free_port()}/c.avi", reconnect_delay=30, open_timeout=0)
    with pytest.raises(SourceError, match="stopped while retrying"):
        build_source(cfg, RunContext(cancel=cancel))


# ---- sources a site really has (issue 23 §4, §6) -------------------------------------------------------

@pytest.mark.parametrize("kind", ["device-zero", "device-null", "fifo"])
def test_a_device_or_a_fifo_as_the_source_is_named_for_what_it_is(tmp_path, kind):
    if kind == "fifo":
        path = str(tmp_path / "pipe.mp4")
        os.mkfifo(path)
        expected = f"source.uri: {path} is a named pipe (FIFO), not a video file"
    else:
        path = "/dev/zero" if kind == "device-zero" else "/dev/null"
        expected = f"source.uri: {path} is a device, not a video file (for a webcam give its index, e.g. 0)"
    r = subprocess.run([sys.executable, "-m", "app", "run", "--source", path, "--max-frames", "1", "--no-progress"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
    assert f"vigil: source error: {expected}" in r.stderr and "not found" not in r.stderr


def damaged_clips(tmp_path) -> dict[str, object]:
    """The sample clip cut in half, and with 200 bytes flipped in its last two thirds."""
    import random

    data = SAMPLE_CLIP.read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[:len(data) // 2])
    flipped = bytearray(data)
    rng = random.Random(1)
    for _ in range(200):
        flipped[rng.randrange(len(data) // 3, len(data))] ^= 0xFF
    flip = tmp_path / "flip.mp4"
    flip.write_bytes(bytes(flipped))
    return {"half": half, "flip": flip}


@pytest.mark.parametrize("which", ["half", "flip"])
def test_a_damaged_file_that_ends_early_says_where_and_why_in_the_log_and_the_summary(tmp_path, which):
    clip = damaged_clips(tmp_path)[which]
    r = subprocess.run([sys.executable, "-m", "app", "run", "--source", str(clip), "--fps", "1", "--no-progress",
                        "--set", "preprocess.tiling.tile_size=256", "--set", "preprocess.tiling.full_frame=false"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr  # the frames before the damage were used
    import re

    said = re.search(rf"WARNING app.capture.opencv: {clip} ended early: no frame could be decoded after frame "
                     r"(\d+) \(\d+\.\d s\) of the 795 \(79\.5 s\) its container lists; the file is damaged or cut short",
                     r.stderr)
    assert said and 0 < int(said.group(1)) < 795, r.stderr[-3000:]
    assert f"vigil: source: {clip} ended early: no frame could be decoded after frame {said.group(1)}" in r.stderr


def test_a_whole_file_is_not_said_to_end_early(small_clip):
    src = build_source(SourceConfig(uri=str(small_clip)))
    frames = list(src)
    src.close()
    assert frames and src.total == len(frames) and src.snapshot().ended_early == 0


def test_a_looping_damaged_file_shows_in_health_and_counts_each_early_end(tmp_path):
    health = Health()
    clip = damaged_clips(tmp_path)["half"]
    src = build_source(SourceConfig(uri=str(clip), loop=True, fps=1), RunContext(health=health))
    try:
        it = iter(src)
        wait_until(lambda: next(it) is not None and src.snapshot().ended_early >= 2, 120, 0, "two passes")
    finally:
        src.close()
    snap = src.snapshot()
    assert "ended early: no frame could be decoded after frame" in snap.early_end
    from app.health import part_component

    comp = part_component(health.snapshot(), "source", time.time())
    assert comp is not None and comp.status == "degraded" and "ended early" in comp.detail, comp


def test_a_damaged_file_looping_under_vigil_run_shows_in_api_health(tmp_path):
    import httpx

    clip = damaged_clips(tmp_path)["half"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    proc = subprocess.Popen([sys.executable, "-m", "app", "run", "--source", str(clip), "--loop", "--fps", "1",
                             "--no-progress", "--set", "preprocess.tiling.tile_size=256", "--set",
                             "preprocess.tiling.full_frame=false", "--set", "api.enabled=true",
                             "--set", f"api.port={port}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    seen = {}

    def source_health() -> str:
        try:
            seen.update(httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).json())
        except (httpx.HTTPError, ValueError):
            return ""
        return seen.get("components", {}).get("source", {}).get("detail", "")

    try:
        wait_until(lambda: "ended early" in source_health() or proc.poll() is not None, 180, 0.2, "the early end")
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(60)
    assert seen["components"]["source"]["status"] == "degraded" and seen["status"] != "ok"
    assert "ended early: no frame could be decoded after frame 407" in seen["components"]["source"]["detail"]
