"""Per-frame analytics over tracked Detections: filters, the rules (zones, lines, stationary, …; see
app/analytics/rules.py) and the event policy.

`Analytics.update` runs once per frame (on the outputs thread). It keeps per-track state in a Table
(arrays, one row per live track; each rule adds its columns) and returns a FrameResult: this frame's
events (frozen app.events.Event values), the published objects and the counts, as new dict objects
whenever they change (readers may hold them). Its one lock guards everything here, the rules' state and
line counts too.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from app.analytics.counts import count_doc, per_label
from app.analytics.config import EventsConfig, FiltersConfig, LineConfig, StationaryConfig, ZoneConfig
from app.analytics.describe import Describer, TracksView
from app.analytics.lines import Lines
from app.analytics.live import reconfigure
from app.analytics.rules import LabelChange, Rule, ScoreRise, Seen, reasons_by_row
from app.analytics.stationary import Stationary
from app.analytics.table import ColumnSpec, Table
from app.analytics.zones import Zones, class_index
from app.events import EndReason, Event, EventType, TrackedObject
from app.tracking.events import KINDS, TrackEvents
from app.types import Detections, Frame, FrameResult

NEW_K, MATCHED_K, END_K = KINDS.index("new"), KINDS.index("matched"), KINDS.index("end")
MAX_COUNT_LABELS = 20  # with a longer label list only labels actually seen get count topics
# the engine's own per-track columns; each rule adds its own (Rule.columns)
TRACK_COLUMNS: ColumnSpec = {
    "tid": ((), np.int64, -1),
    "cls": ((), np.int32, 0),
    "first_seen": ((), np.float64, 0.0),
    "last_seen": ((), np.float64, 0.0),
    "score": ((), np.float32, 0.0),
    "top": ((), np.float32, 0.0),
    "box": ((4,), np.float32, 0.0),
    "vel": ((2,), np.float32, 0.0),
    "eligible": ((), bool, False),  # passed the score and area filters at least once
    "published": ((), bool, False),
    "last_event_ts": ((), np.float64, 0.0),
    "last_event_top": ((), np.float32, 0.0),
}


class Analytics:
    """Filters, zones, lines, stationary detection and event policy over one stream of tracked frames."""

    def __init__(
        self,
        labels: list[str],
        zones: dict[str, ZoneConfig] | None = None,
        lines: dict[str, LineConfig] | None = None,
        filters: FiltersConfig | None = None,
        stationary: StationaryConfig | None = None,
        events: EventsConfig | None = None,
        epoch_offset: float = 0.0,
        run_id: str = "run",
        device_id: str = "vigil",
        keep_tracks_view: bool = False,
        count_labels: list[str] | None = None,
        groups: dict[str, list[str]] | None = None,
        rules: list[Rule] | None = None,
    ) -> None:
        self.labels = list(labels)
        # label groups with at least one member this model has get a count of their own
        present = {g: [m for m in members if m in self.labels] for g, members in (groups or {}).items()
                   if g not in self.labels}
        self.groups = {g: members for g, members in present.items() if members}
        self.zones = Zones(zones or {}, self.labels)
        self.lines = Lines(lines or {}, self.labels, since=time.time())
        self.filters = filters or FiltersConfig()
        self.stationary = stationary or StationaryConfig()
        self.policy = events or EventsConfig()
        self.offset = epoch_offset
        self.keep_tracks_view = keep_tracks_view
        self.run_id = run_id
        self.seq = 0  # sequence number of the last event of this run (1, 2, … with no gaps)
        self._describer = Describer(self.labels, self.zones.names, self.lines.names, run_id, device_id, epoch_offset)
        self.extra_rules = list(rules or [])  # the `rules:` section's, after the built-in ones
        self._rules_of: tuple = ()
        self.T = Table(self.columns())
        self._end_reason = EndReason.LOST
        self._reasons: dict[int, list[str]] = {}
        self._last_after: dict[int, TrackedObject] = {}
        self._per_class_filters()
        # the labels that can be detected (decoder.classes) when given, else every label of a short list
        detectable = [lab for lab in count_labels or [] if lab in self.labels]
        if detectable:
            self.count_labels: list[str] = detectable[:MAX_COUNT_LABELS]
        else:
            self.count_labels = list(self.labels) if len(self.labels) <= MAX_COUNT_LABELS else []
        for z in self.zones.cfg:
            for lab in z.labels:
                if lab not in self.count_labels:
                    self.count_labels.append(lab)
        self._size = (1, 1)
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.zone_counts: dict[str, dict[str, int]] = {}
        self.line_states: dict[str, dict] = {}
        self.line_totals: dict[str, tuple[int, int]] = {}
        self._recount()
        self._restate_lines()

    # ---- public -------------------------------------------------------------------------

    def update(self, frame: Frame, tracked: Detections, events: TrackEvents | None = None) -> FrameResult:
        """Advance by one frame: `tracked` are the tracker's output, `events` its lifecycle events since the last call."""
        with self._lock:
            return self._update(frame, frame.seq, frame.timestamp, frame.size, tracked, events or TrackEvents())

    def finish(self, events: TrackEvents, seq: int = -1, reason: EndReason = EndReason.STOP) -> FrameResult:
        """Process tracker events without a new frame, publishing `end` for the tracks they end: the final
        ones after end_all (reason stop), or tracks that expired while a live source was silent (lost)."""
        with self._lock:
            now = float(self.T.last_seen.max()) if len(self.T) else 0.0
            if len(events):
                now = max(now, float(events.timestamp.max()))
            self._end_reason = EndReason(reason)
            try:
                return self._update(None, seq, now, self._size, Detections(), events)
            finally:
                self._end_reason = EndReason.LOST

    def end_orphans(self, objects: list[TrackedObject]) -> tuple[Event, ...]:
        """`end` events (reason `restart`) for objects an earlier run published but never ended (it died)."""
        with self._lock:
            return tuple(self._stamp(EventType.END, last, last.model_copy(update={"end_time": last.frame_time}), (),
                                     EndReason.RESTART) for last in objects)

    def reset_counts(self, names: list[str] | None = None) -> dict[str, dict]:
        """Zero line counts (all lines, or those named); return the new line states. Any thread."""
        unknown = [n for n in names or [] if n not in self.lines.names]
        if unknown:
            raise KeyError(unknown[0])
        with self._lock:
            self.lines.reset(names, time.time())
            self._restate_lines()
            return self.line_states

    def reconfigure(self, zones: dict[str, ZoneConfig], lines: dict[str, LineConfig], filters: FiltersConfig,
                    stationary: StationaryConfig, events: EventsConfig) -> list[str]:
        """New settings between two frames (app/analytics/live.py); return the lines that kept their counts."""
        with self._lock:
            return reconfigure(self, zones, lines, filters, stationary, events)

    def restore_lines(self, states: dict[str, dict]) -> list[str]:
        """Line counts saved by an earlier run (see LineStateFile); return the lines restored."""
        with self._lock:
            restored = self.lines.restore(states, self.labels)
            self._restate_lines()
        return restored

    def current(self) -> FrameResult:
        """The state now, as a result without a frame or events (the retained state before the first frame)."""
        with self._lock:
            return FrameResult(
                frame=None, seq=-1, timestamp=0.0, epoch=time.time(), size=self._size, objects=Detections(),
                counts=self.counts, zones=self.zone_counts, lines=self.line_states, line_totals=self.line_totals,
                tracks=self._view() if self.keep_tracks_view else None,
            )

    def snapshot(self) -> TracksView:
        """The published tracks now, as a view other threads may read."""
        with self._lock:
            return self._view()

    # ---- rules ----------------------------------------------------------------------------

    def rules(self) -> list[Rule]:
        """Every rule in the order they run and list their reasons: zones, the label vote, stationary,
        the score rise, lines, then the `rules:` section's (made again by live settings)."""
        key = (self.zones, self.lines, self.stationary, self.policy.score_change)
        if self._rules_of != key:
            self._rules_of = key
            self._rules = [self.zones, LabelChange(), Stationary(self.stationary), ScoreRise(self.policy.score_change),
                           self.lines, *self.extra_rules]
        return self._rules

    def columns(self) -> ColumnSpec:
        """The table's columns: the engine's and every rule's."""
        spec = dict(TRACK_COLUMNS)
        for rule in self.rules():
            spec.update(rule.columns())
        return spec

    @property
    def _entered(self) -> dict[int, list[str]]:
        return self.zones.entered

    @property
    def _crossed(self) -> dict[int, list[dict]]:
        return self.lines.crossed

    # ---- steps ----------------------------------------------------------------------------

    def _per_class_filters(self) -> None:
        f = self.filters
        n = len(self.labels)
        vals = {k: np.full(n + 1, getattr(f, k), np.float64) for k in ("min_score", "min_area", "max_area", "min_age")}
        # the built-in per-label entries (person 0.5) yield to a filters.min_score the user set without
        # setting filters.labels: "min_score: 0.75" then reaches people too
        builtin_yields = "labels" not in f.model_fields_set and "min_score" in f.model_fields_set
        for lab, over in f.labels.items():
            if lab in self.labels:
                c = self.labels.index(lab)
                for k, arr in vals.items():
                    v = getattr(over, k)
                    if v is not None and not (builtin_yields and k == "min_score"):
                        arr[c] = v
        self._f = vals

    def _update(self, frame: Frame | None, seq: int, now: float, size: tuple[int, int], tracked: Detections,
                events: TrackEvents) -> FrameResult:
        T = self.T
        self._size = size
        ids = tracked.track_ids
        new_ids = np.array([t for t in ids.tolist() if t not in T.row], np.int64)
        if len(new_ids):
            r = T.add(new_ids)
            T.first_seen[r] = now
        rows = T.rows(ids)
        self._absorb_tracker_events(events)
        w, h = size
        out_events: list[Event] = []
        k = len(rows)
        if k:
            cls, scores = tracked.class_ids, tracked.scores
            relabelled = T.cls[rows] != cls  # the tracker's vote changed the label (app/tracking/labelvote.py)
            T.cls[rows] = cls
            T.score[rows] = scores
            T.top[rows] = np.maximum(T.top[rows], scores)
            T.last_seen[rows] = now
            T.box[rows] = tracked.xyxy
            norm = tracked.xyxy / np.array([w, h, w, h], np.float32)
            # filters: once a track has passed score and area it stays eligible; age gates publication
            ci = class_index(cls, len(self.labels))
            area = np.clip(norm[:, 2] - norm[:, 0], 0, None) * np.clip(norm[:, 3] - norm[:, 1], 0, None)
            f = self._f
            ok = (scores >= f["min_score"][ci]) & (area >= f["min_area"][ci]) & (area <= f["max_area"][ci])
            T.eligible[rows] |= ok
            was_published = T.published[rows].copy()
            publish = ~was_published & T.eligible[rows] & (now - T.first_seen[rows] >= f["min_age"][ci])
            T.published[rows] = was_published | publish
            fresh = np.isin(ids, new_ids) if len(new_ids) else np.zeros(k, bool)
            seen = Seen(T, rows, cls, norm, now, now + self.offset, fresh, was_published, T.published[rows],
                        relabelled, self.zones.names)
            for i, why in reasons_by_row(self.rules(), seen).items():
                pending = self._reasons.setdefault(int(ids[i]), [])
                pending.extend(c for c in why if c not in pending)
            if self.lines.changed:
                self._restate_lines()
            for i in np.flatnonzero(publish).tolist():
                out_events.append(self._event(EventType.NEW, rows[i], now))
        # the tracker's filtered box may reach past the frame edge: outputs get the visible part
        objects = tracked[T.published[rows]].clipped(size) if k else Detections()
        out_events.extend(self._due_updates(now))
        ended = self._end(events, out_events)  # compacts the table: `rows` is stale after this
        self._recount(now)
        return FrameResult(
            frame=frame, seq=seq, timestamp=now, epoch=now + self.offset, size=size, objects=objects,
            events=tuple(out_events), ended=ended, counts=self.counts, zones=self.zone_counts,
            lines=self.line_states, line_totals=self.line_totals,
            tracks=self._view() if self.keep_tracks_view else None,
        )

    def _absorb_tracker_events(self, events: TrackEvents) -> None:
        """Velocity and first-seen time of tracks that are in the table, from the tracker's own events."""
        if not len(events):
            return
        T = self.T
        kind = events.kind
        sel = np.flatnonzero((kind == NEW_K) | (kind == MATCHED_K))
        row = T.row
        known = [(j, row[t]) for j, t in zip(sel.tolist(), events.track_id[sel].tolist()) if t in row]
        if not known:
            return
        j, r = (np.array(x, np.int64) for x in zip(*known))
        T.vel[r] = events.velocity[j]
        news = kind[j] == NEW_K
        if news.any():
            rn = r[news]
            T.first_seen[rn] = np.minimum(T.first_seen[rn], events.first_seen[j[news]])

    def _event(self, kind: EventType | str, row: int, now: float, changes: list[str] | None = None) -> Event:
        T = self.T
        tid = int(T.tid[row])
        end = kind == EventType.END
        after = self._describer.describe(
            T, row, self._entered.get(tid, ()), self._crossed.get(tid, ()), self._size, end=end
        )
        before = self._last_after.get(tid, after)
        self._last_after[tid] = after
        T.last_event_ts[row] = now
        T.last_event_top[row] = T.top[row]
        return self._stamp(EventType(kind), before, after, changes or (), self._end_reason if end else None)

    def _stamp(self, kind: EventType, before: TrackedObject, after: TrackedObject, changes,
               reason: EndReason | None) -> Event:
        """The event with the next sequence number of this run (caller holds the lock)."""
        self.seq += 1
        return Event(type=kind, seq=self.seq, run_id=self.run_id, before=before, after=after,
                     changes=tuple(changes), reason=reason)

    def _due_updates(self, now: float) -> list[Event]:
        """Update events for published tracks with pending changes (rate-limited) or a heartbeat due."""
        T = self.T
        if not len(T):
            return []
        p = self.policy
        since = now - T.last_event_ts
        due = T.published & (since >= p.update_interval)
        if p.heartbeat > 0:
            for r in np.flatnonzero(due & (since >= p.heartbeat)).tolist():
                lst = self._reasons.setdefault(int(T.tid[r]), [])
                if "heartbeat" not in lst:
                    lst.append("heartbeat")
        out = []
        for tid in [t for t in self._reasons if t in T.row]:
            r = T.row[tid]
            if due[r]:
                out.append(self._event(EventType.UPDATE, r, now, self._reasons.pop(tid)))
        return out

    def _end(self, events: TrackEvents, out_events: list[Event]) -> list[int]:
        """`end` events for published tracks the tracker ended; drop their rows."""
        T = self.T
        if not len(events):
            return []
        ends = events.track_id[events.kind == END_K]
        gone = [t for t in ends.tolist() if t in T.row]
        if not gone:
            return []
        ended = []
        for tid in gone:
            r = T.row[tid]
            if T.published[r]:
                out_events.append(self._event(EventType.END, r, float(T.last_seen[r]), self._reasons.get(tid, [])))
                ended.append(tid)
            for d in (self._entered, self._crossed, self._reasons, self._last_after):
                d.pop(tid, None)
        keep = np.ones(len(T), bool)
        keep[T.rows(np.array(gone, np.int64))] = False
        T.keep(keep)
        return ended

    def _recount(self, now: float | None = None) -> None:
        """Rebuild the count dicts, replacing them only when a value changed."""
        T = self.T
        pub = T.published
        if now is not None:
            pub = pub & (now - T.last_seen <= self.filters.presence_timeout + 1e-9)
        cls = T.cls[pub]
        by_name = per_label(self.labels, cls)
        self.count_labels.extend(n for n in by_name if n not in self.count_labels)  # in class id order
        counts = count_doc(int(len(cls)), by_name, self.count_labels, self.groups, every_group=True)
        if counts != self.counts:
            self.counts = counts
        zones = {}
        for z, zname in enumerate(self.zones.names):
            inside = T.member[pub, z] if len(T) else np.zeros(0, bool)
            want = self.zones.cfg[z].labels or self.count_labels
            zones[zname] = count_doc(int(np.count_nonzero(inside)), per_label(self.labels, cls[inside]), want,
                                     self.groups)
        if zones != self.zone_counts:
            self.zone_counts = zones

    def _restate_lines(self) -> None:
        self.lines.changed = False
        self.line_states = {n: self.lines.state(j, self.labels) for j, n in enumerate(self.lines.names)}
        self.line_totals = {n: (int(self.lines.lifetime[j, 0]), int(self.lines.lifetime[j, 1]))
                            for j, n in enumerate(self.lines.names)}

    def _view(self) -> TracksView:
        return TracksView(self.T.copy(), {k: list(v) for k, v in self._entered.items()},
                          {k: list(v) for k, v in self._crossed.items()}, self._describer, self._size)
