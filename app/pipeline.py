"""The one road through the house: capture → detect → track → analytics → outputs.

`run` owns the lifecycle of one pipeline run: it serves the HTTP API first (so start-up shows in
/api/health), loads the model, opens the source, then per frame

    frame → Detector → Detections → tracker → Detections with ids → Analytics → FrameResult

and hands the one FrameResult to one Worker whose consumers, the outputs (app/outputs/: built from
their registry in its order), all see the same objects. Capture decodes in its own thread; analytics
and the outputs run in the worker's thread; everything else runs here, in order. `Run` holds no
algorithm and builds no output itself: it opens, starts and closes.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from app.analytics import Analytics
from app.analytics.rules import build_rules
from app.capture import Source, build_source
from app.config import Config, check_labels, model_labels
from app.detection_switch import switched
from app.detector import Detector
from app.errors import ConfigError, VigilError
from app.expiry import Expiry
from app.health import Health
from app.inflight import InFlight
from app.identity import resolve_device_id
from app.outputs import Links, OutputContext, build_outputs
from app.outputs.mqtt import publisher
from app.plugins import RunContext
from app.publish.state import RunState, open_state
from app.regions.planner import Plan
from app.settings import Settings
from app.snapshots import SnapshotStore, open_store
from app.status import Parts, Status, Summary
from app.timing import StageTimer
from app.tracking import TrackEvents, build_tracker
from app.tracking.shared import SharedTracker
from app.types import Detections, Frame, FrameResult
from app.watchdog import Watchdog
from app.worker import Consumer, Worker

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Tracked:
    """A frame on its way to analytics: the tracker's output and events, the plan it was looked at with."""

    frame: Frame
    tracked: Detections
    events: TrackEvents
    plan: Plan


@dataclass(slots=True)
class _Ended:
    """Tracks the tracker ended without a frame: every track at the run's end (reason stop), or those
    that expired while a live source delivered nothing (lost)."""

    events: TrackEvents
    reason: str


@dataclass(slots=True)
class _Change:
    """Settings changed on site, on their way to the outputs thread; `done` once applied."""

    cfg: Config
    mqtt: bool
    done: threading.Event = field(default_factory=threading.Event)
    kept: list[str] = field(default_factory=list)


class Run:
    """One run of the pipeline: what it opened, in the order it must be closed (serve, open,
    start_outputs, loop, close)."""

    def __init__(self, cfg: Config, stop: threading.Event | None, consumers: list[Consumer],
                 timer: StageTimer | None = None, settings: Settings | None = None) -> None:
        self.cfg = cfg
        self.settings = settings or Settings(cfg)
        self.stop = stop or threading.Event()
        self.extra = consumers
        self.timer = timer or StageTimer()
        self.model_labels = model_labels(cfg)  # labels, groups, merge ids: one description for detector and tracker
        self.labels = self.model_labels.names
        check_labels(cfg, self.labels)
        self.run_id = secrets.token_hex(3)  # in every event id and event; new per start
        self.parts = Parts(backend=Health(), source_health=Health(), backend_type=cfg.model.backend.type,
                           site=self.settings.site)
        self.tracker = SharedTracker(build_tracker(cfg.tracker, self.model_labels.merge_ids), self.timer)
        self.expiry = Expiry(self.tracker, lambda events, wait: self.outputs.put(_Ended(events, "lost"), timeout=wait))
        self.parts.tracker = self.tracker
        self.status: Status | None = None
        self.mqtt = self.api = None
        self.detector: Detector | None = None
        self.source: Source | None = None
        self.analytics: Analytics | None = None
        self.outputs: Worker | None = None
        self.inflight: InFlight | None = None
        self.state: RunState | None = None
        self.snapshots: SnapshotStore | None = None
        self.keeper = None  # app.snapshots.consumer.Snapshots when snapshots are on
        self.summary = Summary()

    # ---- start ------------------------------------------------------------------------

    def serve(self) -> None:
        """Status, MQTT publisher (not yet connecting) and the HTTP API, before the model loads, so
        that start-up (minutes for a first DLPU compile) shows in /api/health."""
        cfg = self.cfg
        self.snapshots = open_store(cfg.snapshots, cfg.state.file)
        if not (cfg.mqtt.enabled or cfg.api.enabled):
            return
        device_id = resolve_device_id(cfg)
        self.status = Status(self.labels, device_id, self.timer, self.parts, self.run_id,
                             cfg.events.history, cfg.zones, cfg.lines)
        if cfg.mqtt.enabled:
            from app.publish.live import LivePublisher

            # made now (bad TLS files fail here) so /api/health and /api/stats show it while starting up
            self.mqtt = LivePublisher(self._publisher(cfg), cfg.state.file)
            self.mqtt.on_reset = self.reset_counts
            self.parts.mqtt = self.mqtt
            self.settings.announce = self.mqtt.announce
        if cfg.api.enabled:
            from app.api.server import ApiServer, create_app  # fastapi/uvicorn: only when the API is on

            app = create_app(self.status, cfg.api, self.settings, type(cfg).model_json_schema(),
                             reset=self.reset_counts, snapshots=self.snapshots)
            # a busy port fails here, before any thread
            self.api = self.parts.api = ApiServer(app, cfg.api.host, cfg.api.port, cfg.api.admin_port)
            self.api.start()
        self.parts.watchdog = Watchdog(self.parts.watched)  # restarts a thread of theirs that died
        self.parts.watchdog.start()

    def _publisher(self, cfg: Config):
        """An MQTT publisher for `cfg` (not started): at start, and when settings change on site."""
        return publisher(cfg, self.status, self.labels, snapshots=self.snapshots is not None)

    def open(self, detector: Detector | None) -> None:
        """The model first (a bad one fails before the source opens), then the source."""
        detector = detector or Detector.load(self.cfg, self.timer, health=self.parts.backend, cancel=self.stop,
                                             labels=self.model_labels)
        self.detector = switched(detector, self.mqtt)  # Home Assistant's Detection switch (app/detection_switch.py)
        self.source = build_source(self.cfg.source,
                                   RunContext(self.timer, self.parts.source_health, self.stop, self.cfg.acap_runtime))
        self.parts.source_opened = time.monotonic()
        self.parts.source = self.source
        self.parts.model_runs_per_frame = len(self.detector.views(self.source.size))
        self.parts.plans = self.detector.plans
        self.parts.model_threads = getattr(self.detector.model, "threads", None)  # None: a remote backend
        self.parts.model_interpreters = getattr(self.detector.model, "interpreters", None)
        self.inflight = InFlight(self.source, self.detector, self.tracker, self.timer)

    def start_outputs(self) -> None:
        """Analytics, the restored state, then every output in the registry's order (app/outputs/);
        MQTT starts connecting."""
        cfg, source = self.cfg, self.source
        # file timestamps are positions in the file: anchor them to the wall clock at start
        offset = 0.0 if source.live else time.time()
        self.analytics = analytics = Analytics(
            self.labels, cfg.zones, cfg.lines, cfg.filters, cfg.stationary, cfg.events,
            epoch_offset=offset, run_id=self.run_id, device_id=self.status.device_id if self.status else "vigil",
            keep_tracks_view=cfg.api.enabled, count_labels=cfg.decoder.classes or None, groups=cfg.model.groups,
            rules=build_rules(cfg.rules, RunContext(self.timer, cancel=self.stop, acap=cfg.acap_runtime)),
        )
        orphans: list[dict] = []
        if cfg.state.file:  # locked, restored (file and journal), journaling; the open tracks of the last run
            self.state = open_state(cfg, analytics, wait_for_ack=self.mqtt is not None)
            orphans = self.state.orphans
        initial = analytics.current()
        ctx = OutputContext(cfg, self.labels, self.run_id, source.effective_fps, initial,
                            timer=self.timer, status=self.status, mqtt=self.mqtt, snapshots=self.snapshots,
                            state=self.state)
        consumers = build_outputs(cfg.outputs, ctx)
        self.keeper = self._snapshot_keeper(ctx.links)  # part of making each result: has_snapshot is decided there
        self.summary.outputs = ctx.where
        self.settings.apply_live = lambda new: self._change(_Change(new, mqtt=False))
        self.settings.reconnect = lambda new: self._change(_Change(new, mqtt=True))
        self.outputs = Worker(consumers + self.extra, self.timer, make=self._analyse)
        self.parts.outputs = self.outputs
        if source.live:  # a file never stalls for want of frames: only a live run ends tracks without one
            self.expiry.start()
        if self.mqtt is not None:
            self.mqtt.start(initial)
        if orphans:  # the previous run died with these open: their end goes before anything of this run
            self.outputs.put(replace(analytics.current(), events=analytics.end_orphans(orphans)))
            log.info("published end (reason restart) for %d tracks the previous run left open", len(orphans))

    def _snapshot_keeper(self, links: Links):
        """Snapshots (app/snapshots/): not an output but part of making each result, so that every output
        gets has_snapshot already decided. It tells MQTT of a new image through the outputs' links."""
        if self.snapshots is None:
            return None
        from app.snapshots.consumer import Snapshots  # cv2's encoder: only when snapshots are on

        c = self.cfg  # an image for MQTT is made only when the run publishes there and snapshots.mqtt asks
        ready = links.snapshot_ready if c.mqtt.enabled and c.snapshots.mqtt.enabled else None
        return Snapshots(c.snapshots, self.labels, self.snapshots, self.run_id, ready, links.snapshots_on)

    # ---- frames -----------------------------------------------------------------------

    def loop(self, max_frames: int | None, progress: Callable[[int, int | None], None] | None) -> None:
        tracker, outputs = self.tracker, self.outputs
        s = self.summary
        watch_outputs = bool(outputs.consumers)  # with no consumer at all the run still goes to its end
        t0 = time.perf_counter()
        try:
            for frame, plan, dets in self.inflight.frames(max_frames):
                # analytics on the outputs thread; handed on with the tracker's lock held (events in order)
                tracker.update(dets, frame.timestamp,
                               lambda tracked, events: outputs.put(_Tracked(frame, tracked, events, plan)))
                s.frames += 1
                s.detections += len(dets) - len(plan.carry)
                if progress:
                    progress(s.frames, self.source.total)
                if (max_frames and s.frames >= max_frames) or self.stop.is_set():
                    break
                if watch_outputs and outputs.ended.is_set():
                    log.info("every output has ended; stopping")
                    break
        finally:  # also when a stop ends the waiting for a server with an error
            s.seconds = time.perf_counter() - t0

    def _analyse(self, item: "_Tracked | _Ended | _Change | FrameResult") -> FrameResult:
        """The result every output gets: made, its views kept, has_snapshot decided (app/snapshots), frozen."""
        result = self._result_of(item)
        return self.keeper.take(result) if self.keeper is not None else result

    def _result_of(self, item: "_Tracked | _Ended | _Change | FrameResult") -> FrameResult:
        """On the outputs thread, in order: a tracked frame's FrameResult (analytics is pure array work
        nothing upstream waits for, so it overlaps the next frame's inference); the end of the run's, or of
        tracks that expired without a frame; a result made elsewhere (a reset, the previous run's orphans)
        as it is."""
        if isinstance(item, _Tracked):
            with self.timer.measure("analytics"):
                result = self.analytics.update(item.frame, item.tracked, item.events)
            return replace(result, overlay=item.plan.overlay())  # for latest.jpg's regions and motion overlays
        if isinstance(item, _Ended):
            return self.analytics.finish(item.events, reason=item.reason)
        if isinstance(item, _Change):
            return self._apply(item)
        return item

    def _change(self, change: "_Change") -> list[str]:
        """Settings changed on site, applied on the outputs thread between two results (any thread; waits)."""
        if self.outputs is None:  # still starting: what is built next is built from the new settings
            self.cfg = change.cfg
            return []
        self.outputs.put(change, wait=10.0)
        if not change.done.wait(10.0):
            raise ConfigError("the change was saved but not applied within 10 s: the outputs are stuck")
        return change.kept

    def _apply(self, change: "_Change") -> FrameResult:
        old, new = self.cfg, change.cfg
        change.kept = self.analytics.reconfigure(new.zones, new.lines, new.filters, new.stationary, new.events)
        self.cfg = new
        if self.status is not None:
            self.status.zones_cfg, self.status.lines_cfg = new.zones, new.lines
        result = self.analytics.current()
        geometry = (old.zones, old.lines) != (new.zones, new.lines)
        if self.mqtt is not None and (change.mqtt or geometry):  # a new publisher clears what is gone (sweep)
            self.mqtt.replace(self._publisher(new), result)
        change.done.set()
        return result

    def reset_counts(self, names: list[str] | None) -> dict[str, dict] | None:
        """Zero line counts (any thread; the API's reset); None while still starting. The new state
        travels the output path like any result, so the status, MQTT and the state file all see it."""
        if self.analytics is None or self.outputs is None:
            return None
        lines = self.analytics.reset_counts(names)
        result = replace(self.analytics.current(), lines_reset=True)
        self.outputs.put(result, wait=5.0)  # GET /api/counts right after the reset shows it
        return lines

    # ---- end --------------------------------------------------------------------------

    def close(self, owns_detector: bool) -> None:
        """End every track (`end` events), hand over the last result, close every output (MQTT
        flushes and says offline), stop the API, release source and model."""
        if self.parts.watchdog is not None:
            self.parts.watchdog.close()
        if self.source is not None:
            self.source.close()
        if self.inflight is not None:
            self.inflight.close()
        left = self.expiry.close()  # tracks it ended but could not hand on to full outputs
        error: BaseException | None = None
        if self.outputs is not None:
            for events in left:
                self.outputs.put(_Ended(events, "lost"))
            self.tracker.end_all(lambda events: self.outputs.put(_Ended(events, "stop")))
            for part in [p for p in (self.outputs, self.keeper) if p is not None]:  # the keeper after the last result
                try:
                    part.close()
                except BaseException as e:  # noqa: BLE001 - raised after the rest is closed
                    error = error or e
        if self.state is not None:
            self.state.release()  # the state is saved: another instance may have it now
        if self.status is not None:
            self.summary.feed = {"events": dict(self.status.event_totals)}
            if self.mqtt is not None:
                self.summary.feed["mqtt"] = self.mqtt.snapshot().model_dump()
            if self.api is not None:
                self.summary.feed["api"] = self.api.url
        if self.api is not None:
            self.api.close()
        if self.detector is not None and owns_detector:
            self.detector.model.close()
        s = self.summary
        if self.source is not None:
            snap = self.source.snapshot()
            s.dropped, s.skipped, s.ended_early, s.early_end = (snap.dropped, snap.skipped, snap.ended_early,
                                                                snap.early_end)
        s.stages = self.timer.summary()
        s.tracks = self.tracker.stats.tracks_confirmed
        s.model_runs_per_frame = self.parts.model_runs_per_frame
        s.mean_runs_per_frame = self.detector.plans.runs_per_frame if self.detector is not None else 0.0
        if error is not None:
            raise error


def run(
    cfg: Config,
    max_frames: int | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    consumers: list[Consumer] | None = None,
    detector: Detector | None = None,
    settings: Settings | None = None,
) -> Summary:
    """Process the configured source until it ends, `max_frames`, `stop` is set or every output has
    ended. `consumers` get every FrameResult after the configured outputs; a `detector` passed in
    is used instead of loading the model again (and is left open)."""
    # a detector passed in measures its stages on its own timer: the run reports on that one
    r = Run(cfg, stop, list(consumers or []), detector.timer if detector is not None else None, settings)
    try:
        r.serve()
        try:
            r.open(detector)
        except VigilError:
            if not r.stop.is_set():
                raise
            log.info("stopped while starting up")  # told to stop while waiting for the server
        else:
            r.start_outputs()
            try:
                r.loop(max_frames, progress)
            except VigilError as e:
                if not r.stop.is_set():
                    raise
                # SIGTERM while the server was away or stalled: a normal stop (end events, MQTT offline)
                log.info("stopped while waiting: %s", e)
    except BaseException:
        try:
            r.close(owns_detector=detector is None)
        except Exception as e:  # noqa: BLE001 - the first error is the one to report
            log.warning("while stopping after an error: %s", e)
        raise
    r.close(owns_detector=detector is None)
    return r.summary
