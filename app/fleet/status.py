"""`vigil fleet status`: every camera's health, rates, feed link and identity, one line each."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass

from app.fleet.client import Pool, Target, Unreachable, detail, each, refused


@dataclass
class CameraStatus:
    """One camera's answer to /api/health, /api/stats and /api/events?limit=1."""

    name: str
    url: str
    reachable: bool
    health: str  # ok / degraded / failing, or unreachable / unauthorised / error
    problem: str | None = None  # why not ok: the failing components, the refusal, the connection error
    process_fps: float | None = None
    model_runs_per_frame: float | None = None
    mqtt: str | None = None  # the publisher's state, or "off"
    version: str | None = None
    device_id: str | None = None
    last_event_age: float | None = None  # seconds, on the camera's own clock
    uptime: float | None = None
    answered_in_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.reachable and self.health == "ok"


async def camera_status(pool: Pool, target: Target) -> CameraStatus:
    """Ask one camera; every failure becomes a CameraStatus saying why (never an exception)."""
    t0 = time.monotonic()
    # one after the other on one kept-alive connection: a third of the TCP (and TLS, digest) handshakes
    health_r = await pool.request(target, "GET", "api/health")
    stats_r = await pool.request(target, "GET", "api/stats")
    events_r = await pool.request(target, "GET", "api/events", params={"limit": 1})
    row = CameraStatus(target.name, target.url, reachable=True, health="error",
                       answered_in_ms=round((time.monotonic() - t0) * 1000, 1))
    for r in (health_r, stats_r, events_r):
        why = refused(r)
        if why:
            row.health, row.problem = "unauthorised", why
            return row
    if health_r.status_code not in (200, 503):
        row.problem = f"/api/health: {detail(health_r)}"
        return row
    try:
        health = health_r.json()
        row.health = health["status"]
        bad = {k: c for k, c in health.get("components", {}).items() if c.get("status") != "ok"}
        if bad:
            row.problem = "; ".join(f"{k}: {c.get('status')} ({c.get('detail', '')})" for k, c in bad.items())[:300]
        if stats_r.status_code == 200:
            stats = stats_r.json()
            row.process_fps = stats.get("process_fps")
            row.model_runs_per_frame = stats.get("model_runs_per_frame")
            mqtt = stats.get("mqtt") or {}
            row.mqtt = mqtt.get("state", "?") if mqtt.get("enabled") else "off"
            row.version, row.device_id, row.uptime = stats.get("version"), stats.get("device_id"), stats.get("uptime")
            events = events_r.json() if events_r.status_code == 200 else []
            if events:
                last = events[-1].get("after") or {}
                at = last.get("end_time") or last.get("frame_time")
                if isinstance(at, (int, float)) and isinstance(stats.get("timestamp"), (int, float)):
                    row.last_event_age = max(0.0, stats["timestamp"] - at)
        else:
            row.problem = (row.problem + "; " if row.problem else "") + f"/api/stats: {detail(stats_r)}"
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        row.health, row.problem = "error", f"not a Vigil answer ({type(e).__name__}: {str(e)[:80]})"
    return row


async def fleet_status(targets: list[Target], pool: Pool, concurrency: int, deadline: float) -> list[CameraStatus]:
    """Every camera's status, at most `concurrency` asked at once, each within `deadline` seconds."""

    def failed(target: Target, e: BaseException) -> CameraStatus:
        return CameraStatus(target.name, target.url, reachable=False, health="unreachable",
                            problem=str(e) if isinstance(e, Unreachable) else repr(e))

    return await each(pool, targets, lambda t: camera_status(pool, t), concurrency, deadline, "status", failed)


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


COLUMNS = ("CAMERA", "HEALTH", "FPS", "RUNS/F", "MQTT", "VERSION", "DEVICE", "LAST EVENT", "UPTIME")


def table(rows: list[CameraStatus]) -> str:
    """The human output: one line per camera (its problem indented under it), then a summary."""
    cells = [COLUMNS]
    for r in rows:
        cells.append((r.name, r.health,
                      "-" if r.process_fps is None else f"{r.process_fps:.1f}",
                      "-" if r.model_runs_per_frame is None else f"{r.model_runs_per_frame:.2f}",
                      r.mqtt or "-", r.version or "-", r.device_id or "-", age(r.last_event_age), age(r.uptime)))
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = []
    for i, c in enumerate(cells):
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
        if i and rows[i - 1].problem and not rows[i - 1].ok:
            lines.append(f"    {rows[i - 1].problem}")
    lines.append(summary(rows))
    return "\n".join(lines)


def summary(rows: list[CameraStatus]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.health] = counts.get(r.health, 0) + 1
    order = ("ok", "degraded", "failing", "unauthorised", "error", "unreachable")
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    return f"{len(rows)} cameras: {', '.join(parts)}"


def print_status(rows: list[CameraStatus], as_json: bool, seconds: float) -> int:
    """Print the rows; the exit code: 0 when every camera is reachable and ok, else 1."""
    ok = all(r.ok for r in rows)
    if as_json:
        doc = {"cameras": [{**asdict(r), "ok": r.ok} for r in rows],
               "summary": {"cameras": len(rows), "ok": sum(r.ok for r in rows),
                           "unreachable": sum(not r.reachable for r in rows), "seconds": round(seconds, 3)}}
        print(json.dumps(doc, indent=2))
    else:
        print(table(rows))
        print(f"asked in {seconds:.2f} s", file=sys.stderr)
    return 0 if ok else 1
