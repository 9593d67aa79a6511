"""How every part reaches ACAP Runtime: the endpoint, one shared channel per server, retried calls.

ACAP Runtime answers on `unix:///tmp/acap-runtime.sock` by default, or on TCP, optionally
with TLS. The model, the camera stream and the parameter poll of one run talk to the same
server; they share one gRPC channel, which closes when its last user closes. The channels are in
`CHANNELS`, one pool per process owned by this module (module-level because a channel is the server's,
not a part's or a run's: parts built apart find the same one); only `AcapClient` takes and gives back.
ACAP Runtime's Predict returns CANCELLED with no message for every failure (missing model file, wrong
input, larod busy with POWER_NOT_AVAILABLE), so a client cannot tell a transient failure
from a permanent one by the status alone; see `AcapClient.transient`.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import grpc

from app import protos
from app.errors import ConfigError, VigilError
from app.health import Health
from app.retry import Retry, RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ADDRESS = "unix:///tmp/acap-runtime.sock"
BARE_CANCELLED = ("", "CANCELLED", "Cancelled")  # what ACAP Runtime says for every Predict failure
MAX_MESSAGE = 256 << 20  # a 4K RGB frame is 25 MB
# A shared channel lives as long as the run: cap grpc's reconnect back-off (default up to 120 s) so a
# server that comes back is noticed within about a second, as a fresh channel per call would (a local
# socket or LAN address: trying again costs nothing).
MAX_RECONNECT_BACKOFF_MS = 1000


class AcapRuntimeError(VigilError):
    """ACAP Runtime could not be reached or kept failing."""

    exit_code = 5


@dataclass(frozen=True)
class Endpoint:
    """How to reach ACAP Runtime: address (unix:///path or host:port) and optional TLS."""

    address: str = DEFAULT_ADDRESS
    tls_cert: str | None = None  # the server's certificate (PEM), used as the root of trust
    tls_authority: str = "localhost"  # name checked against the certificate (Axis's is CN=localhost)

    @classmethod
    def from_config(cls, cfg) -> "Endpoint":
        """The endpoint of an `acap_runtime` config section."""
        return cls(cfg.address, cfg.tls_cert, cfg.tls_authority)

    @property
    def socket_path(self) -> Path | None:
        """The Unix socket's path, for unix: addresses."""
        if self.address.startswith("unix://"):
            return Path(self.address[len("unix://") :])
        if self.address.startswith("unix:"):
            return Path(self.address[len("unix:") :])
        return None

    def channel(self) -> grpc.Channel:
        """A new gRPC channel of its own (parts of the app share one through `CHANNELS` instead)."""
        options = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE),
                   ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS)]
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


def status_of(e: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    """(status code, details) of a failed call; (None, "") for an RpcError that carries none."""
    code = e.code() if hasattr(e, "code") else None
    details = (e.details() if hasattr(e, "details") else "") or ""
    return code, details


def bare_cancelled(e: grpc.RpcError) -> bool:
    """CANCELLED without a reason: how ACAP Runtime reports every Predict failure."""
    code, details = status_of(e)
    return code == grpc.StatusCode.CANCELLED and details in BARE_CANCELLED


class SharedChannels:
    """One gRPC channel per endpoint, shared by every user, closed when the last user releases it.
    Its own lock guards the table and every count; only `AcapClient` acquires and releases."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Endpoint, tuple[grpc.Channel, int]] = {}

    def acquire(self, endpoint: Endpoint) -> grpc.Channel:
        """The endpoint's channel, opened now if nobody holds it; release() it when done."""
        with self._lock:
            channel, users = self._open.get(endpoint, (None, 0))
            if channel is None:
                channel = endpoint.channel()
            self._open[endpoint] = (channel, users + 1)
            return channel

    def release(self, endpoint: Endpoint) -> None:
        """One user less; the last one closes the channel."""
        with self._lock:
            channel, users = self._open[endpoint]
            if users > 1:
                self._open[endpoint] = (channel, users - 1)
                return
            del self._open[endpoint]
        channel.close()

    def users(self, endpoint: Endpoint) -> int:
        """How many parts hold the endpoint's channel now (0: it is closed)."""
        with self._lock:
            return self._open.get(endpoint, (None, 0))[1]


# The process's one pool of channels, owned by this module and used only through AcapClient (which
# acquires in its constructor and releases in close). It is module-level on purpose: a channel belongs
# to the server, not to a part or a run. The backend, the camera source and the parameter poll are built
# separately (from their own plugin sections, the poll even outside the run) and reach the same server,
# so they must find one another's channel without being handed it, and a channel outlives a run that
# restarts while another part still holds it (the parameter poll of `vigil run` on a camera).
CHANNELS = SharedChannels()


class AcapClient:
    """One part's link to ACAP Runtime: the shared channel, the generated modules, retried calls.

    `stops` end a retry wait early (the part's own close, the run's cancel); close() releases the
    channel.
    """

    cancelled_attempts = 5  # a bare CANCELLED is retried this many times before it counts as permanent

    def __init__(self, endpoint: Endpoint, policy: RetryPolicy = RetryPolicy(), health: Health | None = None,
                 stops: Sequence[threading.Event | None] = (), quiet: bool = False) -> None:
        self.endpoint = endpoint
        self.pb = protos.load()
        self.health = health if health is not None else Health()
        self.retry = Retry(policy, self.health, [s for s in stops if s is not None], AcapRuntimeError, quiet,
                           logger=log)
        self.channel = CHANNELS.acquire(endpoint)
        self._closed = False

    @property
    def policy(self) -> RetryPolicy:
        """How long and how often calls are retried."""
        return self.retry.policy

    def call(self, what: str, fn: Callable[[], T], *, timeout: float | None = None, setting: str = "") -> T:
        """fn() retried while it fails transiently; AcapRuntimeError when the time runs out or a stop is
        set; a permanent grpc.RpcError as it came."""
        cancelled = 0

        def transient(e: Exception) -> str | None:
            nonlocal cancelled
            if not isinstance(e, grpc.RpcError):
                return None
            if status_of(e)[0] == grpc.StatusCode.CANCELLED:
                cancelled += 1
            return self.describe(e) if self.transient(e, cancelled) else None

        return self.retry.call(what, fn, transient, timeout=timeout, setting=setting)

    def result(self, future: grpc.Future, what: str) -> T:
        """future.result(), unless a stop (the owner's close, the run's SIGTERM) comes first: then the call
        is cancelled at once and AcapRuntimeError raised, instead of waiting out the deadline of a call
        to a server that has stalled."""
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        while not done.wait(0.05):
            if self.retry.stopped():
                future.cancel()
                raise AcapRuntimeError(f"{what}: stopped while waiting for ACAP Runtime")
        return future.result()

    def transient(self, e: grpc.RpcError, cancelled_seen: int) -> bool:
        """Whether a failure is worth retrying: server away or busy, or one of the first bare CANCELLEDs."""
        code, details = status_of(e)
        if "POWER_NOT_AVAILABLE" in details:
            return True
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
                    grpc.StatusCode.DEADLINE_EXCEEDED):
            return True
        if bare_cancelled(e):
            # bare: larod busy, or a server shutting down cancelling calls in flight
            return cancelled_seen < self.cancelled_attempts
        return False

    def describe(self, e: grpc.RpcError) -> str:
        """A failure in words, with a hint when the server is unreachable."""
        code, details = status_of(e)
        if code == grpc.StatusCode.UNAVAILABLE:
            return f"ACAP Runtime unreachable at {self.endpoint.address}: {self.endpoint.unreachable_hint()}"
        name = code.name if code is not None else type(e).__name__
        return name + (f": {details}" if details else "")

    def close(self) -> None:
        """Release the shared channel (once)."""
        if not self._closed:
            self._closed = True
            CHANNELS.release(self.endpoint)
