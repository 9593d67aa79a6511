"""Camera parameters (manifest `paramConfig`) mapped onto Vigil's config keys.

On the camera, settings made in the app's web page are stored as parameters
`root.<AppName>.<Name>` and read here through ACAP Runtime's KeyValueStore service.
PARAMS is the one table: manifest.json's paramConfig is checked against it by a test,
and `overrides()` turns fetched values into dotted config keys.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import grpc

from app.acap.client import AcapClient, AcapRuntimeError, Endpoint
from app.callbacks import Guarded
from app.errors import ConfigError
from app.retry import RetryPolicy

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
    Param("Planner", "enum:fixed|Fixed views, regions|Motion and track regions", "preprocess.planner.type",
          _enum(["fixed", "regions"]), str),
    # the fixed plan's tiling; under `regions` that of its full sweeps (see TILING_UNDER)
    Param("Tiling", "enum:auto|Auto, no|No, yes|Yes", "preprocess.planner.enabled",
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
    """manifest.json `paramConfig` entries for PARAMS, with defaults taken from a Config (the camera's: source
    and backend of type acap-runtime, which have the stream keys)."""
    return [{"name": p.name, "default": p.to_param(_get(defaults, p.key)), "type": p.type} for p in PARAMS]


# where the Tiling parameter goes for each planner type (default: its own key)
TILING_UNDER = {"regions": "preprocess.planner.sweep.enabled"}


def overrides(values: dict[str, str], planner: str = "fixed", score_threshold: float | None = None) -> dict[str, Any]:
    """Dotted config overrides from parameter values (by parameter name); empty strings are skipped.
    `planner` is the configured planner type, used when the Planner parameter is not set.

    ScoreThresholdPercent at the configured `score_threshold` (its default on the camera) keeps the
    per-label thresholds (`decoder.class_thresholds`, person 0.40 by default); any other value is the
    minimum score of every label, so that the camera's setting also applies to people."""
    out: dict[str, Any] = {}
    for p in PARAMS:
        raw = values.get(p.name)
        if raw is None or raw == "":
            continue
        try:
            out[p.key] = p.to_config(raw.strip())
        except ValueError as e:
            raise ConfigError(f"camera parameter {p.name}: {e}") from None
    score = out.get("decoder.score_threshold")
    if score is not None and (score_threshold is None or round(score * 100) != round(score_threshold * 100)):
        out["decoder.class_thresholds"] = {}
    tiling = next(p.key for p in PARAMS if p.name == "Tiling")
    where = TILING_UNDER.get(out.get("preprocess.planner.type", planner))
    if where and tiling in out:
        out[where] = out.pop(tiling)
    return out


def fetch(acap, names: list[str] | None = None, wait: float | None = None) -> dict[str, str]:
    """Values of the app's parameters from ACAP Runtime's KeyValueStore; missing ones are left out.

    Waits for the server up to acap.connect_timeout (0: as long as it takes), or quietly up to
    `wait` seconds when given."""
    client = AcapClient(Endpoint.from_config(acap), RetryPolicy(timeout=acap.connect_timeout), quiet=wait is not None)
    try:
        return read(client, acap, names, wait)
    finally:
        client.close()


def read(client: AcapClient, acap, names: list[str] | None = None, wait: float | None = None) -> dict[str, str]:
    """fetch() over a client the caller holds (the poll keeps one for its life)."""
    pb = client.pb
    stub = pb.keyvaluestore_pb2_grpc.KeyValueStoreStub(client.channel)
    limit = client.policy.timeout if wait is None else wait  # for all keys together; 0 = no limit
    deadline = time.monotonic() + limit
    values: dict[str, str] = {}
    for name in names or [p.name for p in PARAMS]:
        # one stream per key: the server ends a stream at the first unknown key
        key = f"{acap.parameter_prefix}.{name}"
        request = pb.keyvaluestore_pb2.Request(key=key)
        try:
            replies = client.call(f"reading {key}", lambda: list(stub.GetValues(iter([request]), timeout=acap.timeout)),
                                  timeout=max(deadline - time.monotonic(), 1e-3) if limit else 0,
                                  setting="" if wait is not None else "acap_runtime.connect_timeout")
        except AcapRuntimeError as e:
            raise ConfigError(f"acap_runtime.parameters: cannot read camera parameters: {e}") from None
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise ConfigError(f"acap_runtime.parameters: reading {key} failed: {client.describe(e)}") from None
            log.debug("parameter %s not set", key)
            continue
        for reply in replies:
            values[name] = reply.value
    log.log(logging.INFO if wait is None else logging.DEBUG, "read %d camera parameters from %s",
            len(values), client.endpoint.address)
    return values


def device_value(acap, key: str) -> str | None:
    """One device parameter by its full key (e.g. root.Properties.System.SerialNumber), or None when the
    server does not have it or does not answer within acap.timeout (said in the log)."""
    client = AcapClient(Endpoint.from_config(acap), RetryPolicy(timeout=acap.timeout), quiet=True)
    try:
        stub = client.pb.keyvaluestore_pb2_grpc.KeyValueStoreStub(client.channel)
        request = client.pb.keyvaluestore_pb2.Request(key=key)
        replies = client.call(f"reading {key}", lambda: list(stub.GetValues(iter([request]), timeout=acap.timeout)),
                              timeout=acap.timeout)
    except AcapRuntimeError as e:
        log.warning("cannot read %s: %s", key, e)
        return None
    except grpc.RpcError as e:
        log.warning("cannot read %s: %s", key, client.describe(e))
        return None
    finally:
        client.close()
    return replies[0].value if replies else None


class ParameterWatch:
    """Re-reads the camera parameters every `interval` s and calls `on_change(names)` once when one
    differs from `baseline` (the values the running config was built from). A server that does not
    answer is skipped until the next check. Changed values that `check` refuses (ConfigError: a value
    the config cannot take) are logged once and ignored: the run goes on with its settings."""

    def __init__(self, acap, baseline: dict[str, str], interval: float, on_change: Callable[[list[str]], None],
                 check: Callable[[dict[str, str]], None] | None = None):
        self.acap = acap
        self.baseline = dict(baseline)
        self.interval = interval
        self.on_change = on_change
        self.check = check
        self._refused: dict[str, str] | None = None  # the values last refused, not logged again
        self._stop = threading.Event()
        self._client: AcapClient | None = None
        self._thread = threading.Thread(target=self._run, name="parameters", daemon=True)

    def start(self) -> "ParameterWatch":
        # the channel is the one the model and the camera stream of this run use too
        self._client = AcapClient(Endpoint.from_config(self.acap), RetryPolicy(timeout=self.acap.timeout),
                                  stops=(self._stop,), quiet=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        look = Guarded("camera parameters", log).wrap(self._look, "check", default=False)
        while not self._stop.wait(self.interval):
            if look():  # an error in a look is logged (bounded) and the next look still comes
                return

    def _look(self) -> bool:
        """One look at the parameters; True once a change was handed on (the run restarts)."""
        try:
            now = read(self._client, self.acap, wait=self.acap.timeout)
        except ConfigError as e:  # server restarting: check again later
            log.debug("checking camera parameters: %s", e)
            return False
        changed = sorted(n for n in set(now) | set(self.baseline) if now.get(n) != self.baseline.get(n))
        if not changed:
            self._refused = None  # back to the running values: a later bad change is logged again
            return False
        if now == self._refused:
            return False
        if self.check is not None:
            try:
                self.check(now)
            except ConfigError as e:
                self._refused = dict(now)
                log.warning("camera parameters changed (%s) but are not applied: %s; Vigil keeps its "
                            "running settings", ", ".join(changed), e)
                return False
        log.info("camera parameters changed (%s): restarting to apply them", ", ".join(changed))
        self.on_change(changed)
        return True

    def close(self) -> None:
        """Stop polling (waiting for a check in progress) and release the connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.acap.timeout + 5)
        if self._client is not None:
            self._client.close()
