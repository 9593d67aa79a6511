"""Start-up and connection state of one pipeline part (model, source), shown in /api/health."""
from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Health:
    """What a part is doing now: written by the part (or the pipeline), read by the status."""

    state: str = "starting"  # starting | connecting | loading | ready | retrying | failed | closed
    retries: int = 0  # transient failures retried since start
    last_error: str = ""
    since: float = field(default_factory=time.time)  # wall clock of the last state change

    def set(self, state: str, error: str = "") -> None:
        if state != self.state:
            self.since = time.time()
        self.state = state
        if error:
            self.last_error = error

    def as_dict(self) -> dict:
        return {"state": self.state, "retries": self.retries, "last_error": self.last_error, "since": self.since}
