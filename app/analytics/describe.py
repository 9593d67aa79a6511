"""Event objects: one published track as Frigate's field names plus Vigil's, and a thread-safe view
of all of them at one frame (GET /api/tracks)."""
from __future__ import annotations

import numpy as np

from app.analytics.table import Table
from app.analytics.zones import Zones
from app.events import TrackedObject
from app.labels import label_name


class Describer:
    """Builds the event object (app.events.TrackedObject) for one table row."""

    def __init__(self, labels, zone_names, line_names, run_id, device_id, offset) -> None:
        self.labels = labels
        self.zone_names = zone_names
        self.line_names = line_names
        self.run_id = run_id
        self.device_id = device_id
        self.offset = offset

    def describe(self, T: Table, i: int, entered: list, crossed: list, size: tuple[int, int],
                 end: bool = False) -> TrackedObject:
        w_img, h_img = size
        # the tracker's filtered box may reach past the frame edge; report the visible part
        x1, y1, x2, y2 = (float(v) for v in np.clip(T.box[i], 0, (w_img, h_img, w_img, h_img)))
        w, h = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
        last = float(T.last_seen[i]) + self.offset
        member = T.member[i]
        dwell = Zones.dwell_of(T, i) if len(self.zone_names) else np.zeros(0)
        tid = int(T.tid[i])
        return TrackedObject.model_validate({
            "id": f"{self.run_id}-{tid}",
            "track_id": tid,
            "camera": self.device_id,
            "label": label_name(self.labels, int(T.cls[i])),
            "score": round(float(T.score[i]), 4),
            "top_score": round(float(T.top[i]), 4),
            "box": [int(round(v)) for v in (x1, y1, x2, y2)],
            "box_norm": [round(x1 / w_img, 4), round(y1 / h_img, 4), round(x2 / w_img, 4), round(y2 / h_img, 4)],
            "area": int(round(w * h)),
            "ratio": round(w / h, 3) if h > 0 else 0.0,
            "velocity": [round(float(T.vel[i, 0]), 1), round(float(T.vel[i, 1]), 1)],
            "start_time": round(float(T.first_seen[i]) + self.offset, 3),
            "end_time": round(last, 3) if end else None,
            "frame_time": round(last, 3),
            "current_zones": [self.zone_names[z] for z in np.flatnonzero(member).tolist()],
            "entered_zones": list(entered),
            "dwell": {self.zone_names[z]: round(float(dwell[z]), 2) for z in
                      sorted({self.zone_names.index(n) for n in entered})},
            "loitering_zones": [self.zone_names[z] for z in np.flatnonzero(T.loiter[i]).tolist()],
            "lines_crossed": list(crossed),
            "stationary": bool(T.stationary[i]),
            "motionless_count": int(T.motionless[i]),
            # decided with the snapshot store when the result is made (app/snapshots/flags.py)
            "has_snapshot": False,
        })


class TracksView:
    """A copy of the published tracks at one frame, turned into event objects on demand (any thread)."""

    def __init__(self, T: Table, entered: dict, crossed: dict, describer: Describer, size) -> None:
        self._T, self._entered, self._crossed, self._d, self._size = T, entered, crossed, describer, size

    def __len__(self) -> int:
        return int(np.count_nonzero(self._T.published))

    def objects(self) -> list[dict]:
        """Each published track's event object as a new JSON-ready dict (the reader's own)."""
        T = self._T
        return [
            self._d.describe(T, i, self._entered.get(int(T.tid[i]), ()), self._crossed.get(int(T.tid[i]), ()),
                             self._size).doc()
            for i in np.flatnonzero(T.published).tolist()
        ]
