"""The snapshot keeper: keeps each published track's best view as JPEGs, as each result is made.

Per frame it scores every published object's view (app/snapshots/quality.py). A view better than
the kept one by `improvement` becomes pending; a pending view is encoded once `interval` seconds
(source clock) have passed since that track's last encode, so JPEG work is bounded per track
whatever the frame rate. A track's first view is encoded at once, so its `new` event can already
say `has_snapshot: true`. When the track ends, a view still pending is encoded and the snapshot is
written to disk. The keeper is part of making a result, not an output: `take` keeps the views of a
result analytics just made and returns that result with every event's `has_snapshot` decided from the
store (app/snapshots/flags.py), frozen, so no output depends on running after another one. A failure
of the keeper (a full disk) ends the snapshots of this run, not the result: it is logged, and
`close()` raises it again so the run exits non-zero, as a failed output does.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from app.annotate import annotate
from app.errors import VigilError
from app.labels import label_name
from app.render import encode_jpeg
from app.snapshots.config import SnapshotMqttConfig, SnapshotsConfig
from app.snapshots.flags import SnapshotFlags
from app.snapshots.quality import view_quality
from app.snapshots.store import Snapshot, SnapshotStore
from app.events import EventType
from app.types import Detections, FrameResult

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _View:
    image: np.ndarray  # the whole frame (a reference: sources hand out a new array per frame)
    box: np.ndarray
    score: float
    class_id: int


@dataclass(slots=True)
class _Track:
    best: float = -1.0
    encoded_at: float = float("-inf")
    pending: _View | None = None


def crop_box(box, size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """The box grown by `margin` of its size on each side, clipped to the frame, as integer pixels."""
    w, h = size
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    cx1, cy1 = max(int(x1 - mx), 0), max(int(y1 - my), 0)
    cx2, cy2 = min(int(np.ceil(x2 + mx)), w), min(int(np.ceil(y2 + my)), h)
    return cx1, cy1, max(cx2, cx1 + 1), max(cy2, cy1 + 1)


def limited_jpeg(image: np.ndarray, cfg: SnapshotMqttConfig) -> bytes | None:
    """The image for MQTT: at most cfg.height high and cfg.max_bytes long (lower quality if need be), or None."""
    quality = cfg.quality
    while True:
        data = encode_jpeg(image, quality, cfg.height)
        if len(data) <= cfg.max_bytes:
            return data
        if quality <= 20:
            return None
        quality = max(20, int(quality * 0.7))


class Snapshots:
    """Best view per track, encoded at most every `interval` s, kept in a SnapshotStore."""

    def __init__(self, cfg: SnapshotsConfig, labels: list[str], store: SnapshotStore, run_id: str,
                 publish: Callable[[str, bytes], None] | None = None, on: Callable[[], bool] | None = None) -> None:
        self.cfg = cfg
        self.labels = labels
        self.store = store
        self.run_id = run_id
        self.publish = publish  # (label, jpeg) for MQTT, when snapshots.mqtt is on
        self.on = on  # False while Home Assistant's Snapshots switch is off (app/publish/switches.py)
        self._wanted = set(cfg.labels)
        self._tracks: dict[int, _Track] = {}
        self.encodes = 0
        self.encode_seconds = 0.0
        self._mqtt_warned = False
        self.flags = SnapshotFlags(store.has)
        self.error: Exception | None = None  # the failure that ended the keeping

    def take(self, result: FrameResult) -> FrameResult:
        """Keep the views of a result just made; return it with has_snapshot decided (a new, frozen value)."""
        if self.error is None:
            try:
                self._keep(result)
            except Exception as e:  # noqa: BLE001 - the result goes on without snapshots; close() raises it
                self.error = e
                log.error("snapshots stopped: %s", e, exc_info=not isinstance(e, VigilError))
        return replace(result, events=self.flags.decide(result.events)) if result.events else result

    def _keep(self, result: FrameResult) -> None:
        active = self.on is None or self.on()
        if active and result.frame is not None and len(result.objects):
            self._consider(result)
        now = result.timestamp
        for tid, tr in self._tracks.items():
            if active and tr.pending is not None and now - tr.encoded_at >= self.cfg.interval:
                self._encode(tid, tr, now)
        for e in result.events:
            if e.type == EventType.END:
                self._finish(e.after.track_id, now)

    def _consider(self, result: FrameResult) -> None:
        objs: Detections = result.objects
        cls = objs.class_ids
        ok = np.array([not self._wanted or self._label(c) in self._wanted for c in cls.tolist()], bool)
        if not ok.any():
            return
        q = view_quality(objs.xyxy, objs.scores, result.size)
        image = result.frame.image
        step = 1.0 + self.cfg.improvement
        for i in np.flatnonzero(ok).tolist():
            tid = int(objs.track_ids[i])
            tr = self._tracks.get(tid)
            if tr is None:
                tr = self._tracks[tid] = _Track()
            if q[i] > 0 and q[i] > tr.best * step:
                tr.best = float(q[i])
                tr.pending = _View(image, objs.xyxy[i].copy(), float(objs.scores[i]), int(cls[i]))

    def _label(self, class_id: int) -> str:
        return label_name(self.labels, class_id)

    def _encode(self, tid: int, tr: _Track, now: float) -> None:
        v, tr.pending, tr.encoded_at = tr.pending, None, now
        t0 = time.perf_counter()
        h, w = v.image.shape[:2]
        x1, y1, x2, y2 = crop_box(v.box, (w, h), self.cfg.margin)
        crop = v.image[y1:y2, x1:x2]
        full = annotate(v.image, Detections(v.box[None], [v.score], [v.class_id], [tid]), self.labels)
        snap = Snapshot(encode_jpeg(crop, self.cfg.quality), encode_jpeg(full, self.cfg.quality),
                        (x2 - x1, y2 - y1), (w, h))
        self.store.put(f"{self.run_id}-{tid}", snap)
        if self.publish is not None:
            data = limited_jpeg(crop if self.cfg.mqtt.crop else full, self.cfg.mqtt)
            if data is not None:
                self.publish(self._label(v.class_id), data)
            elif not self._mqtt_warned:
                self._mqtt_warned = True
                log.warning("snapshots: an image for MQTT stays over snapshots.mqtt.max_bytes (%d) even at quality "
                            "20; not published (lower snapshots.mqtt.height)", self.cfg.mqtt.max_bytes)
        self.encodes += 1
        self.encode_seconds += time.perf_counter() - t0

    def _finish(self, tid: int, now: float) -> None:
        tr = self._tracks.pop(tid, None)
        if tr is None:
            return
        if tr.pending is not None:
            self._encode(tid, tr, now)
        self.store.persist(f"{self.run_id}-{tid}")

    def close(self) -> None:
        """Keep what the live tracks have (a run that stops without their `end` still saves them); then
        raise the failure that ended the keeping, if one did."""
        if self.error is None:
            for tid in list(self._tracks):
                self._finish(tid, float("inf"))
        if self.error is not None:
            raise self.error
