"""One Vigil per state file: an advisory lock beside it, so a second instance is refused instead of
both restoring the same counts and overwriting each other's."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from app.errors import ConfigError


def lock_path(state_file: str | Path) -> Path:
    """Where the lock of a state file is: beside it, e.g. /data/state.json -> /data/state.lock."""
    p = Path(state_file)
    return p.with_name(f"{p.stem}.lock")


class StateLock:
    """An exclusive flock(2) on `<state>.lock`, holding this process's pid, until `release()` (or the
    process ends, however it ends: the kernel drops the lock, so a crash never leaves it stuck)."""

    def __init__(self, state_file: str | Path) -> None:
        self.state_file = Path(state_file)
        self.path = lock_path(state_file)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise ConfigError(f"state.file: cannot write {self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"state.file: {self.state_file} is in use by another Vigil (pid {other}); "
                              "give each instance its own state.file") from None
        except OSError as e:  # a file system without locks: say so rather than share silently
            os.close(fd)
            raise ConfigError(f"state.file: cannot lock {self.path}: {e.strerror or e}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        """Let another instance have the state (the file stays: removing it would race a starting one)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
