"""What every ACAP Runtime client shares: the channel, retries with backoff, tensor encoding, chip ids.

ACAP Runtime (Axis's gRPC server in the inference-server container) answers on
`unix:///tmp/acap-runtime.sock` by default, or on TCP, optionally with TLS. Its Predict
returns CANCELLED with no message for every failure (missing model file, wrong input,
larod busy with POWER_NOT_AVAILABLE), so a client cannot tell a transient failure from a
permanent one by the status alone; see `Retrier`.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from app.errors import ConfigError, VigilError
from app.health import Health

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ADDRESS = "unix:///tmp/acap-runtime.sock"

# larod 2.x chip ids, the `-j` flag of ACAP Runtime (0 = ML service not started)
CHIP_IDS: dict[str, int] = {"cpu": 2, "artpec7": 4, "edgetpu": 4, "cv25": 6, "artpec8": 12}
NO_CHIP_ID = {
    "artpec9": "the ARTPEC-9 DLPU has no ACAP Runtime chip id (larod 2 lists none), so a container cannot "
    "select it; use device 'cpu' (chip 2) there, or a native larod 3 app (device a9-dlpu-tflite)",
}


class AcapRuntimeError(VigilError):
    """ACAP Runtime could not be reached or kept failing."""

    exit_code = 5


def chip_id(device: str) -> int:
    """ACAP Runtime `-j` id for a Vigil device name (cpu, artpec7, artpec8, cv25); ConfigError otherwise."""
    d = device.strip().lower().replace("-", "")
    if d in CHIP_IDS:
        return CHIP_IDS[d]
    if d.isdigit() and int(d) in CHIP_IDS.values():
        return int(d)
    if d in NO_CHIP_ID:
        raise ConfigError(f"model.device: {NO_CHIP_ID[d]}")
    raise ConfigError(
        f"model.device: {device!r} is not an ACAP Runtime chip; choose one of {', '.join(sorted(CHIP_IDS))}"
    )


# -- tensors ------------------------------------------------------------------------------
# numpy dtype <-> tensorflow.DataType number (values of the public types.proto)
_DT_BY_NUMPY = {
    np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.int32): 3, np.dtype(np.uint8): 4,
    np.dtype(np.int16): 5, np.dtype(np.int8): 6, np.dtype(np.int64): 9, np.dtype(np.bool_): 10,
    np.dtype(np.uint16): 17, np.dtype(np.float16): 19, np.dtype(np.uint32): 22, np.dtype(np.uint64): 23,
}
_NUMPY_BY_DT = {v: k for k, v in _DT_BY_NUMPY.items()}


def tensor_to_proto(array: np.ndarray, pb):
    """A TensorProto (dtype, shape, raw little-endian bytes in tensor_content) for an array."""
    a = np.ascontiguousarray(array)
    dt = _DT_BY_NUMPY.get(a.dtype)
    if dt is None:
        raise ValueError(f"dtype {a.dtype} cannot be sent to ACAP Runtime")
    t = pb.tensorflow_pb2.TensorProto(dtype=dt, tensor_content=a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    for size in a.shape:
        t.tensor_shape.dim.add(size=int(size))
    return t


def proto_to_array(t) -> np.ndarray:
    """The array in a TensorProto (tensor_content, or the typed *_val fields)."""
    dtype = _NUMPY_BY_DT.get(t.dtype)
    if dtype is None:
        raise ValueError(f"unsupported tensor dtype {t.dtype}")
    shape = tuple(int(d.size) for d in t.tensor_shape.dim)
    if t.tensor_content:
        a = np.frombuffer(t.tensor_content, dtype.newbyteorder("<")).astype(dtype, copy=False)
    elif t.float_val:
        a = np.asarray(t.float_val, dtype)
    elif t.int_val:
        a = np.asarray(t.int_val, dtype)
    elif t.int64_val:
        a = np.asarray(t.int64_val, dtype)
    elif t.uint32_val:
        a = np.asarray(t.uint32_val, dtype)
    else:
        a = np.zeros(0, dtype)
    n = int(np.prod(shape)) if shape else 1
    if a.size == 1 and n > 1:  # proto convention: one value fills the shape
        a = np.full(n, a[0], dtype)
    if a.size != n:
        raise ValueError(f"tensor has {a.size} values for shape {list(shape)}")
    return a.reshape(shape)


# -- channel -------------------------------------------------------------------------------
@dataclass
class Endpoint:
    """How to reach ACAP Runtime: address (unix:///path or host:port) and optional TLS."""

    address: str = DEFAULT_ADDRESS
    tls_cert: str | None = None  # the server's certificate (PEM), used as the root of trust
    tls_authority: str = "localhost"  # name checked against the certificate (Axis's is CN=localhost)

    @classmethod
    def from_config(cls, cfg) -> "Endpoint":
        return cls(cfg.address, cfg.tls_cert, cfg.tls_authority)

    @property
    def socket_path(self) -> Path | None:
        """The Unix socket's path, for unix: addresses."""
        if self.address.startswith("unix://"):
            return Path(self.address[len("unix://") :])
        if self.address.startswith("unix:"):
            return Path(self.address[len("unix:") :])
        return None

    def channel(self):
        """A new gRPC channel; messages up to 256 MiB (a 4K RGB frame is 25 MB)."""
        import grpc

        options = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]
        if self.tls_cert:
            try:
                root = Path(self.tls_cert).read_bytes()
            except OSError as e:
                raise ConfigError(f"acap_runtime.tls_cert: cannot read {self.tls_cert}: {e.strerror}") from None
            options.append(("grpc.default_authority", self.tls_authority))
            options.append(("grpc.ssl_target_name_override", self.tls_authority))
            return grpc.secure_channel(self.address, grpc.ssl_channel_credentials(root_certificates=root), options)
        return grpc.insecure_channel(self.address, options)

    def unreachable_hint(self) -> str:
        """Why the server is probably unreachable, for error messages."""
        path = self.socket_path
        if path is not None and not path.exists():
            return f"socket {path} does not exist (is the inference-server container running and sharing /tmp?)"
        if path is not None:
            return f"nothing answers on {path} (server stopped or restarting?)"
        return f"nothing answers at {self.address}"


# -- retries -------------------------------------------------------------------------------
@dataclass
class RetryPolicy:
    """Backoff for transient failures: 0.25 s, 0.5 s, … capped at max_delay, for up to `timeout` s (0 = forever)."""

    timeout: float = 600.0
    base_delay: float = 0.25
    max_delay: float = 5.0
    # larod's POWER_NOT_AVAILABLE and a missing model both arrive as a bare CANCELLED:
    # retry a bare CANCELLED this many times before calling it permanent
    cancelled_attempts: int = 5


class PermanentError(Exception):
    """Raised inside a retried call to stop retrying."""


def _code_name(e) -> str:
    code = e.code() if hasattr(e, "code") else None
    return code.name if code is not None else type(e).__name__


class Retrier:
    """Calls a gRPC function, retrying transient failures with backoff and recording health."""

    def __init__(self, endpoint: Endpoint, policy: RetryPolicy, health: Health, stop: threading.Event | None = None,
                 cancel: threading.Event | None = None):
        self.endpoint = endpoint
        self.policy = policy
        self.health = health
        self.stop = stop or threading.Event()  # set by the owner's close()
        self.cancel = cancel  # the caller's own stop (e.g. SIGTERM while waiting for the server)

    def is_transient(self, e, cancelled_seen: int) -> bool:
        import grpc

        code = e.code() if hasattr(e, "code") else None
        details = (e.details() if hasattr(e, "details") else "") or ""
        if "POWER_NOT_AVAILABLE" in details:
            return True
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
                    grpc.StatusCode.DEADLINE_EXCEEDED):
            return True
        if code == grpc.StatusCode.CANCELLED and details in ("", "CANCELLED", "Cancelled"):
            # bare: larod busy, or a server shutting down cancelling calls in flight
            return cancelled_seen < self.policy.cancelled_attempts
        return False

    def describe(self, e) -> str:
        import grpc

        code = e.code() if hasattr(e, "code") else None
        details = (e.details() if hasattr(e, "details") else "") or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            return f"ACAP Runtime unreachable at {self.endpoint.address}: {self.endpoint.unreachable_hint()}"
        return f"{_code_name(e)}" + (f": {details}" if details else "")

    def call(self, what: str, fn: Callable[[], T], timeout: float | None = None, busy_state: str = "retrying") -> T:
        """fn() with retries; AcapRuntimeError when the policy's time runs out, or the error fn raised permanently."""
        import grpc

        limit = self.policy.timeout if timeout is None else timeout
        start = time.monotonic()
        attempt = 0
        cancelled = 0
        while True:
            try:
                return fn()
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.CANCELLED:
                    cancelled += 1
                message = self.describe(e)
                if not self.is_transient(e, cancelled):
                    raise
                attempt += 1
                self.health.retries += 1
                self.health.set(busy_state, message)
                elapsed = time.monotonic() - start
                if limit and elapsed >= limit:
                    self.health.set("failed", message)
                    raise AcapRuntimeError(f"{what} failed for {elapsed:.0f} s, giving up: {message}") from None
                delay = min(self.policy.base_delay * attempt, self.policy.max_delay)
                if limit:
                    delay = min(delay, max(0.0, limit - elapsed))
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("%s: %s; retrying (attempt %d)", what, message, attempt)
                if self._sleep(delay):
                    raise AcapRuntimeError(f"{what}: stopped while retrying ({message})") from None

    def _sleep(self, delay: float) -> bool:
        """Wait `delay` s; True as soon as stop or cancel is set."""
        if self.cancel is None:
            return self.stop.wait(delay)
        end = time.monotonic() + delay
        while not (self.stop.is_set() or self.cancel.is_set()):
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.cancel.wait(min(left, 0.1))
        return True
