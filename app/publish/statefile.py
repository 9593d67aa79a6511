"""Line counts kept in a JSON file, so a restart (container, camera reboot, upgrade) does not zero them.

A consumer of the publish worker: it remembers the latest line states and writes them at most
every `interval` seconds while they change, at once after a reset, and at exit. Writes go to a
temporary file that then replaces the old one, so a power cut leaves either version, never half.
Between two saves every change goes to the line journal (app/publish/linejournal.py) within about
a second, so a crash loses at most that much counting.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from pathlib import Path

from pydantic import ValidationError

from app.errors import ConfigError
from app.events import EventType, TrackedObject, object_of
from app.publish.linejournal import LineJournal, journal_path, replay
from app.types import FrameResult

log = logging.getLogger(__name__)

VERSION = 1


class LineStateFile:
    """Saves and restores `FrameResult.lines` ({line: {"in", "out", "since", "labels"}})."""

    def __init__(self, path: str | Path, interval: float = 60.0) -> None:
        self.path = Path(path)
        self.interval = interval
        self._lock = threading.Lock()
        self._latest: dict | None = None
        self._saved: dict | None = None
        self._saved_at = float("-inf")
        self._journal: LineJournal | None = None
        self._journaled: dict | None = None

    def load(self) -> dict[str, dict]:
        """The saved line states; {} when there is no file. A damaged regular file is set aside, not
        fatal; anything else at the path (a directory, a device) or a file that cannot be read is a
        ConfigError, and nothing is moved."""
        try:
            mode = self.path.stat().st_mode
            if stat.S_ISDIR(mode):
                raise ConfigError(f"state.file: {self.path} is a directory; name a file in it, e.g. "
                                  f"{self.path / 'state.json'}")
            if not stat.S_ISREG(mode):
                raise ConfigError(f"state.file: {self.path} is not a regular file")
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return self._replayed({})
        except OSError as e:
            raise ConfigError(f"state.file: cannot read {self.path}: {e.strerror or e}") from None
        try:
            doc = json.loads(raw)
            lines = doc["lines"]
            if doc.get("version") != VERSION or not isinstance(lines, dict):
                raise ValueError(f"unknown layout (version {doc.get('version')!r})")
        except (ValueError, KeyError, TypeError) as e:  # UnicodeDecodeError is a ValueError
            aside = self.path.with_name(self.path.name + ".bad")
            try:
                os.replace(self.path, aside)
                kept = f"moved to {aside}"
            except OSError:
                kept = "left in place"
            log.warning("state.file %s is unreadable (%s); line counts start from 0 (%s)", self.path, e, kept)
            return self._replayed({})
        return self._replayed(lines)

    def _replayed(self, lines: dict[str, dict]) -> dict[str, dict]:
        """The saved states with the journal's later changes applied (what a crash left there)."""
        out, applied = replay(journal_path(self.path), lines)
        if applied:
            log.info("line counts: %d change(s) since the last save replayed from %s", applied,
                     journal_path(self.path))
        return out

    def open_journal(self) -> None:
        """From now on journal every change between saves (after the start-up save compacted the old one)."""
        try:
            self._journal = LineJournal(journal_path(self.path))
        except OSError as e:
            raise ConfigError(f"state.file: cannot write {journal_path(self.path)}: {e.strerror or e}") from None
        self._journaled = self._saved

    def save(self, lines: dict[str, dict]) -> None:
        """Write these line states now (any thread); ConfigError when the file cannot be written."""
        with self._lock:
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            try:
                with open(tmp, "w") as f:
                    f.write(json.dumps({"version": VERSION, "saved": round(time.time(), 3), "lines": lines}))
                    f.flush()
                    os.fsync(f.fileno())  # on disk before the journal holding the same is emptied
                os.replace(tmp, self.path)
            except OSError as e:
                raise ConfigError(f"state.file: cannot write {self.path}: {e.strerror or e}") from None
            self._saved, self._saved_at = lines, time.monotonic()
            if self._journal is not None and _sync_dir(self.path.parent):  # the rename is on disk too
                self._journal.compacted()

    def _journal_changes(self, lines: dict[str, dict]) -> None:
        """Append the lines whose state changed since the last record (or save)."""
        before = self._journaled or {}
        changed = {name: st for name, st in lines.items() if before.get(name) != st}
        if changed:
            self._journal.append(changed)
        self._journaled = lines

    def on_result(self, result: FrameResult) -> None:
        self._latest = result.lines
        if self._journal is not None and result.lines != self._journaled:
            self._journal_changes(result.lines)
        due = result.lines_reset or time.monotonic() - self._saved_at >= self.interval
        if result.lines != self._saved and due:
            self.save_or_warn(result.lines)

    def close(self) -> None:
        """Save what changed since the last write."""
        if self._latest is not None and self._latest != self._saved:
            self.save_or_warn(self._latest)
        if self._journal is not None:
            # kept when the last save failed: the next start replays it
            self._journal.close(remove=self._latest is None or self._latest == self._saved)
            self._journal = None

    def save_or_warn(self, lines: dict[str, dict]) -> None:
        """save(), logging instead of raising: counting goes on when the disk fails mid-run."""
        self._saved_at = time.monotonic()  # a failing disk is retried once per interval, not every frame
        try:
            self.save(lines)
        except ConfigError as e:  # the disk filled up or went read-only mid-run: keep counting
            log.warning("%s", e)


def _sync_dir(path: Path) -> bool:
    """fsync a directory (a rename in it survives a power cut); False when that failed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


def check_state_file(state_file: str | Path) -> None:
    """ConfigError at start when state.file cannot be used: a directory, or a place where no file can
    be written (without lines only the open-tracks file uses it, and that would warn at the first track
    and run on, keeping nothing)."""
    p = Path(state_file)
    if p.is_dir():
        raise ConfigError(f"state.file: {p} is a directory; name a file in it, e.g. {p / 'state.json'}")
    probe = p.with_name(f".{p.name}.probe")
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"state.file: cannot write {p}: {e.strerror or e}") from None


def tracks_path(state_file: str | Path) -> Path:
    """Where the open tracks of a run are kept: beside state.file, e.g. /data/state.json -> /data/state.tracks.json."""
    p = Path(state_file)
    return p.with_name(f"{p.stem}.tracks.json")


class OpenTracksFile:
    """The published tracks that have not ended (or whose `end` the broker has not acknowledged yet).

    A consumer of the publish worker placed before the MQTT publisher, so a track is on disk
    before its `new` is queued. The file is rewritten (atomically) on a frame whose events open a
    track, and when ends were confirmed; so a `kill -9` or power loss leaves every track whose
    `new` a subscriber may have seen and whose `end` it may not have. The next start reads it and
    publishes `end` (reason `restart`) for each. An entry leaves the file once its `end` is
    acknowledged by the broker (`confirm`), or at once when there is no broker to wait for.
    """

    def __init__(self, path: str | Path, wait_for_ack: bool) -> None:
        self.path = Path(path)
        self.wait_for_ack = wait_for_ack
        self._open: dict[str, TrackedObject] = {}  # event id -> the object as last published
        self._ending: set[str] = set()  # ended, waiting for the broker's acknowledgement of the end
        self._confirmed: set[str] = set()  # acknowledged ends not yet taken off (set from paho's thread)
        self._lock = threading.Lock()
        self._dirty = False
        self._failed = False

    def load(self) -> list[TrackedObject]:
        """The objects a previous run left open, oldest first; [] when none. A damaged file is set aside;
        an entry that is not an object Vigil writes is left out, with a warning."""
        try:
            if not stat.S_ISREG(self.path.stat().st_mode):  # a directory or device: never moved, never read
                log.warning("%s is not a regular file; tracks open at the last stop get no end", self.path)
                return []
            doc = json.loads(self.path.read_bytes())
            objs = doc["open"]
            if doc.get("version") != VERSION or not isinstance(objs, list) or not all(
                    isinstance(o, dict) and isinstance(o.get("id"), str) for o in objs):
                raise ValueError(f"unknown layout (version {doc.get('version')!r})")
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as e:
            aside = self.path.with_name(self.path.name + ".bad")
            try:
                os.replace(self.path, aside)
            except OSError:
                pass
            log.warning("%s is unreadable (%s); tracks open at the last stop get no end", self.path, e)
            return []
        out = []
        for o in objs:
            try:
                out.append(object_of(o))
            except ValidationError as e:
                err = e.errors()[0]
                log.warning("%s: open track %s is not an object this version writes (%s: %s); it gets no end",
                            self.path, o["id"], ".".join(map(str, err["loc"])), err["msg"])
        return out

    def adopt(self, objects: list[TrackedObject]) -> None:
        """Keep the previous run's open objects until their restart `end` is acknowledged."""
        for o in objects:
            self._open[o.id] = o
        self._dirty = bool(objects)

    def confirm(self, event_id: str) -> None:
        """The broker acknowledged the `end` of this object (any thread)."""
        with self._lock:
            self._confirmed.add(event_id)

    def on_result(self, result: FrameResult) -> None:
        opened = False
        for e in result.events:
            oid = e.after.id
            if e.type == EventType.END:
                if self.wait_for_ack:
                    self._ending.add(oid)
                else:
                    self._open.pop(oid, None)
                    self._dirty = True
            elif oid not in self._ending:
                opened |= oid not in self._open
                self._open[oid] = e.after
        with self._lock:
            done, self._confirmed = self._confirmed, set()
        for oid in done:
            self._ending.discard(oid)
            if self._open.pop(oid, None) is not None:
                self._dirty = True
        # written before the publisher queues this frame's `new`; ends only leave lazily (no hurry)
        if opened or (self._dirty and result.events):
            self.write()

    def write(self) -> None:
        """Replace the file with the open objects, or remove it when there are none (never raises)."""
        self._dirty = False
        try:
            if not self._open:
                self.path.unlink(missing_ok=True)
                return
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps({"version": VERSION, "saved": round(time.time(), 3),
                                       "open": [o.doc() for o in self._open.values()]}, separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError as e:
            if not self._failed:  # a full or read-only disk: keep running, say so once
                self._failed = True
                log.warning("cannot write %s (%s); tracks open at a crash would get no end",
                            self.path, e.strerror or e)

    def close(self) -> None:
        """At a clean stop, after the publisher closed: keep only ends the broker never acknowledged."""
        with self._lock:
            done, self._confirmed = self._confirmed, set()
        for oid in done:
            self._open.pop(oid, None)
        self.write()
