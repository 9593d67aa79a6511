"""Camera parameters (manifest `paramConfig`) mapped onto Vigil's config keys.

On the camera, settings made in the app's web page are stored as parameters
`root.<AppName>.<Name>` and read here through ACAP Runtime's KeyValueStore service.
PARAMS is the one table: manifest.json's paramConfig is checked against it by a test,
and `overrides()` turns fetched values into dotted config keys.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from app.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Param:
    """One camera parameter: its name and Axis type string, the config key, and value converters."""

    name: str
    type: str
    key: str
    to_config: Callable[[str], Any]
    to_param: Callable[[Any], str]


def _percent(v: str) -> float:
    return int(v) / 100


def _bool(v: str) -> bool:
    if v not in ("yes", "no"):
        raise ValueError(f"expected yes or no, got {v!r}")
    return v == "yes"


def _tiling(v: str) -> bool | None:
    """auto (tiles only for large frames), yes or no."""
    if v not in ("auto", "yes", "no"):
        raise ValueError(f"expected auto, yes or no, got {v!r}")
    return None if v == "auto" else v == "yes"


def _enum(values: list[str]) -> Callable[[str], str]:
    def conv(v: str) -> str:
        if v not in values:
            raise ValueError(f"expected one of {', '.join(values)}, got {v!r}")
        return v

    return conv


PARAMS: list[Param] = [
    Param("ModelPath", "string", "model.path", str, lambda v: ""),  # "" = keep the configured model
    Param("ScoreThresholdPercent", "int:maxlen=3;min=0;max=100", "decoder.score_threshold", _percent,
          lambda v: str(round(v * 100))),
    Param("IouThresholdPercent", "int:maxlen=3;min=0;max=100", "decoder.iou_threshold", _percent,
          lambda v: str(round(v * 100))),
    Param("Tracker", "enum:sort|SORT, bytetrack|ByteTrack", "tracker.type", _enum(["sort", "bytetrack"]), str),
    Param("Tiling", "enum:auto|Auto, no|No, yes|Yes", "preprocess.tiling.enabled",
          _tiling, lambda v: "auto" if v is None else ("yes" if v else "no")),
    Param("StreamWidth", "int:maxlen=4;min=16;max=3840", "source.stream.width", int, str),
    Param("StreamHeight", "int:maxlen=4;min=16;max=2160", "source.stream.height", int, str),
    Param("StreamFramerate", "int:maxlen=2;min=1;max=30", "source.stream.framerate", int, str),
    Param("LogLevel", "enum:debug|Debug, info|Info, warning|Warning, error|Error", "log_level",
          _enum(["debug", "info", "warning", "error"]), str),
]


def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def param_config(defaults) -> list[dict[str, str]]:
    """manifest.json `paramConfig` entries for PARAMS, with defaults taken from a Config."""
    return [{"name": p.name, "default": p.to_param(_get(defaults, p.key)), "type": p.type} for p in PARAMS]


def overrides(values: dict[str, str]) -> dict[str, Any]:
    """Dotted config overrides from parameter values (by parameter name); empty strings are skipped."""
    out: dict[str, Any] = {}
    for p in PARAMS:
        raw = values.get(p.name)
        if raw is None or raw == "":
            continue
        try:
            out[p.key] = p.to_config(raw.strip())
        except ValueError as e:
            raise ConfigError(f"camera parameter {p.name}: {e}") from None
    return out


def fetch(acap, names: list[str] | None = None, wait: float | None = None) -> dict[str, str]:
    """Values of the app's parameters from ACAP Runtime's KeyValueStore; missing ones are left out.

    Waits for the server up to acap.connect_timeout (0: as long as it takes), or quietly up to
    `wait` seconds when given (polling)."""
    import grpc

    from app import protos
    from app.backends.acap_runtime_client import Endpoint

    pb = protos.load()
    endpoint = Endpoint.from_config(acap)
    names = names or [p.name for p in PARAMS]
    values: dict[str, str] = {}
    with endpoint.channel() as channel:
        stub = pb.keyvaluestore_pb2_grpc.KeyValueStoreStub(channel)
        ready = grpc.channel_ready_future(channel)
        # connect_timeout 0: wait as long as it takes (a camera still booting)
        limit = wait if wait is not None else (acap.connect_timeout or None)
        first = min(2.0, limit) if limit else 2.0
        try:
            try:
                ready.result(timeout=first)
            except grpc.FutureTimeoutError:
                if limit is not None and limit <= first:
                    raise
                if wait is None:
                    log.warning("waiting for ACAP Runtime at %s to read the camera parameters (%s)",
                                endpoint.address, endpoint.unreachable_hint())
                ready.result(timeout=limit - first if limit is not None else None)
        except grpc.FutureTimeoutError:
            raise ConfigError(
                f"acap_runtime.parameters: cannot read camera parameters: {endpoint.unreachable_hint()}"
            ) from None
        for name in names:
            # one stream per key: the server ends a stream at the first unknown key
            key = f"{acap.parameter_prefix}.{name}"
            try:
                for reply in stub.GetValues(iter([pb.keyvaluestore_pb2.Request(key=key)]), timeout=acap.timeout):
                    values[name] = reply.value
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    raise ConfigError(f"acap_runtime.parameters: reading {key} failed: {e.code().name} {e.details()}") from None
                log.debug("parameter %s not set", key)
    log.log(logging.INFO if wait is None else logging.DEBUG, "read %d camera parameters from %s",
            len(values), endpoint.address)
    return values


class ParameterWatch:
    """Re-reads the camera parameters every `interval` s and calls `on_change(names)` once when one
    differs from `baseline` (the values the running config was built from). A server that does not
    answer is skipped until the next check."""

    def __init__(self, acap, baseline: dict[str, str], interval: float, on_change: Callable[[list[str]], None]):
        self.acap = acap
        self.baseline = dict(baseline)
        self.interval = interval
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parameters", daemon=True)

    def start(self) -> "ParameterWatch":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                now = fetch(self.acap, wait=self.acap.timeout)
            except ConfigError as e:  # server restarting: check again later
                log.debug("checking camera parameters: %s", e)
                continue
            changed = sorted(n for n in set(now) | set(self.baseline) if now.get(n) != self.baseline.get(n))
            if changed:
                log.info("camera parameters changed (%s): restarting to apply them", ", ".join(changed))
                self.on_change(changed)
                return

    def close(self) -> None:
        self._stop.set()
