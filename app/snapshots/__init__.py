"""Object snapshots: each track's best view as JPEGs, bounded in memory and on disk (docs/api.md)."""
from __future__ import annotations

from pathlib import Path

from app.errors import ConfigError
from app.snapshots.config import SnapshotMqttConfig, SnapshotsConfig
from app.snapshots.store import Snapshot, SnapshotStore

__all__ = ["Snapshot", "SnapshotMqttConfig", "SnapshotStore", "SnapshotsConfig", "open_store"]


def open_store(cfg: SnapshotsConfig, state_file: str | None) -> SnapshotStore | None:
    """The store the config asks for (None when snapshots are off); its directory is snapshots.dir, else
    'snapshots' beside state.file, else none (memory only). A directory that cannot be made is a ConfigError."""
    if not cfg.enabled:
        return None
    where = cfg.dir or (str(Path(state_file).parent / "snapshots") if state_file else None)
    try:
        return SnapshotStore(where, cfg.max_count, cfg.max_bytes, cfg.memory_count, cfg.memory_bytes, cfg.quality)
    except OSError as e:
        raise ConfigError(f"snapshots.dir: cannot use {where}: {e.strerror or e}") from None
