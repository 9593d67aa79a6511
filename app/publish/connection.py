"""The connection to the broker: the paho client as configured (credentials, TLS, back-off, will),
and where the connection stands and what has been said about it: the state shown in /api/stats and
health, the last error, and the log lines (one warning per outage, one error per credential
refusal, not one per retry)."""
from __future__ import annotations

import logging
import ssl
import time
from collections import deque
from typing import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from app.callbacks import Guarded
from app.errors import ConfigError
from app.publish.config import MqttConfig

log = logging.getLogger("app.publish.mqtt")  # the publisher's logger: every MQTT line under one name

AUTH_CODES = {134, 135, 4, 5}  # bad user name or password, not authorised (MQTT 5 and 3.1.1 numbering)
FLAP_WINDOW = 60.0  # seconds looked back for connections cut short; a connection this long is stable again
FLAP_SHORT = 10.0  # a connection the broker closes within this many seconds of accepting it is cut short
FLAP_COUNT = 3  # cut-short connections within the window that make a flapping link
NOT_AN_ANSWER = ("auth_failed", "refused", "no_handshake", "tls_failed")  # states a later close keeps


def make_client(cfg: MqttConfig, client_id: str, will_topic: str, guard: Guarded | None = None,
                callbacks: dict[str, Callable] | None = None) -> paho.Client:
    """A paho client set up from mqtt.*, with `callbacks` ({"on_connect": fn, …}) attached, each wrapped by
    `guard` so that no error in one can end paho's network thread; ConfigError for bad TLS files."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=paho.MQTTv311)
    for name, fn in (callbacks or {}).items():
        setattr(c, name, guard.wrap(fn, name) if guard is not None else fn)
    c.will_set(will_topic, "offline", qos=1, retain=True)
    if cfg.username is not None:
        c.username_pw_set(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
    if cfg.tls.enabled:
        t = cfg.tls
        try:
            c.tls_set(ca_certs=t.ca_file, certfile=t.cert_file, keyfile=t.key_file, cert_reqs=ssl.CERT_REQUIRED)
        except (OSError, ssl.SSLError, ValueError) as e:
            raise ConfigError(f"mqtt.tls: cannot load certificates: {e}") from None
        if t.insecure:
            c.tls_insecure_set(True)
    c.reconnect_delay_set(cfg.reconnect_min_delay, max(cfg.reconnect_max_delay, cfg.reconnect_min_delay))
    c.max_inflight_messages_set(cfg.max_inflight)
    c.connect_timeout = 3.0
    return c


def tls_failure(error: BaseException | None, tls: bool) -> str | None:
    """What went wrong in a TLS handshake, for the log; None when `error` is no TLS failure. A plain
    (non-TLS) listener reads the ClientHello as a broken MQTT packet and closes the connection (or
    answers bytes that are no TLS record): that ends the handshake, after the TCP connect succeeded."""
    if not tls:
        return None
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the broker's certificate was refused ({error.verify_message or error.reason})"
    if isinstance(error, ssl.CertificateError):
        return f"the broker's certificate does not name it ({error})"
    if isinstance(error, (ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        reason = getattr(error, "reason", None) or error.strerror or error
        return f"{reason}; is mqtt.port a plain (non-TLS) MQTT listener? (mqtt.tls.enabled is set)"
    return None


class LinkState:
    """The connection's state machine; every method is called with the publisher's lock held."""

    def __init__(self, broker: str, retry_max: int, username: str | None) -> None:
        self.broker = broker
        self.retry_max = retry_max
        self.username = username
        # starting | connected | connecting | unreachable | tls_failed | no_handshake | refused | auth_failed | closed
        self.state = "starting"
        self.last_error: str | None = None
        self.connects = 0
        self.outage = False  # a connection failed or was lost since the last good one
        self._socket_at: float | None = None  # when the TCP connection of the attempt now running opened
        self._warned = False
        self._auth_logged = False
        self._up_at: float | None = None  # when the connection now up was accepted
        self._cut_short: deque[float] = deque(maxlen=FLAP_COUNT)  # when connections were lost soon after their start
        self.flapping: str | None = None  # why the link counts as flapping (for health), None when it does not

    def _warn_once(self, message: str, *args) -> None:
        if not self._warned:
            self._warned = True
            log.warning(message, *args)

    def connecting(self) -> None:
        self.state = "connecting"

    def socket_opened(self, now: float) -> None:
        self._socket_at = now

    def socket_closed(self) -> None:
        """The attempt ended (answered or closed): no handshake to wait for."""
        self._socket_at = None

    def handshake_overdue(self, now: float, timeout: float) -> bool:
        """True (once per attempt) when the TCP connection opened `timeout` s ago and CONNECT is still unanswered."""
        if self._socket_at is None or now - self._socket_at < timeout:
            return False
        self._socket_at = None
        self.no_handshake(f"{self.broker} accepted the connection but sent no MQTT answer (CONNACK) within {timeout:g} s")
        return True

    def up(self, now: float | None = None) -> bool:
        """Connected; True when it is a reconnection after an outage (queued events then wait)."""
        self._up_at = time.monotonic() if now is None else now
        self.connects += 1
        self.state, self.last_error = "connected", None
        self._warned = self._auth_logged = False
        after_outage, self.outage = self.outage, False
        return after_outage

    def refused(self, reason_code) -> None:
        """The broker answered CONNECT with a refusal."""
        self.outage = True
        self.last_error = str(reason_code)
        if reason_code.value in AUTH_CODES:
            self.state = "auth_failed"
            if not self._auth_logged:
                self._auth_logged = True
                who = f"user {self.username!r}" if self.username else "an anonymous client"
                log.error("mqtt: broker %s refused the credentials of %s (%s); check mqtt.username and "
                          "mqtt.password; retrying every %d s", self.broker, who, reason_code, self.retry_max)
        else:
            self.state = "refused"
            self._warn_once("mqtt: broker %s refused the connection (%s); retrying", self.broker, reason_code)

    def no_handshake(self, error: str) -> None:
        """A peer took the TCP connection but never answered (or closed it before) CONNECT."""
        self.outage = True
        self.state, self.last_error = "no_handshake", error
        self._warn_once("mqtt: %s; is it an MQTT broker (not TLS-only, not another service)? retrying with "
                        "back-off up to %d s", error, self.retry_max)

    def unreachable(self, error: BaseException | None = None, tls: bool = False) -> None:
        """A connection attempt failed before MQTT: `error` is the OSError paho had (None when not known)."""
        self.outage = True
        tls = tls_failure(error, tls)
        if tls is not None:
            self.state, self.last_error = "tls_failed", f"TLS handshake with {self.broker} failed: {tls}"
            self._warn_once("mqtt: %s; retrying with back-off up to %d s", self.last_error, self.retry_max)
            return
        if self.state != "auth_failed":
            self.state = "unreachable"
        why = f" ({error.strerror or error})" if isinstance(error, OSError) else ""
        self.last_error = f"cannot reach {self.broker}{why}"
        self._warn_once("mqtt: cannot reach broker %s%s; the pipeline keeps running and retries with back-off "
                        "up to %d s", self.broker, why, self.retry_max)

    def down(self, reason_code, was_connected: bool, stopping: bool, now: float | None = None) -> None:
        """The connection closed: lost after a good one, or closed before the handshake finished."""
        if stopping:
            return
        self.outage = True
        if was_connected:
            self.state, self.last_error = "connecting", f"connection lost ({reason_code})"
            if self._flaps(time.monotonic() if now is None else now, reason_code):
                log.debug("mqtt: lost the connection to %s again (%s)", self.broker, reason_code)
            else:
                log.warning("mqtt: lost the connection to %s (%s); reconnecting with back-off up to %d s",
                            self.broker, reason_code, self.retry_max)
        elif self.state not in NOT_AN_ANSWER:
            # closed before CONNACK: not an MQTT broker, TLS expected, or a proxy that gave up
            self.no_handshake(f"{self.broker} closed the connection before answering the MQTT handshake ({reason_code})")

    def _flaps(self, now: float, reason_code) -> bool:
        """Note a lost connection; True while the link flaps: the broker closed FLAP_COUNT connections
        within FLAP_WINDOW s, each within FLAP_SHORT s of accepting it. That is what a broker does to
        two clients with one client id (each connect closes the other's), or to a client its ACL or
        a bridge keeps refusing after CONNACK. Said once, in one warning, and shown in health."""
        up_at, self._up_at = self._up_at, None
        if up_at is not None and now - up_at >= FLAP_WINDOW:
            self._cut_short.clear()
        if up_at is None or now - up_at >= FLAP_SHORT:
            return self.flapping is not None
        self._cut_short.append(now)
        if len(self._cut_short) < FLAP_COUNT or now - self._cut_short[0] > FLAP_WINDOW:
            return self.flapping is not None
        if self.flapping is None:
            self.flapping = (f"the broker closed the connection {FLAP_COUNT} times in {now - self._cut_short[0]:.0f} s, "
                             f"each within {FLAP_SHORT:g} s of accepting it ({reason_code}): another client with "
                             f"this client id?")
            log.warning("mqtt: connection to %s is flapping: %s Each Vigil needs its own mqtt.client_id (leave it "
                        "unset for one unique to this machine); further losses are logged at debug level",
                        self.broker, self.flapping)
        return True

    def stable(self, now: float | None = None) -> str | None:
        """The flapping reason while it holds; cleared once a connection has lasted FLAP_WINDOW s."""
        if self.flapping is not None and self._up_at is not None:
            if (time.monotonic() if now is None else now) - self._up_at >= FLAP_WINDOW:
                self.flapping = None
                self._cut_short.clear()
                log.info("mqtt: connection to %s stable again", self.broker)
        return self.flapping

    def closed(self) -> None:
        self.state = "closed"
