import cv2
import numpy as np
import pytest

from app.capture import open_source
from app.config import SourceConfig
from app.errors import SourceError
from tests.conftest import SAMPLE_CLIP, make_clip


def frames_of(cfg, limit=None):
    src = open_source(cfg)
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
    src = open_source(SourceConfig(uri=str(clip), live=True, queue_size=2, reconnect_delay=0.05))
    try:
        import time

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
        open_source(SourceConfig(uri=str(tmp_path / "none.mp4")))


def test_unreadable_file_is_a_source_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match="bad.mp4"):
        open_source(SourceConfig(uri=str(bad)))


def test_http_url_is_a_live_source_with_wall_clock_timestamps(tmp_path):
    import functools
    import http.server
    import threading
    import time

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


def test_slow_consumer_still_gets_every_file_frame(tmp_path):
    import time

    clip = make_clip(tmp_path / "c.avi", frames=12)
    src = open_source(SourceConfig(uri=str(clip), queue_size=2))
    seqs = []
    try:
        it = iter(src)
        while True:
            # take a frame only once the queue is full again (or the thread has finished), so the
            # end of the file always meets a full queue
            deadline = time.monotonic() + 10
            while src.depth < 2 and src._thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.005)
            if src.read == 12 and src._thread.is_alive():
                time.sleep(0.3)  # the slow consumer itself (an inference step), not synchronisation
            f = next(it, None)
            if f is None:
                break
            seqs.append(f.seq)
    finally:
        src.close()
    assert seqs == list(range(12))


def test_stalled_http_stream_is_detected_and_reopened(tmp_path, caplog):
    """A server that sends part of a stream and then goes silent (connection kept open) must not hang
    capture: the read times out after stall_timeout and the source reconnects and delivers again."""
    import http.server
    import logging
    import threading
    import time

    clip = make_clip(tmp_path / "c.avi", frames=40).read_bytes()
    release = threading.Event()

    class Stalling(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "video/x-msvideo")
            self.send_header("Content-Length", str(len(clip)))
            self.end_headers()
            self.wfile.write(clip[: len(clip) // 2])
            self.wfile.flush()
            release.wait(30)  # stall with the connection open

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    caplog.set_level(logging.WARNING, logger="app.capture.opencv")
    src = open_source(SourceConfig(uri=f"http://127.0.0.1:{server.server_address[1]}/c.avi", queue_size=64,
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


def test_live_source_not_up_at_start_is_retried_until_it_comes_up(tmp_path):
    """A camera or NVR still booting: the URL is retried (visible in health) instead of exiting."""
    import functools
    import http.server
    import threading

    from app.health import Health
    from tests.mqtt_util import free_port, wait_until

    make_clip(tmp_path / "c.avi", frames=30)
    port = free_port()
    health, result = Health(), {}
    cfg = SourceConfig(uri=f"http://127.0.0.1:{port}/c.avi", queue_size=64, reconnect_delay=0.1, open_timeout=30)
    opener = threading.Thread(target=lambda: result.setdefault("src", open_source(cfg, health=health)), daemon=True)
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
    from tests.mqtt_util import free_port

    cfg = SourceConfig(uri=f"http://127.0.0.1:{free_port()}/c.avi", reconnect_delay=0.05, open_timeout=0.3)
    with pytest.raises(SourceError, match=r"cannot open video source .*; giving up after \d+ s \(source.open_timeout\)"):
        open_source(cfg)


def test_stop_while_a_live_source_is_retried_ends_the_wait():
    import threading

    from tests.mqtt_util import free_port

    cancel = threading.Event()
    cancel.set()
    cfg = SourceConfig(uri=f"http://127.0.0.1:{free_port()}/c.avi", reconnect_delay=30, open_timeout=0)
    with pytest.raises(SourceError, match="stopped while retrying"):
        open_source(cfg, cancel=cancel)
