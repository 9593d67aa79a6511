"""Directional line counting, a rule: a hysteresis band, counted only inside the segment.

Lines hold no lock: the analytics engine owns them and calls them under its one lock."""
from __future__ import annotations

import logging

import numpy as np

from app.analytics.config import LineConfig
from app.analytics.geometry import along, crossing_points, signed_distance
from app.analytics.rules import Seen
from app.analytics.zones import class_index, label_mask

log = logging.getLogger(__name__)

IN, OUT = 0, 1
DIRECTIONS = ("in", "out")


class Lines:
    """All configured lines with their in/out counts per class since the last reset."""

    reasons = ("crossed_line",)

    def __init__(self, cfg: dict[str, LineConfig], labels: list[str], since: float,
                 crossed: dict[int, list[dict]] | None = None) -> None:
        self.names = list(cfg)
        self.cfg = list(cfg.values())
        self.start = np.array([c.start for c in self.cfg], np.float64).reshape(-1, 2)
        self.end = np.array([c.end for c in self.cfg], np.float64).reshape(-1, 2)
        self.band = np.array([c.hysteresis for c in self.cfg], np.float64)
        self.anchors = [c.anchor for c in self.cfg]
        self.allowed = label_mask([c.labels for c in self.cfg], labels)
        self.n_labels = len(labels)
        n = len(self.names)
        # counts[line, direction, class index]; the last class slot gathers ids beyond the label list
        self.counts = np.zeros((n, 2, len(labels) + 1), np.int64)
        self.lifetime = np.zeros((n, 2), np.int64)  # never reset (Prometheus counters)
        self.since = np.full(n, since, np.float64)
        self.crossed = crossed if crossed is not None else {}  # track id -> its crossings ({line, direction, time})
        self.changed = False  # counted a crossing since the engine last read the counts

    def __len__(self) -> int:
        return len(self.names)

    def columns(self) -> dict:
        return self.spec(len(self.names))

    @staticmethod
    def spec(n: int) -> dict:
        return {
            "side": ((n,), np.int8, 0),  # -1 left, +1 right of the line, 0 not yet known
            "side_pt": ((n, 2), np.float64, 0.0),  # last point seen beyond the band on that side
        }

    def update(self, seen: Seen) -> dict[str, np.ndarray]:
        """Sides of the rows seen; count the crossings of published ones; whether each crossed a line."""
        T, rows, counted = seen.T, seen.rows, seen.published
        crossed = np.zeros(len(rows), bool)
        if len(rows) == 0:
            return {"crossed_line": crossed}
        cidx = class_index(seen.class_ids, self.n_labels)
        allowed = self.allowed[cidx]
        for j in range(len(self.names)):
            ok = allowed[:, j]
            if not ok.any():
                continue
            p = seen.points(self.anchors[j])
            s = signed_distance(p, self.start[j], self.end[j])
            new = np.where(s > self.band[j], 1, np.where(s < -self.band[j], -1, 0)).astype(np.int8)
            old = T.side[rows, j]
            flipped = ok & (new != 0) & (old != 0) & (new != old)
            if flipped.any():
                ref = T.side_pt[rows, j]
                s_ref = signed_distance(ref, self.start[j], self.end[j])
                f = flipped.nonzero()[0]
                hit = crossing_points(ref[f], s_ref[f], p[f], s[f])
                t = along(hit, self.start[j], self.end[j])
                # The path must cut the segment itself, not its extension.
                for i in f[(t >= 0.0) & (t <= 1.0) & counted[f]].tolist():
                    d = IN if old[i] < 0 else OUT
                    self.counts[j, d, cidx[i]] += 1
                    self.lifetime[j, d] += 1
                    self.changed = crossed[i] = True
                    self.crossed.setdefault(int(T.tid[rows[i]]), []).append(
                        {"line": self.names[j], "direction": DIRECTIONS[d], "time": round(seen.epoch, 3)})
            upd = ok & (new != 0)
            r = rows[upd]
            T.side[r, j] = new[upd]
            T.side_pt[r, j] = p[upd]
        return {"crossed_line": crossed}

    def reset(self, names: list[str] | None, now: float) -> list[str]:
        """Zero the counts of the named lines (all when None); return the names reset."""
        idx = range(len(self.names)) if names is None else [self.names.index(n) for n in names]
        for j in idx:
            self.counts[j] = 0
            self.since[j] = now
        return [self.names[j] for j in idx]

    def restore(self, states: dict[str, dict], labels: list[str]) -> list[str]:
        """Counts and `since` from saved states (the `state` layout), matched by line and label name;
        return the lines restored. Labels no longer in the list count as "other"."""
        restored = []
        for j, name in enumerate(self.names):
            st = states.get(name)
            if st is None:
                continue
            counts = np.zeros_like(self.counts[j])
            try:
                since = float(st["since"])
                for label, v in st["labels"].items():
                    k = labels.index(label) if label in labels else len(labels)
                    counts[IN, k] += int(v["in"])
                    counts[OUT, k] += int(v["out"])
                if (counts < 0).any() or not np.isfinite(since):
                    raise ValueError("negative count or bad time")
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                log.warning("saved counts of line %s are malformed (%s); it starts from 0", name, e)
                continue
            self.counts[j] = counts
            self.since[j] = since
            restored.append(name)
        return restored

    def state(self, j: int, labels: list[str]) -> dict:
        """The retained payload of line j: totals since the last reset and a per-label breakdown."""
        c = self.counts[j]
        since = float(self.since[j])
        by_label = {}
        for k in np.flatnonzero(c.sum(axis=0)).tolist():
            name = labels[k] if k < len(labels) else "other"
            by_label[name] = {"in": int(c[IN, k]), "out": int(c[OUT, k])}
        return {"in": int(c[IN].sum()), "out": int(c[OUT].sum()), "since": round(since, 3), "labels": by_label}
