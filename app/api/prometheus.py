"""Prometheus metrics, collected from the Status at scrape time (no per-frame cost)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from app.status import Status

HEALTH = {"ok": 0, "degraded": 1, "failing": 2}


class VigilCollector:
    """Turns one stats/health/counts reading into metric families."""

    def __init__(self, status: Status) -> None:
        self.status = status

    def describe(self):
        return []

    def collect(self):
        st = self.status
        s = st.stats().model_dump(mode="json")
        dev = [s["device_id"]]

        def gauge(name, doc, value, labels=(), label_values=()):
            g = GaugeMetricFamily(name, doc, labels=["device", *labels])
            if value is not None:
                g.add_metric([*dev, *label_values], float(value))
            return g

        for k, doc in (("camera_fps", "frames per second read from the source"),
                       ("process_fps", "frames per second through inference and tracking"),
                       ("skipped_fps", "frames per second left out by the fps cap"),
                       ("dropped_fps", "frames per second dropped because inference was busy (live sources)"),
                       ("detection_fps", "model runs per second")):
            yield gauge(f"vigil_{k}", doc, s[k])
        yield gauge("vigil_uptime_seconds", "seconds since start", s["uptime"])
        inf = GaugeMetricFamily("vigil_inference_speed_seconds", "time of one model run", labels=["device", "quantile"])
        det = GaugeMetricFamily("vigil_frame_inference_seconds", "all model runs of one frame", labels=["device", "quantile"])
        for fam, key in ((inf, "inference_speed"), (det, "frame_inference_ms")):
            for q, p in (("0.5", "p50"), ("0.95", "p95")):
                v = s[key][p]
                if v is not None:
                    fam.add_metric([*dev, q], v / 1000)
            yield fam
        stages = GaugeMetricFamily("vigil_stage_seconds", "time per call of each pipeline stage",
                                   labels=["device", "stage", "quantile"])
        for stage, v in s["stages"].items():
            for q, p in (("0.5", "p50"), ("0.95", "p95")):
                if v[p] is not None:
                    stages.add_metric([*dev, stage, q], v[p] / 1000)
        yield stages
        frames = CounterMetricFamily("vigil_frames", "frames by fate", labels=["device", "kind"])
        for k, v in s["frames"].items():
            frames.add_metric([*dev, k], v)
        yield frames
        yield gauge("vigil_tracker_active_tracks", "confirmed tracks held by the tracker", s["tracker"]["active_tracks"])
        events = CounterMetricFamily("vigil_events", "events emitted", labels=["device", "type"])
        for k, v in s["objects"]["events"].items():
            events.add_metric([*dev, k], v)
        yield events
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
        since = GaugeMetricFamily("vigil_line_count", "line crossings since the last reset",
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
        m = s["mqtt"]
        if m.get("enabled"):
            yield gauge("vigil_mqtt_connected", "1 while connected to the broker", int(m["connected"]))
            yield gauge("vigil_mqtt_queued", "messages waiting for the broker", m["queued"])
            sent = CounterMetricFamily("vigil_mqtt_sent", "messages the broker acknowledged (QoS 0: written to it)",
                                       labels=["device"])
            sent.add_metric(dev, m["sent"])
            yield sent
            dropped = CounterMetricFamily("vigil_mqtt_dropped", "messages dropped by the queue bound",
                                          labels=["device", "kind"])
            for k, v in m["dropped"].items():
                dropped.add_metric([*dev, k], v)
            yield dropped
            left = GaugeMetricFamily("vigil_mqtt_undelivered", "messages given up on at exit, never delivered",
                                     labels=["device", "kind"])
            for k, v in m["undelivered"].items():
                left.add_metric([*dev, k], v)
            yield left
            rec = CounterMetricFamily("vigil_mqtt_reconnects", "reconnections to the broker", labels=["device"])
            rec.add_metric(dev, m["reconnects"])
            yield rec
        health = GaugeMetricFamily("vigil_health", "0 ok, 1 degraded, 2 failing", labels=["device", "component"])
        h = st.health()
        health.add_metric([*dev, "overall"], HEALTH[h.status])
        for comp, v in h.components.items():
            health.add_metric([*dev, comp], HEALTH[v.status])
        yield health


def make_registry(status: Status) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(VigilCollector(status))
    return reg


def render(registry: CollectorRegistry) -> bytes:
    """Prometheus text exposition format."""
    return generate_latest(registry)
