"""The running pipeline as the HTTP API, Prometheus and MQTT stats see it (thread-safe).

The publish worker feeds `on_result` once per frame; readers on other threads call `stats`,
`health`, `counts`, `tracks`, `events` and `latest`. Field names follow Frigate's /api/stats
where Frigate has one (camera_fps, process_fps, skipped_fps, detection_fps, inference_speed).
"""
from __future__ import annotations

import copy
import math
import threading
import time
from collections import Counter, deque
from typing import Any

import numpy as np

from app import __version__
from app.analytics import FrameResult
from app.health import Health
from app.types import Detections, Frame

RATE_WINDOW = 5.0  # seconds over which the fps figures are measured
STAGES = ("capture", "detect", "preprocess", "invoke", "decode", "merge", "track", "analytics", "publish", "sink")


def _ms(timer, stage: str) -> dict[str, float | None]:
    """p50/p95 in milliseconds of a timer stage; read safely while other threads add samples."""
    q = timer.samples.get(stage)
    vals = q.values() if q else ()  # a copy: the inference thread keeps adding
    if not len(vals):
        return {"p50": None, "p95": None}
    p50, p95 = np.percentile(vals, (50, 95)) * 1000
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}


class Status:
    """Latest frame and results, recent events, counters and rates of one pipeline run."""

    def __init__(self, labels: list[str], device_id: str, timer, history: int = 500,
                 zones: dict | None = None, lines: dict | None = None) -> None:
        self.labels = labels
        self.device_id = device_id
        self.timer = timer
        self.zones_cfg = zones or {}
        self.lines_cfg = lines or {}
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.run_id: str | None = None
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._tracked: Detections | None = None
        self._result: FrameResult | None = None
        self._events: deque[dict] = deque(maxlen=history)
        self.event_totals: Counter = Counter()
        self.processed = 0
        self.objects_seen = 0
        self._last_frame_at: float | None = None
        self._samples: deque = deque(maxlen=512)
        # set by the pipeline side once known
        self.source = None
        self.sink_worker = None
        self.publish_worker = None
        self.mqtt = None
        self.model_runs_per_frame = 1
        self.tracker_stats = None  # a copy refreshed by the inference thread
        self.initial: FrameResult | None = None  # counts before the first frame
        self.finished = False
        self.backend_health: Health | None = None  # start-up and connection state of the model and source
        self.source_health: Health | None = None
        self._source_since: float | None = None

    def set_source(self, source) -> None:
        """The open source; frame ages count from now, not from a start-up that loaded a model for minutes."""
        self._source_since = time.monotonic()
        self.source = source

    # ---- writer (publish worker thread) ----------------------------------------------------

    def on_result(self, frame: Frame, tracked: Detections, result: FrameResult) -> None:
        now = time.monotonic()
        with self._lock:
            if result.seq >= 0:  # the end-of-run result has no frame of its own
                self._frame, self._tracked = frame, tracked
            self._result = result
            self._events.extend(result.events)
            for e in result.events:
                self.event_totals[e["type"]] += 1
            if result.seq >= 0:
                self.processed += 1
                self.objects_seen += len(result.objects)
                self._last_frame_at = now
                self._samples.append((now, *self._counters()))

    def set_lines(self, lines: dict[str, dict]) -> None:
        """Line states changed outside a frame (a reset)."""
        with self._lock:
            r = self._result or self.initial
            if r is not None:
                r = copy.copy(r)
                r.lines = lines
                if self._result is not None:
                    self._result = r
                else:
                    self.initial = r

    # ---- readers ------------------------------------------------------------------------

    def _counters(self) -> tuple[int, int, int, int, int]:
        src = self.source
        read = int(getattr(src, "read", self.processed) or 0)
        return (read, self.processed, int(getattr(src, "skipped", 0) or 0), int(getattr(src, "dropped", 0) or 0),
                self.processed * self.model_runs_per_frame)

    def _rates(self) -> dict[str, float]:
        now = time.monotonic()
        with self._lock:
            cur = self._counters()
            samples = list(self._samples)
        names = ("camera_fps", "process_fps", "skipped_fps", "dropped_fps", "detection_fps")
        base = None
        for s in samples:
            if s[0] >= now - RATE_WINDOW:
                base = s
                break
        if base is None and samples:
            base = samples[-1]
        if base is None or now - base[0] < 0.2:
            if len(samples) >= 2:  # fall back to the span of the samples we have
                base, cur, now = samples[0], samples[-1][1:], samples[-1][0]
            else:
                return dict.fromkeys(names, 0.0)
        dt = now - base[0]
        if dt <= 0:
            return dict.fromkeys(names, 0.0)
        return {n: round((c - b) / dt, 2) for n, c, b in zip(names, cur, base[1:])}

    def latest(self) -> tuple[Frame | None, Detections | None, FrameResult | None]:
        with self._lock:
            return self._frame, self._tracked, self._result

    def events(self, limit: int, after: int | None = None) -> list[dict]:
        """The most recent events, newest last; with `after`, the first `limit` events whose seq is greater."""
        with self._lock:
            ev = list(self._events)
        if after is not None:
            # seq rises by one per event, so the first wanted one is found by arithmetic, not a scan
            start = max(0, after + 1 - ev[0]["seq"]) if ev else 0
            return ev[start:start + limit]
        return ev[-limit:] if limit else []

    def event_window(self) -> tuple[int, int]:
        """(oldest, newest) seq held for GET /api/events; (0, 0) before the first event."""
        with self._lock:
            if not self._events:
                return 0, 0
            return self._events[0]["seq"], self._events[-1]["seq"]

    def counts(self) -> dict:
        with self._lock:
            r = self._result or self.initial
        if r is None:
            return {"counts": {}, "zones": {}, "lines": {}}
        return {"counts": r.counts, "zones": r.zones, "lines": r.lines}

    def line_totals(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            r = self._result or self.initial
        return dict(r.line_totals) if r is not None else {}

    def tracks(self) -> list[dict]:
        with self._lock:
            r = self._result
        return r.tracks.objects() if r is not None and r.tracks is not None else []

    def stats(self) -> dict[str, Any]:
        """The /api/stats document (also published on …/stats)."""
        rates = self._rates()
        t = self.timer
        with self._lock:
            read, processed, skipped, dropped, runs = self._counters()
            events = {k: int(self.event_totals.get(k, 0)) for k in ("new", "update", "end")}
            r = self._result
        ts = self.tracker_stats
        mqtt = self.mqtt.stats() if self.mqtt is not None else {"enabled": False}
        stages = {s: _ms(t, s) for s in STAGES if s in t.samples}
        return {
            "device_id": self.device_id,
            "version": __version__,
            "timestamp": round(time.time(), 3),
            "uptime": round(time.monotonic() - self.started, 1),
            **rates,
            "inference_speed": _ms(t, "invoke"),
            "frame_inference_ms": _ms(t, "detect"),
            "model_runs_per_frame": self.model_runs_per_frame,
            "stages": stages,
            "frames": {"read": read, "processed": processed, "skipped": skipped, "dropped": dropped,
                       "reconnects": int(getattr(self.source, "reconnects", 0) or 0)},
            "queues": {
                "capture": _depth(self.source),
                "sink": _depth(self.sink_worker),
                "publish": _depth(self.publish_worker),
            },
            "tracker": {
                "active_tracks": int(ts.live_tracks) if ts else 0,
                "tentative_tracks": int(ts.tentative_tracks) if ts else 0,
                "tracks_confirmed": int(ts.tracks_confirmed) if ts else 0,
                "tracks_ended": int(ts.tracks_ended) if ts else 0,
                "update_ms": _ms(t, "track"),
            },
            "objects": {"present": int(r.counts.get("all", 0)) if r else 0, "events": events},
            "mqtt": mqtt,
        }

    def health(self) -> dict[str, Any]:
        """ok / degraded / failing per component (source, backend, mqtt) and overall."""
        now = time.monotonic()
        with self._lock:
            last = self._last_frame_at
            processed = self.processed
        period = getattr(self.tracker_stats, "frame_period", 0.1) or 0.1
        stall = max(5.0, 10 * period)
        comps = {"backend": _part(self.backend_health, "model"), "source": _part(self.source_health, "source")}
        if self.source is None and (self.source_health is None or self.source_health.state == "starting"):
            comps["source"] = {"status": "degraded", "detail": "not open yet (the model loads first)"}
        elif comps["source"] is None:
            age = now - (last if last is not None else (self._source_since or self.started))
            if self.finished:
                comps["source"] = {"status": "degraded", "detail": "the source has ended"}
            elif age <= stall:
                comps["source"] = {"status": "ok", "detail": f"last frame {age:.1f} s ago"}
            elif age <= 12 * stall:
                what = "no frame yet" if last is None else f"no frame for {age:.0f} s"
                comps["source"] = {"status": "degraded", "detail": f"{what} (reconnecting?)"}
            else:
                comps["source"] = {"status": "failing", "detail": f"no frame for {age:.0f} s"}
        if comps["backend"] is None:
            read = int(getattr(self.source, "read", 0) or 0)
            if processed == 0 and read > 2 * stall / period:
                comps["backend"] = {"status": "failing", "detail": "frames arrive but none was processed"}
            else:
                p = _ms(self.timer, "detect")["p95"]
                comps["backend"] = {"status": "ok", "detail": f"inference p95 {p} ms per frame" if p else "starting"}
        comps["mqtt"] = self.mqtt.health() if self.mqtt is not None else {"status": "ok", "detail": "disabled"}
        order = {"ok": 0, "degraded": 1, "failing": 2}
        overall = max((c["status"] for c in comps.values()), key=order.__getitem__)
        return {"status": overall, "components": comps}


_DOING = {
    "starting": "starting",
    "connecting": "connecting",
    "loading": "loading (a first DLPU compile takes minutes)",
}


def _part(h: Health | None, what: str) -> dict[str, str] | None:
    """The health component of a part that is not (yet, or no longer) ready; None when it is."""
    if h is None or h.state in ("ready", "closed"):
        return None
    age = f"{time.time() - h.since:.0f} s"
    if h.state == "failed":
        return {"status": "failing", "detail": f"{what} failed: {h.last_error}"}
    if h.state == "retrying":
        return {"status": "degraded", "detail": f"{what} retrying for {age} ({h.retries} retries): {h.last_error}"}
    detail = f"{what} {_DOING.get(h.state, h.state)} for {age}"
    return {"status": "degraded", "detail": detail + (f"; last error: {h.last_error}" if h.last_error else "")}


def _depth(obj) -> int | None:
    d = getattr(obj, "depth", None)
    if d is None:
        return None
    try:
        v = d() if callable(d) else d
        return int(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else None
    except Exception:
        return None
