"""Orchestration only: capture → preprocess → inference → decode → track → sinks.

Capture decodes in its own thread, preprocessing (views → model inputs) runs in another so it
overlaps inference, sinks write in a third; the inference thread does invoke, decode, merge and
track. Every stage exchanges Frame and Detections.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from app import backends
from app.capture import open_source
from app.config import Config, resolve_labels
from app.decoders import create_decoder
from app.errors import ModelError, VigilError
from app.feed import Feed
from app.health import Health
from app.ops import nms
from app.preprocess import InputConverter, plan_views
from app.sinks import OutputClosed, Sink
from app.timing import StageTimer
from app.tracking import create_tracker
from app.types import Detections, Frame

log = logging.getLogger(__name__)


class Detector:
    """One frame in, Detections in source pixels out: views → tensors → model → decoder → merge."""

    def __init__(self, cfg: Config, timer: StageTimer | None = None, model=None, health: Health | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.timer = timer or StageTimer()
        self.labels = resolve_labels(cfg.model.labels, cfg.model.path)
        self.model = model or backends.load(
            cfg.model.path, cfg.model.backend, cfg.model.device, cfg.model.threads,
            acap=cfg.acap_runtime, server_path=cfg.model.server_path, health=health, cancel=cancel,
        )
        if len(self.model.inputs) != 1:
            raise ModelError(f"model has {len(self.model.inputs)} inputs; Vigil runs single-image detectors")
        self.converter = InputConverter(self.model.inputs[0], cfg.model.input_range)
        self.decoder = create_decoder(cfg.decoder, self.model.outputs, self.labels, self.converter.size)
        self.rgb = cfg.model.color == "rgb"
        self._views: dict[tuple[int, int], list] = {}
        self.merge_ids = merge_ids(self.labels, cfg.model.groups) if cfg.decoder.merge_groups else None

    def views(self, size: tuple[int, int]):
        """The views for a frame size, planned once per size."""
        v = self._views.get(size)
        if v is None:
            t = self.cfg.preprocess.tiling
            mw, mh = self.converter.size
            tiles = t.enabled if t.enabled is not None else max(size) >= t.auto_scale * max(mw, mh)
            v = self._views[size] = plan_views(
                size[0], size[1], mw, mh, self.cfg.preprocess.resize,
                t.tile_size if tiles else None, t.overlap, t.full_frame,
            )
            log.info("%d model run%s per %dx%d frame", len(v), "" if len(v) == 1 else "s", *size)
        return v

    def prepare(self, frame: Frame) -> list[np.ndarray]:
        """The model input tensor of every view of this frame."""
        with self.timer.measure("preprocess"):
            return [self.converter(v.render(frame.image, self.rgb)) for v in self.views(frame.size)]

    def __call__(self, frame: Frame) -> Detections:
        return self.infer(frame, self.prepare(frame))

    def infer(self, frame: Frame, tensors: list[np.ndarray]) -> Detections:
        """Run the model on prepared tensors, decode each view and merge into source pixels."""
        views = self.views(frame.size)
        parts = []
        measure = self.timer.measure
        results = self.model.run_many([t] for t in tensors)
        for view in views:
            with measure("invoke"):
                outputs = next(results)
            with measure("decode"):
                d = self.decoder.decode(outputs)
                if len(d):
                    d.xyxy = view.to_source(d.xyxy).astype(np.float32)
                    parts.append(d)
        with measure("merge"):
            dets = Detections.merge(parts)
            if len(views) > 1 and len(dets) > 1:
                t = self.cfg.preprocess.tiling
                keep = nms(dets.xyxy, dets.scores, t.merge_threshold, dets.class_ids, metric=t.merge_metric)
                dets = dets[keep]
            if self.merge_ids is not None and len(dets) > 1:
                ids = self.merge_ids[np.clip(dets.class_ids, 0, len(self.merge_ids) - 1)]
                dets = dets[nms(dets.xyxy, dets.scores, self.cfg.decoder.iou_threshold, ids)]
            w, h = frame.size
            np.clip(dets.xyxy, 0, [w, h, w, h], out=dets.xyxy)
            # boxes entirely off-frame collapse to zero width when clipped; NaN never compares true
            valid = (dets.xyxy[:, 2] - dets.xyxy[:, 0] >= 1) & (dets.xyxy[:, 3] - dets.xyxy[:, 1] >= 1)
            if not valid.all():
                dets = dets[valid]
        return dets


def merge_ids(labels: list[str], groups: dict[str, list[str]]) -> np.ndarray | None:
    """Per class id, the id NMS uses when group members count as one class (None: no group has two
    of these labels, nothing to merge)."""
    ids = np.arange(max(len(labels), 1))
    merged = False
    for members in groups.values():
        present = [labels.index(m) for m in members if m in labels]
        if len(present) > 1:
            ids[present] = present[0]
            merged = True
    return ids if merged else None


class PrepareWorker:
    """Prepares the next frame's model inputs in a thread of its own while the model runs on this
    one (the interpreter releases the GIL, so the two overlap on two cores)."""

    _END = object()

    def __init__(self, source, detector: Detector, depth: int = 1) -> None:
        self.source = source
        self.detector = detector
        self.error: BaseException | None = None
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="preprocess", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self.source:
                if not self._put((frame, self.detector.prepare(frame))):
                    return
        except BaseException as e:  # surfaced to the inference thread
            self.error = e
        self._put(self._END)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def __iter__(self):
        while True:
            item = self._q.get()
            if item is self._END:
                if self.error:
                    raise self.error
                return
            yield item

    def close(self) -> None:
        """Stop preparing (call before closing the source, then join with join())."""
        self._stop.set()
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                return

    def join(self) -> None:
        self._thread.join(timeout=10)


class SinkWorker:
    """Runs sinks in a thread behind a bounded queue so writing never stalls inference for long."""

    def __init__(self, sinks: list[Sink], timer: StageTimer, size: int = 8) -> None:
        self.sinks = sinks
        self.timer = timer
        self.error: BaseException | None = None
        self.ended = False  # an output's reader went away: the run stops as at its end
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self._thread = threading.Thread(target=self._run, name="sinks", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._q.qsize()

    def put(self, frame: Frame, dets: Detections) -> None:
        if self.error:
            raise self.error
        self._q.put((frame, dets))

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self.error or self.ended:
                continue
            try:
                with self.timer.measure("sink"):
                    for s in self.sinks:
                        s.write(*item)
            except OutputClosed as e:
                log.info("the reader of %s went away; stopping", e)
                self.ended = True
            except BaseException as e:  # surfaced to the inference thread on its next put
                self.error = e

    def close(self) -> None:
        """Write what is queued, close every sink (each flushes what it can, even after another
        failed), then raise the first error."""
        self._q.put(None)
        self._thread.join()
        for s in self.sinks:
            try:
                s.close()
            except Exception as e:
                self.error = self.error or e
        if self.error:
            raise self.error


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
    model_runs_per_frame: int = 0
    feed: dict = field(default_factory=dict)  # events and MQTT totals when the metadata feed ran

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def build_sinks(cfg: Config, labels: list[str], fps: float | None) -> tuple[list[Sink], list[str]]:
    """The configured sinks and a description of where each writes."""
    from app.sinks.jsonl import JsonlSink
    from app.sinks.video import VideoSink

    sinks, where = [], []
    if cfg.output.jsonl:
        sinks.append(JsonlSink(cfg.output.jsonl, labels))
        where.append("stdout (JSON Lines)" if cfg.output.jsonl == "-" else f"{cfg.output.jsonl} (JSON Lines)")
    if cfg.output.video:
        sinks.append(VideoSink(cfg.output.video, labels, fps))
        where.append(f"{cfg.output.video} (annotated)")
    return sinks, where


def run(
    cfg: Config,
    max_frames: int | None = None,
    on_frame: Callable[[Frame, Detections], None] | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Summary:
    """Process the configured source until it ends, `max_frames`, or `stop` is set."""
    timer = StageTimer()
    labels = resolve_labels(cfg.model.labels, cfg.model.path)
    tracker = create_tracker(cfg.tracker, merge_ids(labels, cfg.model.groups) if cfg.decoder.merge_groups else None)
    feed = Feed(cfg, labels, timer, tracker)
    backend_health, source_health = Health(), Health()
    feed.open(backend_health, source_health)  # /api/health answers while the model loads
    summary = Summary()
    detector = source = worker = prepared = None
    try:
        try:
            backend_health.set("loading")
            # model first: a bad one fails before the source opens
            detector = Detector(cfg, timer, health=backend_health, cancel=stop)
            backend_health.set("ready")
            source_health.set("connecting")
            source = open_source(cfg.source, timer, acap=cfg.acap_runtime, health=source_health, cancel=stop)
            source_health.set("ready")
        except VigilError:
            if stop is not None and stop.is_set():  # told to stop while waiting for the server
                log.info("stopped while starting up")
                return summary
            raise
        sinks, summary.outputs = build_sinks(cfg, detector.labels, cfg.source.fps or source.fps)
        worker = SinkWorker(sinks, timer)
        summary.model_runs_per_frame = len(detector.views(source.size))
        t0 = time.perf_counter()
        feed.start(source, worker, summary.model_runs_per_frame)
        prepared = PrepareWorker(source, detector)
        for frame, tensors in prepared:
            with timer.measure("detect"):
                dets = detector.infer(frame, tensors)
            with timer.measure("track"):
                tracked = tracker.update(dets, frame.timestamp)
            worker.put(frame, tracked)
            feed.update(frame, tracked)  # analytics, then MQTT / HTTP status off this thread
            if on_frame:
                on_frame(frame, tracked)
            summary.frames += 1
            summary.detections += len(dets)
            if progress:
                progress(summary.frames, source.total)
            if (max_frames and summary.frames >= max_frames) or (stop and stop.is_set()) or worker.ended:
                break
        summary.seconds = time.perf_counter() - t0
    finally:
        if prepared is not None:
            prepared.close()
        if source is not None:
            source.close()
        if prepared is not None:
            prepared.join()
        feed.close()  # ends all tracks (end events), flushes MQTT, publishes offline, stops the API
        summary.feed = feed.summary()
        if worker is not None:
            worker.close()
        if detector is not None:
            detector.model.close()
        if source is not None:
            summary.dropped = source.dropped
            summary.skipped = getattr(source, "skipped", 0)
        summary.stages = timer.summary()
        summary.tracks = tracker.stats.tracks_confirmed
    return summary
