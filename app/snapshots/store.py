"""Where snapshots live: the newest in memory, every finished one on disk, both bounded, oldest out first.

A snapshot is two JPEGs of one object's best view: a crop with a margin and the full frame with
the box drawn. While its object is tracked it lives in memory only (it may still improve); when
the track ends it is written to `<dir>/<id>.jpg` and `<dir>/<id>.full.jpg` once, which spares a
camera's flash. At start the directory is indexed, so snapshots of earlier runs are still served.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ID = re.compile(r"^[A-Za-z0-9]{1,32}-[0-9]{1,12}$")  # <run id>-<track id>; nothing else is ever a path


@dataclass(frozen=True, slots=True)
class Snapshot:
    crop: bytes
    full: bytes
    crop_size: tuple[int, int]  # (width, height) of the crop
    full_size: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return len(self.crop) + len(self.full)


class SnapshotStore:
    """Snapshots by object id, bounded in memory and on disk (any thread)."""

    def __init__(self, directory: str | Path | None, max_count: int, max_bytes: int,
                 memory_count: int, memory_bytes: int, quality: int = 80) -> None:
        self.quality = quality  # of the stored JPEGs
        self.dir = Path(directory) if directory else None
        self.max_count, self.max_bytes = max_count, max_bytes
        self.memory_count, self.memory_bytes = memory_count, memory_bytes
        self._lock = threading.Lock()
        self._mem: OrderedDict[str, Snapshot] = OrderedDict()
        self._mem_bytes = 0
        self._disk: OrderedDict[str, int] = OrderedDict()  # id -> bytes of its two files, oldest first
        self._disk_bytes = 0
        self.written = 0
        self.removed = 0
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._index()

    def _paths(self, oid: str) -> tuple[Path, Path]:
        return self.dir / f"{oid}.jpg", self.dir / f"{oid}.full.jpg"

    def _index(self) -> None:
        found = []
        for p in self.dir.glob("*.full.jpg"):
            oid = p.name[: -len(".full.jpg")]
            crop = self.dir / f"{oid}.jpg"
            if ID.match(oid) and crop.is_file():
                st = p.stat()
                found.append((st.st_mtime, oid, st.st_size + crop.stat().st_size))
        for _, oid, n in sorted(found):
            self._disk[oid] = n
            self._disk_bytes += n
        self._trim_disk()
        if found:
            log.info("snapshots: %d on disk in %s (%.1f MB)", len(self._disk), self.dir, self._disk_bytes / 1e6)

    # ---- writer (the outputs thread) -------------------------------------------------------

    def put(self, oid: str, snap: Snapshot) -> None:
        """Keep (or replace) the snapshot of an object in memory."""
        with self._lock:
            old = self._mem.pop(oid, None)
            if old is not None:
                self._mem_bytes -= old.nbytes
            self._mem[oid] = snap
            self._mem_bytes += snap.nbytes
            while len(self._mem) > 1 and (len(self._mem) > self.memory_count or self._mem_bytes > self.memory_bytes):
                _, gone = self._mem.popitem(last=False)
                self._mem_bytes -= gone.nbytes

    def persist(self, oid: str) -> None:
        """Write an object's snapshot to disk (its track ended); no-op without a directory."""
        if self.dir is None:
            return
        with self._lock:
            snap = self._mem.get(oid)
        if snap is None:
            return
        crop, full = self._paths(oid)
        try:
            for path, data in ((crop, snap.crop), (full, snap.full)):
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, path)
        except OSError as e:
            log.warning("snapshots: cannot write %s: %s", crop, e.strerror or e)
            return
        with self._lock:
            self._disk_bytes -= self._disk.pop(oid, 0)
            self._disk[oid] = snap.nbytes
            self._disk_bytes += snap.nbytes
            self.written += 1
            self._trim_disk()

    def _trim_disk(self) -> None:
        while self._disk and (len(self._disk) > self.max_count or self._disk_bytes > self.max_bytes):
            oid, n = self._disk.popitem(last=False)
            self._disk_bytes -= n
            self.removed += 1
            for p in self._paths(oid):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    log.warning("snapshots: cannot remove %s: %s", p, e.strerror or e)

    # ---- readers (any thread) --------------------------------------------------------------

    def has(self, oid: str) -> bool:
        with self._lock:
            return oid in self._mem or oid in self._disk

    def get(self, oid: str, crop: bool) -> bytes | None:
        """The crop or full-frame JPEG of an object; None when there is none."""
        if not ID.match(oid):
            return None
        with self._lock:
            snap = self._mem.get(oid)
            on_disk = oid in self._disk
        if snap is not None:
            return snap.crop if crop else snap.full
        if not on_disk:
            return None
        try:
            return self._paths(oid)[0 if crop else 1].read_bytes()
        except OSError:
            return None

    def usage(self) -> dict[str, int]:
        """How much is kept: counts and bytes in memory and on disk."""
        with self._lock:
            return {"memory_count": len(self._mem), "memory_bytes": self._mem_bytes,
                    "disk_count": len(self._disk), "disk_bytes": self._disk_bytes}
