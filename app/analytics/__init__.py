"""Analytics over tracked objects: zones, lines, dwell, filters, stationary objects and the event policy.

Everything here is pure computation over Detections and tracker events; nothing does I/O.
`Analytics.update(frame, tracked, events)` returns a `FrameResult` that publishers read.
"""
from app.analytics.config import (
    EventsConfig,
    FiltersConfig,
    LabelFilter,
    LineConfig,
    StationaryConfig,
    ZoneConfig,
)
from app.analytics.engine import Analytics, FrameResult, TracksView

__all__ = [
    "Analytics",
    "EventsConfig",
    "FiltersConfig",
    "FrameResult",
    "LabelFilter",
    "LineConfig",
    "StationaryConfig",
    "TracksView",
    "ZoneConfig",
]
