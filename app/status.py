"""The running pipeline as the HTTP API, Prometheus and MQTT stats see it (thread-safe).

Status is one consumer of FrameResults (it keeps the latest frame, recent events and rates) and
the one place that assembles what the parts report: each running part hands over a frozen
snapshot of its counters (`Parts`), and health is `app.health.assess` of those snapshots.
The fps names are Frigate's for the same quantities (camera_fps, process_fps, skipped_fps,
detection_fps); the document itself is Vigil's own, flat, not Frigate's /api/stats shape.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from app import __version__
from app.capture import Source, SourceSnapshot
from app.detection_switch import detection_on
from app.events import Event
from app.regions import PlanCounts
from app.site import SiteFile
from app.health import Health, HealthInputs, MqttLink, assess
from app.stats import (
    ComponentDoc,
    EventTotals,
    Frames,
    HealthDoc,
    MqttOff,
    MqttStats,
    Ms,
    Objects,
    Queues,
    Stats,
    TrackerStatsDoc,
)
from app.timing import StageTimer
from app.tracking import Tracker, TrackerStats
from app.types import FrameResult
from app.watchdog import Watchdog, Watched
from app.worker import Worker

RATE_WINDOW = 5.0  # seconds over which the fps figures are measured
STAGES = ("capture", "plan", "detect", "preprocess", "invoke", "decode", "merge", "track", "analytics", "output")


def stage_ms(timer: StageTimer, stage: str) -> Ms:
    """p50/p95 in milliseconds of a timer stage; read safely while other threads add samples."""
    vals = timer.values(stage)  # a copy: the inference thread keeps adding
    if not len(vals):
        return Ms()
    p50, p95 = np.percentile(vals, (50, 95)) * 1000
    return Ms(p50=round(float(p50), 3), p95=round(float(p95), 3))


class MqttReport(Protocol):
    """What the status reads of the MQTT publisher (app.publish.mqtt, imported only when MQTT is on)."""

    def snapshot(self) -> MqttStats: ...

    def link(self) -> MqttLink: ...


@dataclass
class Parts:
    """The parts of one run whose snapshots the status reads. The pipeline creates it before anything
    starts (the two Health objects are written by the backend and the source themselves) and sets
    each part as it comes up."""

    backend: Health
    source_health: Health
    source: Source | None = None
    tracker: Tracker | None = None
    outputs: Worker | None = None
    mqtt: MqttReport | None = None
    model_runs_per_frame: int = 0  # views of a full look at a frame (the fixed plan, a regions sweep)
    plans: PlanCounts | None = None  # the detector's counts of model runs and frame coverage
    backend_type: str = ""  # model.backend.type, for vigil_build_info
    model_threads: int | None = None  # threads of each interpreter of an in-process model
    model_interpreters: int | None = None  # its interpreters: frames it runs at once
    source_opened: float | None = None  # monotonic time the source opened
    site: SiteFile | None = None  # its `error`: the saved site file could not be used (health shows why)
    api: Watched | None = None  # the API server (app.api.server.ApiServer)
    watchdog: Watchdog | None = None  # restarts the threads of mqtt, outputs and api

    def watched(self) -> list[Watched]:
        """The parts with threads of their own, for the watchdog."""
        return [p for p in (self.mqtt, self.outputs, self.api) if p is not None]


@dataclass
class Summary:
    frames: int = 0
    seconds: float = 0.0
    detections: int = 0
    tracks: int = 0  # confirmed tracks (ids issued); a count, so a 24/7 run keeps no per-id state
    dropped: int = 0
    skipped: int = 0
    outputs: list[str] = field(default_factory=list)
    stages: dict = field(default_factory=dict)
    model_runs_per_frame: int = 0  # views of a full look at a frame
    mean_runs_per_frame: float = 0.0  # model runs the planner made, per frame
    feed: dict = field(default_factory=dict)  # events and MQTT totals when the metadata feed ran
    ended_early: int = 0  # times the source (a damaged file) ended before its frame count; early_end says where
    early_end: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Status:
    """Latest frame and results, recent events, counters and rates of one pipeline run."""

    def __init__(self, labels: list[str], device_id: str, timer: StageTimer, parts: Parts, run_id: str,
                 history: int = 500, zones: dict | None = None, lines: dict | None = None) -> None:
        self.labels = labels
        self.device_id = device_id
        self.timer = timer
        self.parts = parts
        self.run_id = run_id
        self.zones_cfg = zones or {}
        self.lines_cfg = lines or {}
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._framed: FrameResult | None = None  # the newest result that came with a frame
        self._result: FrameResult | None = None  # the newest result (also a reset's, the end's)
        self._initial: FrameResult | None = None  # counts before the first frame
        self._events: deque[Event] = deque(maxlen=history)
        self.event_totals: Counter = Counter()
        self.processed = 0
        self._last_frame_at: float | None = None
        self._samples: deque = deque(maxlen=512)
        self.finished = False

    # ---- writer (the outputs worker thread) -----------------------------------------------

    def on_result(self, result: FrameResult) -> None:
        now = time.monotonic()
        with self._lock:
            if result.frame is not None:
                self._framed = result
            self._result = result
            self._events.extend(result.events)
            for e in result.events:
                self.event_totals[e.type.value] += 1
            if result.seq >= 0:
                self.processed += 1
                self._last_frame_at = now
                self._samples.append((now, *self._counters(self._source())))

    def set_initial(self, result: FrameResult) -> None:
        """The state before the first frame (counts restored from the state file)."""
        with self._lock:
            self._initial = result

    def close(self) -> None:
        self.finished = True

    # ---- snapshots of the parts ------------------------------------------------------------

    def _source(self) -> SourceSnapshot | None:
        src = self.parts.source
        return src.snapshot() if src is not None else None

    def _counters(self, src: SourceSnapshot | None) -> tuple[int, int, int, int, int]:
        read = src.read if src is not None else self.processed
        skipped, dropped = (src.skipped, src.dropped) if src is not None else (0, 0)
        plans = self.parts.plans
        runs = plans.runs if plans is not None else self.processed * self.parts.model_runs_per_frame
        return read, self.processed, skipped, dropped, runs

    def _rates(self, cur: tuple[int, ...]) -> dict[str, float]:
        now = time.monotonic()
        with self._lock:
            samples = list(self._samples)
        names = ("camera_fps", "process_fps", "skipped_fps", "dropped_fps", "detection_fps")
        base = next((s for s in samples if s[0] >= now - RATE_WINDOW), samples[-1] if samples else None)
        if base is None or now - base[0] < 0.2:
            if len(samples) < 2:
                return dict.fromkeys(names, 0.0)
            base, cur, now = samples[0], samples[-1][1:], samples[-1][0]  # the span of the samples we have
        dt = now - base[0]
        if dt <= 0:
            return dict.fromkeys(names, 0.0)
        return {n: round(max(c - b, 0) / dt, 2) for n, c, b in zip(names, cur, base[1:])}

    # ---- readers ------------------------------------------------------------------------

    def latest(self) -> FrameResult | None:
        """The newest result that came with a frame (its image, objects and counts)."""
        with self._lock:
            return self._framed

    def events(self, limit: int, after: int | None = None) -> list[dict]:
        """The most recent events, newest last; with `after`, the first `limit` events whose seq is greater.
        Each is the event's one shared JSON-ready dict (Event.doc): copy before changing it."""
        with self._lock:
            ev = list(self._events)
        if after is not None:
            # seq rises by one per event, so the first wanted one is found by arithmetic, not a scan
            start = max(0, after + 1 - ev[0].seq) if ev else 0
            ev = ev[start:start + limit]
        else:
            ev = ev[-limit:] if limit else []
        return [e.doc() for e in ev]

    def event_window(self) -> tuple[int, int]:
        """(oldest, newest) seq held for GET /api/events; (0, 0) before the first event."""
        with self._lock:
            if not self._events:
                return 0, 0
            return self._events[0].seq, self._events[-1].seq

    def _state(self) -> FrameResult | None:
        with self._lock:
            return self._result or self._initial

    def counts(self) -> dict:
        r = self._state()
        if r is None:
            return {"counts": {}, "zones": {}, "lines": {}}
        return {"counts": r.counts, "zones": r.zones, "lines": r.lines}

    def line_totals(self) -> dict[str, tuple[int, int]]:
        r = self._state()
        return dict(r.line_totals) if r is not None else {}

    def tracks(self) -> list[dict]:
        with self._lock:
            r = self._result
        return r.tracks.objects() if r is not None and r.tracks is not None else []

    def stats(self) -> Stats:
        """The /api/stats document (also published on …/stats)."""
        p, t = self.parts, self.timer
        src = self._source()
        cur = self._counters(src)
        rates = self._rates(cur)
        with self._lock:
            events = EventTotals(**{k: int(self.event_totals.get(k, 0)) for k in ("new", "update", "end")})
            r = self._result
        ts = p.tracker.stats if p.tracker is not None else TrackerStats()
        return Stats(
            device_id=self.device_id,
            version=__version__,
            timestamp=round(time.time(), 3),
            uptime=round(time.monotonic() - self.started, 1),
            **rates,
            model_run_ms=stage_ms(t, "invoke"),
            frame_detect_ms=stage_ms(t, "detect"),
            model_runs_per_frame=round(p.plans.runs_per_frame, 3) if p.plans is not None else p.model_runs_per_frame,
            frame_coverage=round(p.plans.mean_coverage, 3) if p.plans is not None else 0.0,
            stages={s: stage_ms(t, s) for s in STAGES if s in t.stages()},
            detection=detection_on(p.mqtt),
            model_threads=p.model_threads,
            model_interpreters=p.model_interpreters,
            frames=Frames(read=cur[0], processed=cur[1], skipped=cur[2], dropped=cur[3],
                          reconnects=src.reconnects if src is not None else 0),
            queues=Queues(capture=src.queued if src is not None else None,
                          outputs=p.outputs.snapshot().depth if p.outputs is not None else None),
            tracker=TrackerStatsDoc(active_tracks=ts.live_tracks, tentative_tracks=ts.tentative_tracks,
                                    tracks_confirmed=ts.tracks_confirmed, tracks_ended=ts.tracks_ended,
                                    update_ms=stage_ms(t, "track")),
            objects=Objects(present=int(r.counts.get("all", 0)) if r else 0, events=events),
            mqtt=p.mqtt.snapshot() if p.mqtt is not None else MqttOff(),
        )

    def health_inputs(self) -> HealthInputs:
        """Every part's state copied now, for `assess`."""
        p = self.parts
        now = time.monotonic()
        src = self._source()
        with self._lock:
            last, processed = self._last_frame_at, self.processed
        opened = p.source_opened if p.source_opened is not None else self.started
        return HealthInputs(
            backend=p.backend.snapshot(), source=p.source_health.snapshot(), source_open=src is not None,
            since_open=now - opened, since_frame=None if last is None else now - last, processed=processed,
            read=src.read if src is not None else 0,
            frame_period=p.tracker.stats.frame_period if p.tracker is not None else 0.0,
            detect_p95_ms=stage_ms(self.timer, "detect").p95, finished=self.finished,
            mqtt=p.mqtt.link() if p.mqtt is not None else None, config_error=p.site.error if p.site is not None else None,
            threads=tuple(t for t in (w.thread_problem() for w in p.watched() if w is not p.mqtt) if t),
            restarted=tuple(f"{r.part}: restarted {r.what} {now - r.at:.0f} s ago ({r.why})"
                            for r in (p.watchdog.recent(now) if p.watchdog is not None else ())),
        )

    def health(self) -> HealthDoc:
        """ok / degraded / failing per component (source, backend, mqtt) and overall."""
        level, comps = assess(self.health_inputs(), time.time())
        return HealthDoc(status=level, components={k: ComponentDoc(status=c.status, detail=c.detail)
                                                   for k, c in comps.items()})
