"""The TFLite runtime's own C++ lines ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.") come
through Vigil's logging with a time, like every other log line (README: log lines start with one)."""
from __future__ import annotations

import logging
import re

from app.backends.native_log import native_stderr_to, relog
from tests.conftest import run_vigil

STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) [\w.]+: ")


def test_a_run_writes_no_stderr_line_without_a_time():
    p = run_vigil("run", "--max-frames", "2", "--no-progress")
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert any(STAMPED.match(ln) for ln in lines), p.stderr
    # the end-of-run summary is the command's own report ("vigil: …"), not a log line
    assert all(STAMPED.match(ln) or ln.startswith("vigil: ") for ln in lines), p.stderr
    assert "XNNPACK" not in p.stderr  # an INFO line of the runtime's says nothing a user acts on


def test_with_debug_the_runtime_line_is_a_stamped_debug_line():
    p = run_vigil("run", "--debug", "--max-frames", "1", "--no-progress")
    assert p.returncode == 0, p.stderr
    xnn = [ln for ln in p.stderr.splitlines() if "XNNPACK" in ln]
    assert xnn and all(STAMPED.match(ln) and " DEBUG app.backends.tflite: runtime: Created" in ln for ln in xnn)


def test_caught_lines_keep_their_level_and_other_writes_go_back_to_stderr(capfd, caplog):
    import os

    log = logging.getLogger("test.native")
    with caplog.at_level(logging.DEBUG, logger="test.native"):
        with native_stderr_to(log):
            os.write(2, b"WARNING: a runtime warning\nsomething else entirely\n")
        relog("ERROR: failed to prepare\n\nINFO: created\n", log)
    got = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert got == [(logging.WARNING, "runtime: a runtime warning"), (logging.ERROR, "runtime: failed to prepare"),
                   (logging.DEBUG, "runtime: created")]
    assert "something else entirely" in capfd.readouterr().err
    os.write(2, b"after\n")  # fd 2 is back where it was
    assert capfd.readouterr().err == "after\n"
