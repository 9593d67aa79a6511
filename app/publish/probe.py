"""One connection attempt with given MQTT settings, answered in the broker's own words (Test connection)."""
from __future__ import annotations

import socket
import ssl
import threading

import paho.mqtt.client as paho

from app.errors import ConfigError
from app.publish.config import MqttConfig
from app.publish.connection import make_client

BAD_CREDENTIALS = {4, 134}  # MQTT 3.1.1 "bad user name or password", MQTT 5 "Bad user name or password"
NOT_AUTHORISED = {5, 135}


def probe(cfg: MqttConfig, timeout: float | None = None) -> dict:
    """{"ok", "result", "detail"}: result is ok, refused, bad credentials, not authorised, tls error,
    unreachable or timeout; detail is the broker's answer or the error as the system said it."""
    timeout = timeout or min(cfg.connect_timeout, 10.0)
    try:
        client = make_client(cfg, f"vigil-probe-{threading.get_ident() % 100000}", "vigil-probe/available")
    except ConfigError as e:
        return answer("tls error", str(e))
    done = threading.Event()
    got: dict = {}

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        got["rc"] = reason_code
        done.set()

    def on_disconnect(c, userdata, flags, reason_code, properties) -> None:
        got.setdefault("rc", reason_code)
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect_timeout = timeout
    try:
        client.connect(cfg.host, cfg.port, keepalive=max(cfg.keepalive, 5))
    except ssl.SSLError as e:
        return answer("tls error", e.reason or str(e))
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as e:
        if cfg.tls.enabled:  # the peer hung up on the TLS hello: a plain MQTT port, most likely
            return answer("tls error", f"{cfg.host}:{cfg.port} closed the connection during the TLS handshake "
                                       f"({e.strerror or e}): is it a plain (non-TLS) port?")
        return answer("unreachable", f"{cfg.host}:{cfg.port}: {e.strerror or e}")
    except (socket.timeout, TimeoutError):
        return answer("timeout", f"no answer from {cfg.host}:{cfg.port} within {timeout:g} s")
    except OSError as e:
        return answer("unreachable", f"{cfg.host}:{cfg.port}: {e.strerror or e}")
    client.loop_start()
    try:
        if not done.wait(timeout):
            return answer("timeout", f"{cfg.host}:{cfg.port} took the connection but did not answer CONNECT "
                                     f"within {timeout:g} s (not an MQTT broker, or TLS expected?)")
    finally:
        client.disconnect()
        client.loop_stop()
    rc = got["rc"]
    if not rc.is_failure:
        return answer("ok", f"connected to {cfg.host}:{cfg.port}" + (" over TLS" if cfg.tls.enabled else ""))
    value = rc.value
    kind = "bad credentials" if value in BAD_CREDENTIALS else "not authorised" if value in NOT_AUTHORISED \
        else "refused"
    return answer(kind, f"the broker refused the connection: {rc}")


def answer(result: str, detail: str) -> dict:
    return {"ok": result == "ok", "result": result, "detail": detail}
