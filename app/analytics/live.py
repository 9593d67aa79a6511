"""New zones, lines, filters and event settings applied to running analytics between two frames.

Tracks keep their rows (and so their ids, ages, published state and history). A zone or line whose
definition did not change keeps its per-track state; a line whose geometry (ends, band, anchor,
labels) did not change also keeps its counts and `since`. A new, renamed or moved line starts from 0
at the time of the change: its old counts were of another line. A new or moved zone learns who is
inside from the next frames (after its inertia), so objects already there enter it then.
"""
from __future__ import annotations

import time

from app.analytics.config import EventsConfig, FiltersConfig, LineConfig, StationaryConfig, ZoneConfig
from app.analytics.lines import Lines
from app.analytics.table import Table
from app.analytics.zones import Zones


def same(a, b) -> bool:
    return a is not None and b is not None and a.model_dump() == b.model_dump()


def carry_columns(old: Table, new_spec: dict, zone_map: dict[int, int], line_map: dict[int, int]) -> Table:
    """A table with `new_spec`'s columns holding old's rows: per-track columns copied, zone and line
    columns copied for kept items (new index -> old index), defaults for the rest."""
    t = Table(new_spec)
    if len(old):
        t.add(old.tid.copy())
    zone_cols = set(Zones.spec(0))
    line_cols = set(Lines.spec(0))
    for name, arr in t.cols.items():
        src = old.cols.get(name)
        if src is None or not len(old):
            continue
        if name in zone_cols or name in line_cols:
            for j_new, j_old in (zone_map if name in zone_cols else line_map).items():
                arr[:, j_new] = src[:, j_old]
        elif name != "tid":
            arr[...] = src
    return t


def reconfigure(a, zones: dict[str, ZoneConfig], lines: dict[str, LineConfig], filters: FiltersConfig,
                stationary: StationaryConfig, events: EventsConfig) -> list[str]:
    """Apply the settings to Analytics `a` (its lock held by the caller); return the lines that kept their counts."""
    now = time.time()
    old_zones = dict(zip(a.zones.names, a.zones.cfg))
    old_lines = dict(zip(a.lines.names, a.lines.cfg))
    # a removed zone leaves the histories (its dwell is gone with it); crossings stay in them
    entered = {tid: [n for n in names if n in zones] for tid, names in a.zones.entered.items()}
    a.zones = Zones(zones, a.labels, entered)
    new_lines = Lines(lines, a.labels, since=now, crossed=a.lines.crossed)
    zone_map = {j: a_old for j, n in enumerate(a.zones.names)
                for a_old, m in enumerate(old_zones) if m == n and same(zones[n], old_zones[m])}
    line_map = {j: j_old for j, n in enumerate(new_lines.names)
                for j_old, m in enumerate(old_lines) if m == n and same(lines[n], old_lines[m])}
    for j, j_old in line_map.items():
        new_lines.counts[j] = a.lines.counts[j_old]
        new_lines.lifetime[j] = a.lines.lifetime[j_old]
        new_lines.since[j] = a.lines.since[j_old]
    a.lines = new_lines
    a.filters, a.stationary, a.policy = filters, stationary, events
    a.T = carry_columns(a.T, a.columns(), zone_map, line_map)
    a._describer.zone_names, a._describer.line_names = list(a.zones.names), list(a.lines.names)
    for z in a.zones.cfg:
        for lab in z.labels:
            if lab not in a.count_labels:
                a.count_labels.append(lab)
    a._per_class_filters()
    a._recount()
    a._restate_lines()
    return [new_lines.names[j] for j in line_map]
