"""The line counts between two saves of the state file: an append-only journal beside it.

Every frame whose line states changed (a crossing, a reset) appends one JSON line holding the new
state of each line that changed. The write reaches the kernel at once, so a `kill -9` or an OOM
kill loses nothing written; a thread fsyncs what was appended within SYNC_INTERVAL, so a power cut
loses at most that long. The state file's periodic save compacts it (the journal is emptied once
the state file holding everything in it is on disk), and the next start replays it over the state
file. Each record holds whole line states, so replaying one twice changes nothing.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

SYNC_INTERVAL = 0.5  # s between a crossing's append and its fsync, at most


def journal_path(state_file: str | Path) -> Path:
    """Where the journal of a state file is: beside it, e.g. /data/state.json -> /data/state.journal."""
    p = Path(state_file)
    return p.with_name(f"{p.stem}.journal")


def replay(path: Path, lines: dict[str, dict]) -> tuple[dict[str, dict], int]:
    """`lines` with every journaled state applied in order, and the number of records applied. A
    damaged record (the last one, cut off by a crash) is skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return lines, 0
    except OSError as e:
        log.warning("cannot read %s (%s); line counts since the last save are lost", path, e.strerror or e)
        return lines, 0
    out, applied, bad = dict(lines), 0, 0
    for text in raw.splitlines():
        try:
            states = json.loads(text)["lines"]
            if not isinstance(states, dict) or not all(isinstance(v, dict) for v in states.values()):
                raise ValueError("not line states")
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        out.update(states)
        applied += 1
    if bad:
        log.warning("%s: %d damaged record(s) skipped (a crash mid-write)", path, bad)
    return out, applied


class LineJournal:
    """Appends changed line states (`append`), fsyncs them from a thread of its own, and is emptied
    by `compacted()` once the state file holds them. Never raises after opening: a disk that fails
    mid-run is said once, and counting goes on."""

    def __init__(self, path: str | Path, sync_interval: float = SYNC_INTERVAL) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._lock = threading.Lock()  # the descriptor: appends, fsyncs and truncation
        self._dirty = False
        self._failed = False
        self._closing = threading.Event()
        self._interval = sync_interval
        self._thread = threading.Thread(target=self._sync_loop, name="line-journal", daemon=True)
        self._thread.start()

    def append(self, states: dict[str, dict]) -> None:
        """Journal the new states of the lines that changed (the outputs thread)."""
        data = (json.dumps({"lines": states}, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd is None:
                return
            try:
                os.write(self._fd, data)  # one write per record: a crash cuts at most the last one
                self._dirty = True
            except OSError as e:
                self._warn("write", e)

    def compacted(self) -> None:
        """The state file now holds everything journaled: start the journal again, empty."""
        with self._lock:
            if self._fd is None:
                return
            try:
                os.ftruncate(self._fd, 0)
                self._dirty = False
            except OSError as e:
                self._warn("empty", e)

    def _sync_loop(self) -> None:
        while not self._closing.wait(self._interval):
            self._sync()

    def _sync(self) -> None:
        with self._lock:
            if self._fd is None or not self._dirty:
                return
            try:
                os.fsync(self._fd)
                self._dirty = False
            except OSError as e:
                self._warn("sync", e)

    def _warn(self, what: str, e: OSError) -> None:
        if not self._failed:
            self._failed = True
            log.warning("cannot %s %s (%s); line counts since the last save may be lost in a crash",
                        what, self.path, e.strerror or e)

    def close(self, remove: bool) -> None:
        """Stop the sync thread; `remove` the (compacted) file."""
        self._closing.set()
        self._thread.join()
        self._sync()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if remove:
            self.path.unlink(missing_ok=True)
