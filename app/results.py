"""Making each FrameResult, on the outputs thread, before any output sees it.

The pipeline thread hands the outputs' Worker what it has (app/pipeline.py): a tracked frame
(`Tracked`), tracks ended without a frame (`Ended`), a result made elsewhere (a line reset, the
previous run's orphans), or a settings change (`Change`). `Results.make` is the Worker's `make`: it
turns each into the one frozen FrameResult every output gets, in order. Analytics runs here because
nothing upstream waits for it (it overlaps the next frame's inference); the snapshot keeper runs here
so that `has_snapshot` is decided before any output reads it; a settings change is applied here,
between two results, so no output ever sees half of it.

`Results` owns analytics, the snapshot keeper and the configuration the run now has (changed on site
with `change`); `Run` only opens, starts, loops and closes.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from app.analytics import Analytics
from app.analytics.rules import build_rules
from app.config import Config
from app.errors import ConfigError
from app.plugins import RunContext
from app.regions.planner import Plan
from app.timing import StageTimer
from app.tracking import TrackEvents
from app.types import Detections, Frame, FrameResult

if TYPE_CHECKING:
    from app.outputs import Links
    from app.publish.live import LivePublisher
    from app.snapshots import SnapshotStore
    from app.snapshots.consumer import Snapshots
    from app.status import Status
    from app.worker import Worker


@dataclass(slots=True)
class Tracked:
    """A frame on its way to analytics: the tracker's output and events, the plan it was looked at with."""

    frame: Frame
    tracked: Detections
    events: TrackEvents
    plan: Plan


@dataclass(slots=True)
class Ended:
    """Tracks the tracker ended without a frame: every track at the run's end (reason stop), or those
    that expired while a live source delivered nothing (lost)."""

    events: TrackEvents
    reason: str


@dataclass(slots=True)
class Change:
    """Settings changed on site, on their way to the outputs thread; `done` once applied."""

    cfg: Config
    mqtt: bool
    done: threading.Event = field(default_factory=threading.Event)
    kept: list[str] = field(default_factory=list)


def build_analytics(cfg: Config, labels: list[str], run_id: str, device_id: str, live: bool,
                    ctx: RunContext) -> Analytics:
    """The run's analytics, with its zone and line rules (app/analytics/rules.py)."""
    # file timestamps are positions in the file: anchor them to the wall clock at start
    offset = 0.0 if live else time.time()
    return Analytics(
        labels, cfg.zones, cfg.lines, cfg.filters, cfg.stationary, cfg.events,
        epoch_offset=offset, run_id=run_id, device_id=device_id,
        keep_tracks_view=cfg.api.enabled, count_labels=cfg.decoder.classes or None, groups=cfg.model.groups,
        rules=build_rules(cfg.rules, ctx),
    )


def snapshot_keeper(cfg: Config, labels: list[str], store: SnapshotStore | None, run_id: str,
                    links: Links) -> Snapshots | None:
    """Snapshots (app/snapshots/): not an output but part of making each result, so that every output
    gets has_snapshot already decided. It tells MQTT of a new image through the outputs' links."""
    if store is None:
        return None
    from app.snapshots.consumer import Snapshots  # cv2's encoder: only when snapshots are on

    # an image for MQTT is made only when the run publishes there and snapshots.mqtt asks
    ready = links.snapshot_ready if cfg.mqtt.enabled and cfg.snapshots.mqtt.enabled else None
    return Snapshots(cfg.snapshots, labels, store, run_id, ready, links.snapshots_on)


class Results:
    """The step that makes every FrameResult (`make`, on the outputs thread) and applies settings
    changed on site between two of them (`change`, from any thread)."""

    def __init__(self, cfg: Config, analytics: Analytics, timer: StageTimer, keeper: Snapshots | None = None,
                 status: Status | None = None, mqtt: LivePublisher | None = None,
                 publisher: Callable[[Config], Any] | None = None) -> None:
        self.cfg = cfg  # the configuration the run has now: a change replaces it
        self.analytics = analytics
        self.timer = timer
        self.keeper = keeper
        self.status = status
        self.mqtt = mqtt
        self.publisher = publisher  # a new MQTT publisher for a config, when geometry or mqtt change
        self.worker: Worker | None = None  # the outputs' worker whose make is ours: a change travels its queue

    def make(self, item: Tracked | Ended | Change | FrameResult) -> FrameResult:
        """The result every output gets: made, its views kept, has_snapshot decided (app/snapshots), frozen."""
        result = self._result_of(item)
        return self.keeper.take(result) if self.keeper is not None else result

    def _result_of(self, item: Tracked | Ended | Change | FrameResult) -> FrameResult:
        """In order: a tracked frame's FrameResult; the end of the run's tracks, or of tracks that expired
        without a frame; the state after a settings change; a result made elsewhere as it is."""
        if isinstance(item, Tracked):
            with self.timer.measure("analytics"):
                result = self.analytics.update(item.frame, item.tracked, item.events)
            return replace(result, overlay=item.plan.overlay())  # for latest.jpg's regions and motion overlays
        if isinstance(item, Ended):
            return self.analytics.finish(item.events, reason=item.reason)
        if isinstance(item, Change):
            return self._apply(item)
        return item

    def change(self, cfg: Config, mqtt: bool) -> list[str]:
        """Apply settings changed on site on the outputs thread between two results (any thread; waits);
        `mqtt`: its connection changed too. The lines that kept their counts."""
        change = Change(cfg, mqtt)
        self.worker.put(change, wait=10.0)
        if not change.done.wait(10.0):
            raise ConfigError("the change was saved but not applied within 10 s: the outputs are stuck")
        return change.kept

    def _apply(self, change: Change) -> FrameResult:
        old, new = self.cfg, change.cfg
        change.kept = self.analytics.reconfigure(new.zones, new.lines, new.filters, new.stationary, new.events)
        self.cfg = new
        if self.status is not None:
            self.status.zones_cfg, self.status.lines_cfg = new.zones, new.lines
        result = self.analytics.current()
        geometry = (old.zones, old.lines) != (new.zones, new.lines)
        if self.mqtt is not None and (change.mqtt or geometry):  # a new publisher clears what is gone (sweep)
            self.mqtt.replace(self.publisher(new), result)
        change.done.set()
        return result

    def reset_counts(self, names: list[str] | None) -> dict[str, dict]:
        """Zero line counts (any thread). The new state travels the output path like any result, so the
        status, MQTT and the state file all see it."""
        lines = self.analytics.reset_counts(names)
        result = replace(self.analytics.current(), lines_reset=True)
        self.worker.put(result, wait=5.0)  # GET /api/counts right after the reset shows it
        return lines

    def end_orphans(self, orphans: list[dict]) -> None:
        """The end (reason restart) of the tracks the previous run left open, before anything of this run."""
        self.worker.put(replace(self.analytics.current(), events=self.analytics.end_orphans(orphans)))

    def close(self) -> None:
        """After the last result: the snapshot keeper writes what it holds."""
        if self.keeper is not None:
            self.keeper.close()
