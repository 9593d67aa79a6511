"""Polygon zones, a rule: membership per track with inertia, time of entry, dwell and loitering."""
from __future__ import annotations

import numpy as np

from app.analytics.config import ZoneConfig
from app.analytics.geometry import inside_polygon, polygon_edges
from app.analytics.rules import Seen
from app.analytics.table import Table


def label_mask(wanted: list[list[str]], labels: list[str]) -> np.ndarray:
    """(len(labels)+1, len(wanted)) bool: may class id c take part in item j; the last row is for unknown ids."""
    m = np.ones((len(labels) + 1, len(wanted)), bool)
    for j, names in enumerate(wanted):
        if names:
            m[:-1, j] = [lab in names for lab in labels]
            m[-1, j] = False
    return m


def class_index(class_ids: np.ndarray, n_labels: int) -> np.ndarray:
    """Row of a label_mask/per-class table for each class id (out-of-range ids share the last row)."""
    return np.where((class_ids >= 0) & (class_ids < n_labels), class_ids, n_labels)


class Zones:
    """All configured zones; state lives in the analytics table's zone columns."""

    reasons = ("entered_zone", "left_zone", "loitering")

    def __init__(self, cfg: dict[str, ZoneConfig], labels: list[str],
                 entered: dict[int, list[str]] | None = None) -> None:
        self.names = list(cfg)
        self.cfg = list(cfg.values())
        self.polygons = [polygon_edges(np.asarray(z.polygon, np.float64)) for z in self.cfg]
        self.anchors = [z.anchor for z in self.cfg]
        self.inertia = np.array([z.inertia for z in self.cfg], np.int32)
        self.loitering = np.array([z.loitering_time for z in self.cfg], np.float64)
        self.allowed = label_mask([z.labels for z in self.cfg], labels)
        self.n_labels = len(labels)
        self.entered = entered if entered is not None else {}  # track id -> zones entered so far, in order

    def __len__(self) -> int:
        return len(self.names)

    def columns(self) -> dict:
        return self.spec(len(self.names))

    @staticmethod
    def spec(n: int) -> dict:
        return {
            "member": ((n,), bool, False),
            "streak": ((n,), np.int32, 0),  # consecutive frames disagreeing with membership
            "streak_ts": ((n,), np.float64, 0.0),  # time of the first of those frames
            "enter_ts": ((n,), np.float64, 0.0),
            "dwell": ((n,), np.float64, 0.0),  # seconds of completed stays
            "loiter": ((n,), bool, False),
        }

    def update(self, seen: Seen) -> dict[str, np.ndarray]:
        """Membership of the rows seen; whether each entered, left or started loitering in any zone."""
        T, rows, now = seen.T, seen.rows, seen.now
        k, nz = len(rows), len(self.names)
        if nz == 0 or k == 0:
            return dict.fromkeys(self.reasons, np.zeros(k, bool))
        inside = np.empty((k, nz), bool)
        for z, poly in enumerate(self.polygons):
            inside[:, z] = inside_polygon(seen.points(self.anchors[z]), poly)
        inside &= self.allowed[class_index(seen.class_ids, self.n_labels)]
        member = T.member[rows]
        streak = T.streak[rows]
        streak_ts = T.streak_ts[rows]
        agree = inside == member
        starting = ~agree & (streak == 0)
        streak_ts[starting] = now
        streak = np.where(agree, 0, streak + 1)
        flip = streak >= self.inertia
        entered = flip & ~member
        left = flip & member
        enter_ts = T.enter_ts[rows]
        dwell = T.dwell[rows]
        # Entry and exit are dated to the first frame of the streak, not the frame that confirmed it.
        enter_ts[entered] = streak_ts[entered]
        dwell[left] += streak_ts[left] - enter_ts[left]
        member ^= flip
        streak[flip] = 0
        loiter = member & (self.loitering > 0) & (now - enter_ts >= self.loitering)
        started = loiter & ~T.loiter[rows]
        T.member[rows] = member
        T.streak[rows] = streak
        T.streak_ts[rows] = streak_ts
        T.enter_ts[rows] = enter_ts
        T.dwell[rows] = dwell
        T.loiter[rows] = loiter
        for i, z in zip(*entered.nonzero()):
            history = self.entered.setdefault(int(T.tid[rows[i]]), [])
            if self.names[z] not in history:
                history.append(self.names[z])
        return {"entered_zone": entered.any(axis=1), "left_zone": left.any(axis=1), "loitering": started.any(axis=1)}

    @staticmethod
    def dwell_of(T: Table, i: int) -> np.ndarray:
        """(zones,) seconds track row i has spent in each zone, up to its last detection."""
        current = np.where(T.member[i], T.last_seen[i] - T.enter_ts[i], 0.0)
        return T.dwell[i] + np.clip(current, 0.0, None)
