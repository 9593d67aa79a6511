"""JSON Lines sink: one record per frame, to a file or stdout."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from app.errors import ConfigError, OutputClosed
from app.sinks import record
from app.types import FrameResult


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so what is still buffered for a closed pipe goes nowhere quietly
    (instead of an 'Exception ignored … BrokenPipeError' at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


FLUSH_INTERVAL = 1.0  # s: a reader (tail -f, a pipe) sees records within about this long, and a crash
# or SIGKILL loses no more; writing is still buffered between flushes


class JsonlSink:
    def __init__(self, target: str, labels: list[str], append: bool = False) -> None:
        self.labels = labels
        self.target = target
        self.flush_interval = FLUSH_INTERVAL
        self._flushed = time.monotonic()
        if target == "-":
            self._f = sys.stdout
        else:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self._f = open(target, "a" if append else "w", buffering=1 << 16)
            except OSError as e:
                raise ConfigError(f"output.jsonl: cannot write {target}: {e.strerror}") from None

    def on_result(self, result: FrameResult) -> None:
        if result.frame is None:
            return
        line = json.dumps(record(result.frame, result.objects, self.labels), separators=(",", ":")) + "\n"
        try:
            self._f.write(line)
            now = time.monotonic()
            if now - self._flushed >= self.flush_interval:
                self._f.flush()
                self._flushed = now
        except OSError as e:
            self._failed(e)

    def close(self) -> None:
        """Flush what is buffered (and close a file); a reader that went away is no error here."""
        try:
            if self._f is sys.stdout:
                self._f.flush()
            else:
                self._f.close()
        except OSError as e:
            try:
                self._failed(e)
            except OutputClosed:
                pass

    def _failed(self, e: OSError) -> None:
        """OutputClosed for a pipe or FIFO whose reader went away, else a ConfigError naming the problem."""
        where = "stdout" if self.target == "-" else self.target
        if self._f is sys.stdout:
            quiet_stdout()  # nothing more can reach it; the interpreter's last flush must not fail too
        if isinstance(e, BrokenPipeError):
            raise OutputClosed(where) from None
        raise ConfigError(f"output.jsonl: cannot write {where}: {e.strerror or e}") from None
