"""The one road through the house: capture → detect → track → analytics → outputs.

`run` owns the lifecycle of one pipeline run: it serves the HTTP API first (so start-up shows in
/api/health), loads the model, opens the source, then per frame

    frame → Detector → Detections → tracker → Detections with ids → Analytics → FrameResult

and hands what the tracker made to one Worker whose consumers, the outputs (app/outputs/: built from
their registry in its order), all see the same objects. Capture decodes in its own thread; frames
are planned, prepared and run through the model ahead, in order (app/inflight.py); the result is made
(analytics, snapshots, settings changed on site: app/results.py) and handed to the outputs in the
worker's thread; tracking runs here, in order. `Run` holds no algorithm, makes
no result and builds no output itself: it opens, starts, loops and closes.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Callable

from app.capture import Source, build_source
from app.config import Config, check_labels, model_labels
from app.detection_switch import switched
from app.detector import Detector
from app.errors import VigilError
from app.expiry import Expiry
from app.health import Health
from app.inflight import InFlight
from app.identity import resolve_device_id
from app.outputs import OutputContext, build_outputs
from app.outputs.mqtt import publisher
from app.plugins import RunContext
from app.publish.state import RunState, open_state
from app.results import Ended, Results, Tracked, build_analytics, snapshot_keeper
from app.settings import Settings
from app.snapshots import SnapshotStore, open_store
from app.status import Parts, Status, Summary
from app.timing import StageTimer
from app.tracking import build_tracker
from app.tracking.shared import SharedTracker
from app.watchdog import Watchdog
from app.worker import Consumer, Worker

log = logging.getLogger(__name__)


class Run:
    """One run of the pipeline: what it opened, in the order it must be closed (serve, open,
    start_outputs, loop, close)."""

    def __init__(self, cfg: Config, stop: threading.Event | None, consumers: list[Consumer],
                 timer: StageTimer | None = None, settings: Settings | None = None) -> None:
        self.cfg = cfg  # as the run started: a change on site goes to self.results (app/results.py)
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
        self.expiry = Expiry(self.tracker, lambda events, wait: self.outputs.put(Ended(events, "lost"), timeout=wait))
        self.parts.tracker = self.tracker
        self.status: Status | None = None
        self.mqtt = self.api = None
        self.detector: Detector | None = None
        self.source: Source | None = None
        self.results: Results | None = None  # analytics and the snapshot keeper: makes each result (app/results.py)
        self.outputs: Worker | None = None
        self.inflight: InFlight | None = None
        self.state: RunState | None = None
        self.snapshots: SnapshotStore | None = None
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
        """Analytics, the restored state, every output in the registry's order (app/outputs/), then the
        step that makes each result for them (app/results.py); MQTT starts connecting."""
        cfg, source = self.cfg, self.source
        analytics = build_analytics(cfg, self.labels, self.run_id, self.status.device_id if self.status else "vigil",
                                    source.live, RunContext(self.timer, cancel=self.stop, acap=cfg.acap_runtime))
        orphans: list[dict] = []
        if cfg.state.file:  # locked, restored (file and journal), journaling; the open tracks of the last run
            self.state = open_state(cfg, analytics, wait_for_ack=self.mqtt is not None)
            orphans = self.state.orphans
        initial = analytics.current()
        ctx = OutputContext(cfg, self.labels, self.run_id, source.effective_fps, initial,
                            timer=self.timer, status=self.status, mqtt=self.mqtt, snapshots=self.snapshots,
                            state=self.state)
        consumers = build_outputs(cfg.outputs, ctx)
        keeper = snapshot_keeper(cfg, self.labels, self.snapshots, self.run_id, ctx.links)
        results = Results(cfg, analytics, self.timer, keeper, self.status, self.mqtt, self._publisher)
        self.summary.outputs = ctx.where
        self.outputs = results.worker = Worker(consumers + self.extra, self.timer, make=results.make)
        self.parts.outputs = self.outputs
        self.results = results  # a reset reaches it from now on
        self.settings.apply_live = lambda new: results.change(new, mqtt=False)
        self.settings.reconnect = lambda new: results.change(new, mqtt=True)
        if source.live:  # a file never stalls for want of frames: only a live run ends tracks without one
            self.expiry.start()
        if self.mqtt is not None:
            self.mqtt.start(initial)
        if orphans:  # the previous run died with these open: their end goes before anything of this run
            results.end_orphans(orphans)
            log.info("published end (reason restart) for %d tracks the previous run left open", len(orphans))

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
                               lambda tracked, events: outputs.put(Tracked(frame, tracked, events, plan)))
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

    def reset_counts(self, names: list[str] | None) -> dict[str, dict] | None:
        """Zero line counts (any thread; the API's and MQTT's reset); None while still starting."""
        return self.results.reset_counts(names) if self.results is not None else None

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
                self.outputs.put(Ended(events, "lost"))
            self.tracker.end_all(lambda events: self.outputs.put(Ended(events, "stop")))
            for part in [p for p in (self.outputs, self.results) if p is not None]:  # the keeper after the last result
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
