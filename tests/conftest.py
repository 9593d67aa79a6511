"""Shared fixtures: paths to the bundled assets, small generated clips, and a CLI runner."""
from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CLIP = ROOT / "samples" / "vtest.mp4"
DEFAULT_MODEL = ROOT / "models" / "nanodet_int8_pertensor.tflite"
PERCHANNEL_MODEL = ROOT / "models" / "nanodet_int8_perchannel.tflite"
# the optional BlazePose person detector (config/blazepose.yaml), int8 input and output
BLAZEPOSE_MODEL = ROOT / "models" / "person_detect_int8_pertensor.tflite"
BLAZEPOSE_PERCHANNEL = ROOT / "models" / "person_detect_int8_perchannel.tflite"
FIXTURE_MODELS = ROOT / "tests" / "fixtures" / "models"
LABELS = ROOT / "tests" / "data" / "vtest_labels.json"


def make_clip(path: Path, frames: int = 20, size=(160, 120), fps: float = 10.0) -> Path:
    """A small MJPG clip whose frame i has a bright square at x = 4*i (so frames are distinguishable)."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[40:60, 4 * i : 4 * i + 20] = 255
        w.write(img)
    w.release()
    return path


def stalling_server(clip: bytes, release: threading.Event) -> http.server.ThreadingHTTPServer:
    """An HTTP server that sends half of `clip` and then goes silent with the connection open until
    `release` (a stream that stalled), on a free loopback port, serving on a thread."""

    class Stalling(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "video/x-msvideo")
            self.send_header("Content-Length", str(len(clip)))
            self.end_headers()
            self.wfile.write(clip[: len(clip) // 2])
            self.wfile.flush()
            release.wait(120)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def sample_clip_part(path: Path, frames: int) -> Path:
    """The first `frames` frames of the sample clip (people walking) as an MJPG AVI, e.g. to stream."""
    cap = cv2.VideoCapture(str(SAMPLE_CLIP))
    ok, img = cap.read()
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (img.shape[1], img.shape[0]))
    for _ in range(frames):
        w.write(img)
        ok, img = cap.read()
    w.release()
    cap.release()
    return path


@pytest.fixture
def small_clip(tmp_path) -> Path:
    return make_clip(tmp_path / "small.avi")


def run_vigil(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run the `vigil` CLI in a subprocess; returns CompletedProcess with text output."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd or ROOT, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


# ---- MQTT feed: a real mosquitto (Debian package `mosquitto`) -------------------------------

@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory):
    """One broker on a free loopback port for the whole session (no persistence)."""
    from tests.mqtt_util import Broker

    broker = Broker(tmp_path_factory.mktemp("mosquitto")).start()
    yield broker
    broker.stop()


@pytest.fixture
def broker_factory(tmp_path):
    """Brokers a test may stop and restart (fault tests); all stopped at the end."""
    from tests.mqtt_util import Broker

    made = []

    def make(**kw):
        b = Broker(tmp_path / f"broker{len(made)}", **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()
