"""Analytics over tracked objects: zones, lines, dwell, filters, stationary objects, rules and the event policy.

Everything here is pure computation over Detections and tracker events; nothing does I/O.
`Analytics.update(frame, tracked, events)` returns the `app.types.FrameResult` every output reads.
"""
from app.analytics.config import (
    EventsConfig,
    FiltersConfig,
    LabelFilter,
    LineConfig,
    StationaryConfig,
    ZoneConfig,
)
from app.analytics.describe import TracksView
from app.analytics.engine import Analytics
from app.analytics.rules import RULES, Rule, Seen

__all__ = [
    "Analytics",
    "EventsConfig",
    "FiltersConfig",
    "LabelFilter",
    "LineConfig",
    "RULES",
    "Rule",
    "Seen",
    "StationaryConfig",
    "TracksView",
    "ZoneConfig",
]
