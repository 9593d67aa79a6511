"""The metadata feed: analytics on the inference thread, then the HTTP status and MQTT off it.

The pipeline calls `open` first (the HTTP API then shows start-up progress), `start` once
the model is loaded and the source open, `update` after the tracker on every frame, and
`close` at the end. `update` pops the tracker's lifecycle events, runs the
analytics (pure array work) and hands the result to the publish worker; nothing on the
inference thread waits for the network.
"""
from __future__ import annotations

import copy
import logging
import re
import secrets
import socket
import time

from app.analytics import Analytics
from app.config import Config
from app.errors import ConfigError
from app.health import Health
from app.timing import StageTimer
from app.types import Detections, Frame

log = logging.getLogger(__name__)


def resolve_device_id(value: str | None) -> str:
    """The configured device id, or the host name made safe for topics."""
    if value:
        return value
    host = socket.gethostname() or "vigil"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", host)[:64]


def check_labels(cfg: Config, labels: list[str]) -> None:
    """Labels named in zones, lines and filters must be the model's: a typo would silently count nothing."""
    named = [(f"zones.{n}.labels", z.labels) for n, z in cfg.zones.items()]
    named += [(f"lines.{n}.labels", c.labels) for n, c in cfg.lines.items()]
    named.append(("filters.labels", list(cfg.filters.labels)))
    for key, names in named:
        for name in names:
            if name not in labels:
                shown = ", ".join(labels[:10]) + (", …" if len(labels) > 10 else "")
                raise ConfigError(f"{key}: {name!r} is not one of the model's labels ({shown})")


def redacted_config(cfg: Config) -> dict:
    """The configuration as JSON with secrets replaced by asterisks (SecretStr fields)."""
    return cfg.model_dump(mode="json")


class Feed:
    """Analytics → status + MQTT for one pipeline run; inert unless mqtt or api is enabled."""

    def __init__(self, cfg: Config, labels: list[str], timer: StageTimer, tracker) -> None:
        self.cfg = cfg
        self.labels = labels
        self.timer = timer
        self.tracker = tracker
        self.enabled = cfg.mqtt.enabled or cfg.api.enabled or bool(cfg.state.file and cfg.lines)
        self.state_file = None
        self.tracks_file = None
        self.analytics: Analytics | None = None
        self.status = None
        self.mqtt = None
        self.api = None
        self.worker = None
        self.device_id = ""
        self.run_id = secrets.token_hex(3)  # in every event id and event; new per start
        self._started = False

    def open(self, backend: Health | None = None, source: Health | None = None) -> None:
        """Serve the HTTP API now, before the model loads and the source opens, so that start-up
        (minutes for a first DLPU compile) shows in /api/health; `backend`/`source` report it."""
        if not self.enabled or self.status is not None:
            return
        from app.status import Status

        cfg = self.cfg
        check_labels(cfg, self.labels)
        self.device_id = resolve_device_id(cfg.device_id)
        status = self.status = Status(self.labels, self.device_id, self.timer, cfg.events.history, cfg.zones, cfg.lines)
        status.backend_health, status.source_health = backend, source
        status.run_id = self.run_id
        if cfg.mqtt.enabled:
            from app.publish.mqtt import MqttPublisher

            # made now (bad TLS files fail here) so /api/health and /api/stats show it while starting up
            self.mqtt = MqttPublisher(cfg.mqtt, self.device_id, self.labels, stats=status.stats)
            status.mqtt = self.mqtt
        if cfg.api.enabled:
            from app.api.server import ApiServer, create_app

            app = create_app(status, cfg.api, redacted_config(cfg), type(cfg).model_json_schema(),
                             reset=self.reset_counts if cfg.lines else None)
            self.api = ApiServer(app, cfg.api.host, cfg.api.port)  # a busy port fails here, before any thread
            self.api.start()

    def start(self, source, sink_worker=None, model_runs_per_frame: int = 1) -> None:
        """Build analytics and publishers once frames can flow, and start connecting to the broker."""
        if not self.enabled:
            return
        from app.publish import PublishWorker

        self.open()
        cfg, status = self.cfg, self.status
        # File timestamps are positions in the file: anchor them to the wall clock at start.
        offset = 0.0 if getattr(source, "live", False) else time.time()
        analytics = Analytics(
            self.labels, cfg.zones, cfg.lines, cfg.filters, cfg.stationary, cfg.events,
            epoch_offset=offset, run_id=self.run_id, device_id=self.device_id,
            keep_tracks_view=cfg.api.enabled,
            count_labels=cfg.decoder.classes or None,
            groups=cfg.model.groups,
        )
        if cfg.state.file and cfg.lines:
            from app.publish.statefile import LineStateFile

            self.state_file = LineStateFile(cfg.state.file, cfg.state.interval)
            restored = analytics.restore_lines(self.state_file.load())
            if restored:
                log.info("line counts of %s restored from %s", ", ".join(restored), cfg.state.file)
            self.state_file.save(analytics.current().lines)  # an unwritable path fails now, not at exit
        orphans: list[dict] = []
        if cfg.state.file:
            from app.publish.statefile import OpenTracksFile, tracks_path

            self.tracks_file = OpenTracksFile(tracks_path(cfg.state.file), wait_for_ack=self.mqtt is not None)
            orphans = self.tracks_file.load()
            self.tracks_file.adopt(orphans)
        status.set_source(source)
        status.sink_worker = sink_worker
        status.model_runs_per_frame = model_runs_per_frame
        initial = analytics.current()
        status.initial = initial
        # the open-tracks file before the publisher: a track is on disk before its `new` is queued
        consumers = [status] + [c for c in (self.state_file, self.tracks_file) if c is not None]
        if self.mqtt is not None:
            consumers.append(self.mqtt)
            if self.tracks_file is not None:
                self.mqtt.on_end_delivered = self.tracks_file.confirm
        self.worker = PublishWorker(consumers, self.timer)
        status.publish_worker = self.worker
        self.analytics = analytics
        if self.mqtt is not None:
            self.mqtt.start(initial)
        if orphans:  # the previous run died with these open: their end goes before anything of this run
            ended = copy.copy(initial)
            ended.events = analytics.end_orphans(orphans)
            self.worker.put(None, Detections(), ended)
            log.info("published end (reason restart) for %d tracks the previous run left open", len(orphans))
        self._started = True

    def update(self, frame: Frame, tracked: Detections) -> None:
        """Run analytics on this frame and hand the result to the publishers (inference thread)."""
        events = self.tracker.pop_events()  # drained even when nothing consumes them
        if not self._started:
            return
        with self.timer.measure("analytics"):
            result = self.analytics.update(frame, tracked, events)
        self.status.tracker_stats = copy.copy(self.tracker.stats)
        self.worker.put(frame, tracked, result)

    def reset_counts(self, names: list[str] | None) -> dict[str, dict] | None:
        """Zero line counts and publish the new state (any thread); None while still starting."""
        if self.analytics is None:
            return None
        lines = self.analytics.reset_counts(names)
        self.status.set_lines(lines)
        if self.state_file is not None:
            self.state_file.save_or_warn(lines)
        if self.mqtt is not None:
            self.mqtt.set_lines(lines)
        return lines

    def summary(self) -> dict:
        """What the feed did, for the end-of-run summary."""
        if self.status is None:
            return {}
        out = {"events": dict(self.status.event_totals)}
        if self.mqtt is not None:
            out["mqtt"] = self.mqtt.stats()
        if self.api is not None:
            out["api"] = self.api.url
        return out

    def close(self) -> None:
        """End every track (publishing `end`), flush MQTT, publish `offline`, stop the API. Never raises."""
        if not self._started:
            if self.api is not None:  # stopped while starting up
                self.api.close()
                self.api = None
            return
        self._started = False
        try:
            self.tracker.end_all()
            result = self.analytics.finish(self.tracker.pop_events())
            self.worker.put(None, Detections(), result)
            self.worker.close()
            if self.state_file is not None:
                self.state_file.close()
            self.status.finished = True
            if self.mqtt is not None:
                self.mqtt.close()
            if self.tracks_file is not None:
                self.tracks_file.close()  # keeps only ends the broker never acknowledged
        except Exception:
            log.exception("closing the metadata feed failed")
        finally:
            if self.api is not None:
                self.api.close()
