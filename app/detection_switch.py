"""Home Assistant's `Detection` switch: while it is off no model runs; everything else goes on.

Frames are still read and counted (camera and processing fps), the API, the status page, MQTT and the
state file keep running. Each frame gets an empty plan (no views, reason `detection off`), so the
tracker sees no detections: tracks end as they would when nothing is seen (`end`, reason `lost`
after the tracker's max age), line and zone counts are kept, and /api/stats reports 0 model runs
for those frames and `detection: false`. On again, the next frame is planned as usual.

The switch itself lives with the Snapshots switch (app/publish/switches.py: MQTT command, retained
state, kept across restarts); this wraps the detector the pipeline runs with and asks it per frame.
A switch that is not offered (MQTT off, or changes over MQTT not accepted) counts as on, so a setting
saved earlier can never leave a camera blind with no way to turn it back on.
"""
from __future__ import annotations

import logging
from typing import Callable

from app.regions.planner import Plan
from app.types import Detections, Frame

log = logging.getLogger(__name__)

OFF = "detection off"  # the plan's reason on frames the switch left out


class SwitchedDetector:
    """The Detector with a switch in front of it (every other attribute is the detector's)."""

    def __init__(self, detector, on: Callable[[], bool]) -> None:
        self._detector = detector
        self._on = on

    def __getattr__(self, name):
        return getattr(self._detector, name)

    def plan(self, frame: Frame, tracker=None) -> Plan:
        try:
            on = self._on()
        except Exception:  # noqa: BLE001 - a broken switch never stops detection
            log.exception("reading the Detection switch failed; detecting")
            on = True
        if on:
            return self._detector.plan(frame, tracker)
        plan = Plan(views=[], reason=OFF)
        self._detector.plans.add(plan)  # a frame with no model run: /api/stats' runs per frame shows it
        return plan

    def prepare(self, frame: Frame, plan: Plan | None = None):
        if plan is not None and plan.reason == OFF:
            return []
        return self._detector.prepare(frame, plan)

    def infer(self, frame: Frame, tensors, plan: Plan | None = None) -> Detections:
        if plan is not None and plan.reason == OFF:
            return Detections()
        return self._detector.infer(frame, tensors, plan)

    def __call__(self, frame: Frame, tracker=None) -> Detections:
        plan = self.plan(frame, tracker)
        return self.infer(frame, self.prepare(frame, plan), plan)


def switched(detector, mqtt) -> "SwitchedDetector":
    """The detector behind the run's Detection switch (`mqtt`: the run's LivePublisher, or None: always on)."""
    if getattr(mqtt, "switches", None) is None:
        return detector
    return SwitchedDetector(detector, lambda: detection_on(mqtt))


def detection_on(mqtt) -> bool:
    """Whether the model runs now (for /api/stats): False only while the Detection switch is off."""
    switches = getattr(mqtt, "switches", None)
    return True if switches is None else switches.on("detection")
