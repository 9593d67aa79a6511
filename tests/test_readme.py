"""Every command line the README shows runs and does what it says.

The README is read when the tests are collected, so a line added or changed there is tested as
it stands. Lines are run as written, from the project root, with these changes only:
- `--no-progress`, and `--max-frames` unless the line loops (a looping line runs until what it
  starts answers, then gets SIGTERM, as `docker stop` would send);
- network addresses point at real local servers: `--mqtt` at the session's mosquitto, `--api` at a
  free port, a URL `--source` at an HTTP server streaming the sample clip (no camera here);
- output files go to the test's own directory instead of the project's `out/`.

`make demo` is run end to end by tests/test_pipeline.py::test_make_demo_end_to_end, and `make test`
is this suite itself, so `make` lines are not run here.
"""
from __future__ import annotations

import functools
import http.server
import json
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import httpx
import pytest

from tests.conftest import ROOT, SAMPLE_CLIP
from tests.mqtt_util import Subscriber, free_port, wait_until

README = ROOT / "README.md"
SHELL_BLOCKS = {"sh", "bash", "shell", "console"}
VIGIL = {"vigil", ".venv/bin/vigil"}
NOT_RUN = {"make"}  # see the module docstring
MAX_FRAMES = "6"


def readme_commands() -> list[str]:
    """The command lines in the README's shell code blocks (comments dropped, continuations joined)."""
    text = README.read_text()
    out = []
    for lang, body in re.findall(r"^```(\w*)[ \t]*\n(.*?)^```", text, re.S | re.M):
        if lang not in SHELL_BLOCKS:
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if shlex.split(line, comments=True):
                out.append(line)
    return out


def vigil_commands() -> list[str]:
    return [c for c in readme_commands() if shlex.split(c, comments=True)[0] not in NOT_RUN]


def test_the_readme_shows_commands_and_only_ones_this_test_knows():
    commands = readme_commands()
    assert len(vigil_commands()) >= 4, commands
    unknown = [c for c in commands if shlex.split(c, comments=True)[0] not in VIGIL | NOT_RUN]
    assert unknown == [], "teach tests/test_readme.py to run these README lines"


@pytest.fixture(scope="module")
def clip_url():
    """The sample clip over HTTP: what a URL source reads in this test."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SAMPLE_CLIP.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{SAMPLE_CLIP.name}"
    server.shutdown()
    server.server_close()


class Plan:
    """A README line made runnable here, and what to check about it."""

    def __init__(self, line: str, tmp_path: Path, clip_url: str, broker_port: int) -> None:
        words = shlex.split(line, comments=True)
        self.command = words[1]
        self.args = words[2:]
        self.jsonl_stdout = False
        self.files: list[Path] = []
        self.api_port: int | None = None
        self.mqtt = False
        self.loops = "--loop" in self.args
        args = iter(self.args)
        out = []
        for a in args:
            out.append(a)
            if a in ("--source", "-s", "--mqtt", "--api", "--save-video", "--jsonl"):
                value = next(args)
                if a in ("--source", "-s") and "://" in value:
                    value = clip_url
                elif a == "--mqtt":
                    self.mqtt = True
                    value = f"127.0.0.1:{broker_port}"
                elif a == "--api":
                    host, _, _ = value.rpartition(":")
                    self.api_port = free_port()
                    value = f"{host}:{self.api_port}" if host else str(self.api_port)
                elif a == "--jsonl" and value == "-":
                    self.jsonl_stdout = True
                elif a in ("--save-video", "--jsonl"):
                    value = str(tmp_path / Path(value).name)
                    self.files.append(Path(value))
                out.append(value)
        if self.command in ("run", "bench"):
            out.append("--no-progress")
            if not self.loops and "--max-frames" not in out:
                out += ["--max-frames", MAX_FRAMES]
        if self.command == "bench":
            out += ["--invokes", "5"]
        self.argv = [sys.executable, "-m", "app", self.command, *out]


@pytest.mark.parametrize("line", vigil_commands())
def test_readme_command_runs(line, tmp_path, clip_url, mosquitto):
    plan = Plan(line, tmp_path, clip_url, mosquitto.port)
    sub = Subscriber(mosquitto.port, "vigil/#") if plan.mqtt else None
    try:
        if plan.loops:
            proc = subprocess.Popen(plan.argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                wait_until_serving(plan, proc, sub)
                proc.send_signal(signal.SIGTERM)
                stdout, stderr = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        else:
            p = subprocess.run(plan.argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
            proc, stdout, stderr = p, p.stdout, p.stderr
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr, stderr
        if plan.command == "run":
            assert re.search(r"^vigil: \d+ frames in ", stderr, re.M), stderr
            if not plan.loops:
                assert f"vigil: {MAX_FRAMES} frames in " in stderr, stderr
        if plan.command == "bench":
            assert "raw invoke rate:" in stdout and "end-to-end pipeline:" in stdout, stdout
        if plan.jsonl_stdout:
            records = [json.loads(ln) for ln in stdout.splitlines()]
            assert records and all({"seq", "timestamp", "objects"} <= set(r) for r in records)
        for f in plan.files:
            check_output_file(f)
        if sub is not None:
            offline = sub.wait_for(lambda m: m.topic.endswith("/available") and m.payload == b"offline",
                                   what="the last 'offline' on …/available")
            assert sub.wait_for(lambda m: m.topic.endswith("/events")).json()["type"] == "new"
            assert offline
    finally:
        if sub is not None:
            sub.close()


def wait_until_serving(plan: Plan, proc: subprocess.Popen, sub: Subscriber | None) -> None:
    """Until a looping line does what it is for: its API answers with frames processed, its feed publishes."""
    def alive():
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {proc.stderr.read()}")
        return True

    if plan.api_port is not None:
        client = httpx.Client(base_url=f"http://127.0.0.1:{plan.api_port}", timeout=10)

        def processing():
            alive()
            try:
                return client.get("/api/stats").json()["frames"]["processed"] >= 3
            except (httpx.TransportError, ValueError, KeyError):
                return False

        try:
            wait_until(processing, 120, 0.1, "the API to show processed frames")
            assert client.get("/").status_code == 200  # the status page the README says to open
        finally:
            client.close()
    if sub is not None:
        wait_until(lambda: alive() and any(m.topic.endswith("/events") for m in sub.messages), 120, 0.1,
                   "an MQTT event")
    if plan.api_port is None and sub is None:
        raise AssertionError("a looping README line with neither --api nor --mqtt: say here what it should show")


def check_output_file(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0, path
    if path.suffix == ".jsonl":
        assert len(path.read_text().splitlines()) == int(MAX_FRAMES)
    elif path.suffix in (".mp4", ".avi", ".mkv", ".jpg", ".png"):
        cap = cv2.VideoCapture(str(path))
        ok, _ = cap.read()
        cap.release()
        assert ok, f"{path} has no readable frame"
