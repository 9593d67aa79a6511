"""Prometheus metrics, collected from the Status at scrape time (no per-frame cost).

By the book (`promtool check metrics` is clean, a test runs it): latencies are histograms in
seconds, totals are counters (`_total`), values that go up and down are gauges, and the process
collector adds RSS and CPU. Every metric carries the device label.
"""
from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from app import __version__
from app.status import RATE_WINDOW, Status
from app.timing import StageTimer

HEALTH = {"ok": 0, "degraded": 1, "failing": 2}


def _histogram(name: str, doc: str, timer: StageTimer, stages: dict[str, str], labels: list[str],
               dev: list[str]) -> HistogramMetricFamily:
    """One histogram family: per stage of the timer, the label values it is shown with."""
    fam = HistogramMetricFamily(name, doc, labels=["device", *labels])
    for stage, label_value in stages.items():
        got = timer.histogram(stage)
        if got is None:
            continue
        buckets, total = got
        fam.add_metric([*dev, *([label_value] if labels else [])],
                       [("+Inf" if b == float("inf") else repr(b), n) for b, n in buckets], sum_value=total)
    return fam


class VigilCollector:
    """Yields Vigil's metric families from one Status."""

    def __init__(self, status: Status) -> None:
        self.status = status

    def describe(self):
        return []

    def collect(self):
        st = self.status
        s = st.stats()
        dev = [s.device_id]

        def gauge(name, doc, value, labels=(), label_values=()):
            g = GaugeMetricFamily(name, doc, labels=["device", *labels])
            if value is not None:
                g.add_metric([*dev, *label_values], float(value))
            return g

        def counter(name, doc, values: dict, label: str | None = None):
            c = CounterMetricFamily(name, doc, labels=["device", *([label] if label else [])])
            for key, v in values.items():
                c.add_metric([*dev, *([key] if label else [])], float(v))
            return c

        info = GaugeMetricFamily("vigil_build_info", "always 1; the labels say what runs",
                                 labels=["device", "version", "python", "backend"])
        info.add_metric([*dev, __version__, platform.python_version(), st.parts.backend_type], 1.0)
        yield info
        for k, doc in (("camera_fps", "frames per second read from the source"),
                       ("process_fps", "frames per second through inference and tracking"),
                       ("skipped_fps", "frames per second left out by the fps cap"),
                       ("dropped_fps", "frames per second dropped because inference was busy (live sources)"),
                       ("detection_fps", "model runs per second")):
            yield gauge(f"vigil_{k}", f"{doc} (over the last {RATE_WINDOW:g} s)", getattr(s, k))
        yield gauge("vigil_uptime_seconds", "seconds since start", s.uptime)
        yield gauge("vigil_model_runs_per_frame", "model runs (views: whole frame, tiles, regions) per frame, "
                    "mean since start", s.model_runs_per_frame)
        yield gauge("vigil_frame_coverage", "share of the frame the model ran on, mean since start", s.frame_coverage)
        t = st.timer
        yield _histogram("vigil_model_run_seconds", "time of one model run (one view)", t, {"invoke": ""}, [], dev)
        yield _histogram("vigil_frame_detect_seconds", "all model runs of one frame, with decoding and merging",
                         t, {"detect": ""}, [], dev)
        yield _histogram("vigil_stage_seconds", "time per call of each pipeline stage", t,
                         {k: k for k in s.stages}, ["stage"], dev)
        f = s.frames
        yield counter("vigil_frames", "frames by fate", {"read": f.read, "processed": f.processed,
                                                         "skipped": f.skipped, "dropped": f.dropped}, "kind")
        yield counter("vigil_source_reconnects", "times a live source failed or stalled and was reopened",
                      {"": f.reconnects})
        yield gauge("vigil_tracker_active_tracks", "confirmed tracks held by the tracker", s.tracker.active_tracks)
        yield counter("vigil_events", "events emitted", s.objects.events.model_dump(), "type")
        c = st.counts()
        objs = GaugeMetricFamily("vigil_objects", "objects present now", labels=["device", "label"])
        for label, n in c["counts"].items():
            objs.add_metric([*dev, label], n)
        yield objs
        zones = GaugeMetricFamily("vigil_zone_objects", "objects in a zone now", labels=["device", "zone", "label"])
        for zone, per in c["zones"].items():
            for label, n in per.items():
                zones.add_metric([*dev, zone, label], n)
        yield zones
        since = GaugeMetricFamily("vigil_line_crossings_since_reset", "line crossings since the line's last reset",
                                  labels=["device", "line", "direction"])
        for line, v in c["lines"].items():
            for d in ("in", "out"):
                since.add_metric([*dev, line, d], v[d])
        yield since
        total = CounterMetricFamily("vigil_line_crossings", "line crossings since start (never reset)",
                                    labels=["device", "line", "direction"])
        for line, (n_in, n_out) in st.line_totals().items():
            total.add_metric([*dev, line, "in"], n_in)
            total.add_metric([*dev, line, "out"], n_out)
        yield total
        m = s.mqtt
        if m.enabled:
            yield gauge("vigil_mqtt_connected", "1 while connected to the broker", int(m.connected))
            yield gauge("vigil_mqtt_queued", "messages waiting for the broker", m.queued)
            yield counter("vigil_mqtt_sent", "messages the broker acknowledged (QoS 0: written to it)", {"": m.sent})
            yield counter("vigil_mqtt_dropped", "messages dropped by the queue bound", m.dropped.model_dump(), "kind")
            left = GaugeMetricFamily("vigil_mqtt_undelivered", "messages given up on at exit, never delivered",
                                     labels=["device", "kind"])
            for k, v in m.undelivered.model_dump().items():
                left.add_metric([*dev, k], v)
            yield left
            yield counter("vigil_mqtt_reconnects", "reconnections to the broker", {"": m.reconnects})
        health = GaugeMetricFamily("vigil_health", "0 ok, 1 degraded, 2 failing", labels=["device", "component"])
        h = st.health()
        health.add_metric([*dev, "overall"], HEALTH[h.status])
        for comp, v in h.components.items():
            health.add_metric([*dev, comp], HEALTH[v.status])
        yield health


def make_registry(status: Status) -> CollectorRegistry:
    """Vigil's metrics and the process' own (resident memory, CPU seconds, open files)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(VigilCollector(status))
    ProcessCollector(registry=reg)
    return reg


def render(registry: CollectorRegistry) -> bytes:
    """Prometheus text exposition format."""
    return generate_latest(registry)
