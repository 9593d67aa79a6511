"""The TFLite runtime's own C++ log lines ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
go straight to file descriptor 2, without a time. While an interpreter is made, fd 2 is caught here and
each of those lines re-logged through Python logging (time-stamped like every other log line): the
runtime's INFO lines at DEBUG (they say nothing a user acts on), its WARNING/ERROR lines at their level.
Lines another thread wrote meanwhile go back to stderr unchanged."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from typing import Iterator

# the runtime's prefixes (tflite/minimal_logging) -> the level its line is re-logged at
LEVELS = {"VERBOSE: ": logging.DEBUG, "INFO: ": logging.DEBUG, "WARNING: ": logging.WARNING,
          "ERROR: ": logging.ERROR}

_lock = threading.Lock()  # one catch at a time: fd 2 is the process's


@contextlib.contextmanager
def native_stderr_to(log: logging.Logger) -> Iterator[None]:
    """Catch what is written to fd 2 inside the block; re-log the runtime's lines through `log`."""
    with _lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no fd 2 (a closed stderr): nothing to catch
            yield
            return
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()  # what Python wrote meanwhile is in `caught` too
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                relog(caught.read().decode("utf-8", "replace"), log)


def relog(text: str, log: logging.Logger) -> None:
    """The runtime's lines of `text` through `log`; any other line back to stderr as it was."""
    for line in text.splitlines():
        level = next((lv for prefix, lv in LEVELS.items() if line.startswith(prefix)), None)
        if level is None:
            if line.strip():
                print(line, file=sys.stderr, flush=True)
            continue
        log.log(level, "runtime: %s", line.split(": ", 1)[1])
