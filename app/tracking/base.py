"""What SORT and ByteTrack share: a track table held as arrays, the clock, lifecycle events.

Tracks live in two arrays, one float64 and one int64, with one row per track
(columns below), so prediction, matching and bookkeeping are array operations
over all tracks. Rows of ended tracks are dropped every frame; nothing is kept
per ID once a track ends.
"""
from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from app.tracking import kalman, labelvote
from app.tracking.events import END, NEW, TrackEvents
from app.tracking.predicted import TrackPredictions, stationary_flags
from app.types import Detections

log = logging.getLogger(__name__)

# Float table columns after the Kalman state (0..19, see kalman.py).
FIRST_SEEN = kalman.STATE_COLUMNS  # timestamp of the first detection
LAST_SEEN = FIRST_SEEN + 1  # timestamp of the latest matched detection
BEST_SCORE = FIRST_SEEN + 2
SCORE = FIRST_SEEN + 3  # latest matched detection's score
BOX = slice(FIRST_SEEN + 4, FIRST_SEEN + 8)  # Kalman-filtered box at the latest match, xyxy
W_LABEL = FIRST_SEEN + 8  # the label vote's weight of CLASS (app/tracking/labelvote.py)
W_RIVAL = FIRST_SEEN + 9  # and of RIVAL
FLOAT_COLUMNS = FIRST_SEEN + 12  # two spare: a multiple of 4 (kalman.update's blocks)

# Int table columns.
ID = 0  # -1 until confirmed
STATE = 1
CLASS = 2  # the label the track publishes (a score-weighted vote with hysteresis, labelvote.py)
RIVAL = 3  # the label that would replace it (-1: none yet)
HITS = 4  # detections matched, including the first
INT_COLUMNS = 5
# kalman.update views gathered rows as (n, FLOAT_COLUMNS / 4, 2, 2) blocks.
assert FLOAT_COLUMNS % 4 == 0

TENTATIVE, TRACKED, LOST_STATE = 0, 1, 2

MAX_SIDE = 1e6  # px; a box side this large is a decoder error, not an object
MAX_PENDING_EVENTS = 100_000  # undrained events beyond this are dropped, oldest first
PERIOD_WINDOW = 15  # frame intervals in the running median that estimates the frame period
DEFAULT_PERIOD = 1.0 / 30


@dataclass(slots=True)
class TrackerStats:
    """Counters a tracker keeps; all are totals since creation except the live counts."""

    frames: int = 0
    detections: int = 0  # valid detections received
    invalid_detections: int = 0  # dropped: NaN/inf coordinates or score, zero or negative area
    tracks_started: int = 0  # tentative tracks created
    tracks_confirmed: int = 0  # IDs issued
    tracks_ended: int = 0  # confirmed tracks removed
    events_dropped: int = 0  # events discarded because nobody drained them
    clock_resets: int = 0  # timestamps that went backwards (source restarted)
    live_tracks: int = 0  # confirmed tracks currently held (tracked + lost)
    tentative_tracks: int = 0
    frame_period: float = DEFAULT_PERIOD  # seconds, running median of frame intervals


class TableTracker:
    """Base of the array trackers: table, clock, sanitising, events, output."""

    def __init__(self, per_class: bool, class_groups: np.ndarray | None = None) -> None:
        self.per_class = per_class
        # per class id, the id that per-class matching compares (a van seen as car, then truck,
        # keeps its track); None compares the class ids themselves
        self.class_groups = None if class_groups is None else np.asarray(class_groups, np.int64)
        self._f = np.zeros((0, FLOAT_COLUMNS))
        self._i = np.zeros((0, INT_COLUMNS), np.int64)
        self._next_id = 1
        self._now: float | None = None
        self._dts: deque[float] = deque(maxlen=PERIOD_WINDOW)
        self._period = DEFAULT_PERIOD
        self._fresh = True  # no frame seen since start or end_all(): tracks are confirmed at birth
        self._pending: deque[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = deque()
        self._pending_n = 0
        self._stats = TrackerStats()
        # Event rows and kinds collected during one update() and gathered once at its end.
        self._ev_rows: list[np.ndarray] = []
        self._ev_kinds: list[int] = []

    # ---- public -----------------------------------------------------------------

    @property
    def stats(self) -> TrackerStats:
        """A copy of the counters plus the current number of live and tentative tracks (any thread)."""
        state = self._i[:, STATE]  # read from other threads too: at worst a count one frame old
        tentative = int(np.count_nonzero(state == TENTATIVE))
        return replace(self._stats, tentative_tracks=tentative, live_tracks=len(state) - tentative,
                       frame_period=self._period)

    def predicted(self, now: float, still_speed: float = 0.1) -> TrackPredictions:
        """Every live track (tentative ones with id -1) predicted to time `now`, with its last matched
        box and score, whether the latest update matched it, and whether it stands still (slower than
        `still_speed` box heights per second once followed for SETTLE seconds)."""
        f, i = self._f, self._i
        if len(f) == 0:
            return TrackPredictions()
        last = self._now if self._now is not None else now
        state = kalman.advanced(f, max(0.0, now - last))
        kind = i[:, STATE]
        return TrackPredictions(
            ids=np.where(kind == TENTATIVE, -1, i[:, ID]),
            xyxy=kalman.xyxy(state),
            last_xyxy=f[:, BOX].copy(),
            scores=f[:, SCORE].astype(np.float32),
            class_ids=i[:, CLASS].astype(np.int32),
            matched=(kind == TRACKED) & (f[:, LAST_SEEN] >= last),
            stationary=stationary_flags(f[:, 4:6], f[:, 3], last - f[:, FIRST_SEEN], still_speed),
        )

    def pop_events(self) -> TrackEvents:
        """Return and clear the lifecycle events since the last call, oldest first."""
        if not self._pending:
            return TrackEvents()
        if len(self._pending) == 1:
            kinds, f, i, now = self._pending.popleft()
            ts = np.full(len(f), now)
        else:
            batches = list(self._pending)
            self._pending.clear()
            kinds = np.concatenate([k for k, _, _, _ in batches])
            f = np.concatenate([b[1] for b in batches])
            i = np.concatenate([b[2] for b in batches])
            ts = np.concatenate([np.full(len(b[1]), b[3]) for b in batches])
        self._pending_n = 0
        return TrackEvents._trusted(
            kinds,
            i[:, ID],
            i[:, CLASS].astype(np.int32),
            ts,
            f[:, FIRST_SEEN],
            f[:, LAST_SEEN],
            i[:, HITS],
            f[:, BEST_SCORE].astype(np.float32),
            f[:, SCORE].astype(np.float32),
            f[:, BOX].astype(np.float32),
            f[:, 4:6].astype(np.float32),  # centre velocity
        )

    def end_all(self, timestamp: float | None = None) -> None:
        """End every track (emitting `end` for confirmed ones); the next frame starts afresh, IDs keep counting."""
        ts = self._now if timestamp is None or not math.isfinite(timestamp) else float(timestamp)
        confirmed = (self._i[:, STATE] != TENTATIVE).nonzero()[0]
        self._stats.tracks_ended += len(confirmed)
        self._emit(END, confirmed)
        self._flush_events(0.0 if ts is None else ts)
        self._f = self._f[:0]
        self._i = self._i[:0]
        self._now = None
        self._fresh = True

    def expire(self, now: float) -> None:
        """End the tracks unseen for longer than the tracker keeps them, at time `now`, without a frame:
        while no frame gets through, tracks end when the next frame would have ended them (a camera
        that is gone must not keep showing its people). Nothing happens before a frame interval has
        been measured (how late a frame is cannot be told before). Neither counts a frame nor moves
        the clock."""
        if not len(self._f) or not self._dts or not math.isfinite(now) or now <= self._now:
            return
        dead = self._expired(now, self._allowed_gap())
        if dead.any():
            fresh = self._fresh
            self._finish(now, dead)
            self._fresh = fresh

    # ---- steps used by subclasses ---------------------------------------------

    def _allowed_gap(self) -> float:
        """Seconds of missing detections a track survives (the tracker's buffer)."""
        raise NotImplementedError

    def _sanitize(self, dets: Detections) -> Detections:
        """Drop boxes a decoder should never emit (non-finite, zero, negative or absurd size)."""
        b = dets.xyxy
        n = len(b)
        if n == 0:
            return dets
        wh = b[:, 2:4] - b[:, 0:2]
        # Fast path: NaN makes min() NaN and fail the test; an infinite side fails max().
        if wh.min() > 0 and wh.max() < MAX_SIDE and math.isfinite(float(dets.scores.sum())):
            self._stats.detections += n
            return dets
        with np.errstate(invalid="ignore", over="ignore"):
            ok = ((wh > 0) & (wh < MAX_SIDE)).all(axis=1) & np.isfinite(dets.scores)
        bad = n - int(np.count_nonzero(ok))
        if self._stats.invalid_detections == 0:
            log.warning("dropping %d invalid detection box(es) (NaN/inf or zero area); counted in stats", bad)
        self._stats.invalid_detections += bad
        self._stats.detections += n - bad
        return dets[ok]

    def _advance(self, timestamp: float) -> tuple[float, float]:
        """Move the clock to timestamp; return (now, dt). A large backward jump ends all tracks."""
        self._stats.frames += 1
        ts = float(timestamp)
        if self._now is None:
            if not math.isfinite(ts):
                ts = 0.0
            self._now = ts
            return ts, 0.0
        if not math.isfinite(ts):
            ts = self._now + self._period
        dt = ts - self._now
        if dt < 0:
            if dt >= -self._period:
                return self._now, 0.0  # clock jitter: treat as the same instant
            log.warning("timestamp went back %.3f s: source restarted, ending all tracks", -dt)
            self._stats.clock_resets += 1
            self.end_all(self._now)
            self._now = ts
            return ts, 0.0
        if dt > 0:
            self._dts.append(dt)
            self._period = sorted(self._dts)[len(self._dts) // 2]
        self._now = ts
        return ts, dt

    def _expired(self, now: float, allowed_gap: float) -> np.ndarray:
        """Mask of tracks unseen for longer than allowed_gap seconds of missing frames."""
        # A track that misses k frames is next seen (k + 1) periods after its last
        # detection; half a period of slack absorbs timestamp jitter.
        return now - self._f[:, LAST_SEEN] > allowed_gap + 1.5 * self._period

    def _class_gate(self, iou: np.ndarray, dets: Detections) -> np.ndarray:
        """Zero the IoU of pairs whose classes differ, when tracking per class."""
        if self.per_class and iou.size:
            a, b = self._i[:, CLASS], dets.class_ids
            if self.class_groups is not None:
                g = self.class_groups
                a, b = g[np.clip(a, 0, len(g) - 1)], g[np.clip(b, 0, len(g) - 1)]
            iou *= a[:, None] == b[None, :]
        return iou

    def _commit(self, t_rows: np.ndarray, d_rows: np.ndarray, dets: Detections, now: float) -> None:
        """Kalman-update tracks t_rows with detections d_rows and record what was seen."""
        if len(t_rows) == 0:
            return
        boxes = dets.xyxy.take(d_rows, 0)
        scores = dets.scores.take(d_rows)
        rows = self._f.take(t_rows, 0)
        kalman.update(rows, kalman.cxcywh(boxes))
        rows[:, LAST_SEEN] = now
        rows[:, SCORE] = scores
        np.maximum(rows[:, BEST_SCORE], scores, out=rows[:, BEST_SCORE])
        rows[:, BOX] = kalman.xyxy(rows)
        ints = self._i.take(t_rows, 0)
        ints[:, HITS] += 1
        labelvote.vote(ints[:, CLASS], ints[:, RIVAL], rows[:, W_LABEL], rows[:, W_RIVAL],
                       dets.class_ids.take(d_rows), scores)
        self._f[t_rows] = rows
        self._i[t_rows] = ints

    def _spawn(self, d_rows: np.ndarray, dets: Detections, now: float, confirm: bool) -> np.ndarray:
        """Start tracks from detections d_rows; return their row indices."""
        k = len(d_rows)
        n = len(self._f)
        if k == 0:
            return d_rows
        boxes = dets.xyxy.take(d_rows, 0)
        scores = dets.scores.take(d_rows)
        f = np.concatenate((kalman.initiate(kalman.cxcywh(boxes)), np.empty((k, FLOAT_COLUMNS - FIRST_SEEN))), axis=1)
        f[:, FIRST_SEEN] = now
        f[:, LAST_SEEN] = now
        f[:, BEST_SCORE] = scores
        f[:, SCORE] = scores
        f[:, BOX] = boxes
        f[:, W_LABEL] = scores
        f[:, W_RIVAL:] = 0.0
        i = np.zeros((k, INT_COLUMNS), np.int64)
        i[:, ID] = -1
        i[:, CLASS] = dets.class_ids.take(d_rows)
        i[:, RIVAL] = -1
        i[:, HITS] = 1
        self._f = np.concatenate((self._f, f))
        self._i = np.concatenate((self._i, i))
        self._stats.tracks_started += k
        rows = np.arange(n, n + k)
        if confirm:
            self._confirm(rows)
        return rows

    def _confirm(self, rows: np.ndarray) -> None:
        """Issue IDs to tentative tracks rows and mark them tracked (emits `new`)."""
        k = len(rows)
        if k == 0:
            return
        self._i[rows, ID] = np.arange(self._next_id, self._next_id + k)
        self._i[rows, STATE] = TRACKED
        self._next_id += k
        self._stats.tracks_confirmed += k
        self._emit(NEW, rows)

    def _emit(self, kind: int, rows: np.ndarray) -> None:
        if len(rows):
            self._ev_rows.append(rows)
            self._ev_kinds.append(kind)

    def _finish(self, now: float, dead: np.ndarray) -> None:
        """Emit `end` for dead confirmed tracks, gather this frame's events, drop dead rows."""
        if dead.any():
            if len(dead) < len(self._f):  # rows spawned this frame are never dead
                dead = np.concatenate((dead, np.zeros(len(self._f) - len(dead), bool)))
            ended = (dead & (self._i[:, STATE] != TENTATIVE)).nonzero()[0]
            self._stats.tracks_ended += len(ended)
            self._emit(END, ended)
            self._flush_events(now)
            keep = ~dead
            self._f = self._f[keep]
            self._i = self._i[keep]
        else:
            self._flush_events(now)
        self._fresh = False

    def _flush_events(self, now: float) -> None:
        """Copy the rows of this frame's events out of the table into the pending queue."""
        if not self._ev_rows:
            return
        if len(self._ev_rows) == 1:
            rows = self._ev_rows[0]
            kinds = np.full(len(rows), self._ev_kinds[0], np.uint8)
        else:
            rows = np.concatenate(self._ev_rows)
            kinds = np.repeat(np.array(self._ev_kinds, np.uint8), [len(r) for r in self._ev_rows])
        self._ev_rows = []
        self._ev_kinds = []
        self._pending.append((kinds, self._f.take(rows, 0), self._i.take(rows, 0), now))
        self._pending_n += len(rows)
        while self._pending_n > MAX_PENDING_EVENTS and len(self._pending) > 1:
            dropped = len(self._pending.popleft()[1])
            self._pending_n -= dropped
            if self._stats.events_dropped == 0:
                log.warning("track events are not being drained (pop_events); dropping the oldest")
            self._stats.events_dropped += dropped

    def _output(self, t_rows: np.ndarray, d_rows: np.ndarray, dets: Detections) -> Detections:
        """Confirmed tracks matched this frame, in the input order of their detections.

        Boxes are the Kalman-filtered boxes (steadier than raw detections: less flicker
        across a counting line), scores the matched detections', classes the tracks' voted
        labels (labelvote.py).
        """
        if len(t_rows) == 0:
            return Detections()
        order = d_rows.argsort()
        t = t_rows.take(order)
        ints = self._i.take(t, 0)
        boxes = self._f.take(t, 0)[:, BOX].astype(np.float32)
        return Detections(boxes, dets.scores.take(d_rows.take(order)), ints[:, CLASS], ints[:, ID])
