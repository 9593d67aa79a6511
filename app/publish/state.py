"""What a run keeps under `state.file`, opened in order: the lock (one Vigil per state file), the line
counts with their journal, and the tracks the previous run left open."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.events import TrackedObject
from app.publish.statefile import LineStateFile, OpenTracksFile, check_state_file, tracks_path
from app.publish.statelock import StateLock

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """The state files of one run; `release()` after the outputs closed."""

    lock: StateLock
    lines: LineStateFile
    tracks: OpenTracksFile
    orphans: list[TrackedObject] = field(default_factory=list)

    def release(self) -> None:
        self.lines.close()  # already closed by the outputs, unless they never started: then the journal
        self.lock.release()


def open_state(cfg, analytics, wait_for_ack: bool) -> RunState:
    """Check and lock state.file (ConfigError naming the other instance's pid when one holds it),
    restore the line counts (the state file, then its journal) and start journaling, and read the open
    tracks of the previous run."""
    check_state_file(cfg.state.file)  # an unusable path fails now, with or without lines
    lock = StateLock(cfg.state.file)
    try:
        # also without lines: lines drawn on site later are counted across restarts too
        lines = LineStateFile(cfg.state.file, cfg.state.interval)
        restored = analytics.restore_lines(lines.load())
        if restored:
            log.info("line counts of %s restored from %s", ", ".join(restored), cfg.state.file)
        lines.save(analytics.current().lines)  # an unwritable path fails now, not at exit; compacts
        lines.open_journal()
        tracks = OpenTracksFile(tracks_path(cfg.state.file), wait_for_ack=wait_for_ack)
        orphans = tracks.load()
        tracks.adopt(orphans)
    except BaseException:
        lock.release()
        raise
    return RunState(lock, lines, tracks, orphans)
