"""Health: each part's own state (written only by that part) and the pure judgement of it all.

`Health` is what a part (the model backend, the source) says it is doing; `assess` turns frozen
snapshots of every part plus the time into ok / degraded / failing per component, with no
threads, locks or clocks of its own, so every rule here is testable with plain values.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

Level = Literal["ok", "degraded", "failing"]
ORDER: dict[str, int] = {"ok": 0, "degraded": 1, "failing": 2}


@dataclass(frozen=True, slots=True)
class PartState:
    """A frozen copy of a part's Health."""

    state: str
    retries: int
    last_error: str
    since: float  # wall clock of the last state change


@dataclass
class Health:
    """What a part is doing now. Only the part itself writes it; the status reads snapshots."""

    state: str = "starting"  # starting | connecting | loading | ready | retrying | failed | closed
    retries: int = 0  # transient failures retried since start
    last_error: str = ""
    since: float = field(default_factory=time.time)  # wall clock of the last state change

    def set(self, state: str, error: str = "") -> None:
        if state != self.state:
            self.since = time.time()
        self.state = state
        if error:
            self.last_error = error

    def snapshot(self) -> PartState:
        return PartState(self.state, self.retries, self.last_error, self.since)


@dataclass(frozen=True, slots=True)
class Component:
    status: Level
    detail: str


@dataclass(frozen=True, slots=True)
class MqttLink:
    """What health needs of the MQTT publisher (None in HealthInputs when MQTT is off)."""

    connected: bool
    state: str
    broker: str
    last_error: str | None
    flapping: str | None = None  # why the connection counts as flapping (LinkState.stable)
    thread: str | None = None  # a network or sender thread that has died or is stuck (MqttPublisher.thread_problem)


@dataclass(frozen=True, slots=True)
class HealthInputs:
    """Everything health is judged on, copied at one instant."""

    backend: PartState
    source: PartState
    source_open: bool  # the source object exists (the model loads first)
    since_open: float  # seconds since the source opened (or since start, before it did)
    since_frame: float | None  # seconds since the last processed frame; None before the first
    processed: int
    read: int  # frames the source has read
    frame_period: float  # seconds between frames of the stream (0 when not known yet)
    detect_p95_ms: float | None
    finished: bool
    mqtt: MqttLink | None
    config_error: str | None = None  # why the saved site file is not what runs (damaged, invalid)
    threads: tuple[str, ...] = ()  # threads other than MQTT's that died or are stuck (app/watchdog.py)
    restarted: tuple[str, ...] = ()  # what the watchdog restarted in the last minute, in words

    @property
    def period(self) -> float:
        """The frame period, 0.1 s until it is known."""
        return self.frame_period or 0.1

    @property
    def stall(self) -> float:
        """Seconds without a frame after which the source counts as stalled: 10 frames, at least 5 s."""
        return max(5.0, 10 * self.period)


_DOING = {
    "starting": "starting",
    "connecting": "connecting",
    "loading": "loading (a first DLPU compile takes minutes)",
}


def part_component(p: PartState, what: str, wall: float) -> Component | None:
    """The component of a part that is not (yet, or no longer) ready; None when it is."""
    if p.state in ("ready", "closed"):
        return None
    age = f"{wall - p.since:.0f} s"
    if p.state == "failed":
        return Component("failing", f"{what} failed: {p.last_error}")
    if p.state == "retrying":
        return Component("degraded", f"{what} retrying for {age} ({p.retries} retries): {p.last_error}")
    detail = f"{what} {_DOING.get(p.state, p.state)} for {age}"
    return Component("degraded", detail + (f"; last error: {p.last_error}" if p.last_error else ""))


def source_component(h: HealthInputs, wall: float) -> Component:
    part = part_component(h.source, "source", wall)
    if not h.source_open and h.source.state == "starting":
        return Component("degraded", "not open yet (the model loads first)")
    if part is not None:
        return part
    stall = h.stall
    age = h.since_frame if h.since_frame is not None else h.since_open
    if h.finished:
        return Component("degraded", "the source has ended")
    if age <= stall:
        return Component("ok", f"last frame {age:.1f} s ago")
    if age <= 12 * stall:
        what = "no frame yet" if h.since_frame is None else f"no frame for {age:.0f} s"
        return Component("degraded", f"{what} (reconnecting?)")
    return Component("failing", f"no frame for {age:.0f} s")


def backend_component(h: HealthInputs, wall: float) -> Component:
    part = part_component(h.backend, "model", wall)
    if part is not None:
        return part
    if h.processed == 0 and h.read > 2 * h.stall / h.period:
        return Component("failing", "frames arrive but none was processed")
    p = h.detect_p95_ms
    return Component("ok", f"inference p95 {p} ms per frame" if p else "starting")


def mqtt_component(m: MqttLink | None) -> Component:
    if m is None:
        return Component("ok", "disabled")
    if m.thread is not None:  # whatever `connected` says: a dead network thread neither sends nor reconnects
        return Component("failing", m.thread)
    if m.flapping is not None:
        return Component("degraded", f"connection to {m.broker} flapping: {m.flapping}")
    if m.connected:
        return Component("ok", f"connected to {m.broker}")
    if m.state == "starting":
        return Component("degraded", f"not connected yet: connects to {m.broker} once the model is loaded "
                                     "and the source is open")
    if m.state == "auth_failed":
        return Component("degraded", f"broker {m.broker} refused the credentials; retrying")
    return Component("degraded", f"not connected to {m.broker} ({m.last_error or 'connecting'}); retrying")


def threads_component(h: HealthInputs) -> Component | None:
    """Failing while a thread is dead or stuck, degraded for a minute after the watchdog restarted one;
    None (no component) while every thread runs and none was restarted lately."""
    if h.threads:
        return Component("failing", "; ".join(h.threads))
    if h.restarted:
        return Component("degraded", "; ".join(h.restarted))
    return None


def assess(h: HealthInputs, wall: float) -> tuple[Level, dict[str, Component]]:
    """Overall level (the worst component) and each component, from snapshots and the wall clock."""
    comps = {"backend": backend_component(h, wall), "source": source_component(h, wall),
             "mqtt": mqtt_component(h.mqtt)}
    if h.config_error:  # running, but not on what was saved: someone must look
        comps["config"] = Component("degraded", h.config_error)
    threads = threads_component(h)
    if threads is not None:
        comps["threads"] = threads
    overall = max((c.status for c in comps.values()), key=ORDER.__getitem__)
    return overall, comps
