"""Test helpers for the MQTT feed: a real mosquitto per test or session, a recording subscriber,
a gate in front of the broker, and the payload schemas."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "docs" / "schemas"
INSTALL_HINT = (
    "mosquitto is not installed: the MQTT tests need the real broker. Install it with "
    "`sudo apt-get install mosquitto` (or run `make test` as root, which installs it)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.02, what: str = "condition") -> None:
    """Poll `predicate` until true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if path is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return path


class Broker:
    """A mosquitto on 127.0.0.1, without persistence unless asked, optionally with one user; start/stop at will."""

    def __init__(self, workdir: Path, port: int | None = None, users: dict[str, str] | None = None,
                 extra: list[str] | None = None, persistent: bool = False) -> None:
        self.binary = mosquitto_binary()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.log = self.dir / "mosquitto.log"
        # persistent: sessions, their queued QoS 1 messages and retained messages survive a stop (saved at exit)
        store = ["persistence true", f"persistence_location {self.dir}/"] if persistent else ["persistence false"]
        lines = [f"listener {self.port} 127.0.0.1", *store, "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 f"user {pwd.getpwuid(os.getuid()).pw_name}"]  # when run as root, stay root (tmp files)
        if users:
            pw = self.dir / "passwd"
            pw.write_text("")
            for user, password in users.items():
                subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", str(pw),
                                user, password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        lines += extra or []
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> "Broker":
        self._log = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: float  # monotonic clock
    wall: float = 0.0  # time.time() on arrival (for latency against wall-clock timestamps)

    def json(self):
        return json.loads(self.payload)


class Subscriber:
    """A real paho client that records every message on `topic`; resubscribes after reconnects."""

    def __init__(self, port: int, topic: str = "#", client_id: str | None = None, clean_session: bool = True) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.port = port
        self.topic = topic
        self.messages: list[Received] = []
        self.subscribed = threading.Event()
        self._cv = threading.Condition()
        # clean_session=False with a fixed client_id: a persistent session, kept by the broker while away
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{os.getpid()}-{id(self)}",
                                  clean_session=clean_session)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError(f"subscriber could not subscribe on port {port}")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        with self._cv:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos, time.monotonic(),
                                          time.time()))
            self._cv.notify_all()

    def wait_for(self, predicate, timeout: float = 20, what: str = "a message") -> Received:
        """The first recorded message matching predicate(msg), waiting up to timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for m in self.messages:
                    if predicate(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                         f"got {len(self.messages)} messages")
                self._cv.wait(left)

    def on(self, suffix: str) -> list[Received]:
        with self._cv:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def latest(self) -> dict[str, Received]:
        """The last message per topic."""
        with self._cv:
            out = {}
            for m in self.messages:
                out[m.topic] = m
            return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained_state(port: int, prefix: str, expect: set[str], timeout: float = 10) -> dict[str, Received]:
    """What a subscriber that starts now receives at once: the retained message of each topic in `expect`."""
    sub = Subscriber(port, f"{prefix}/#")
    try:
        sub.wait_for(lambda m: expect <= {x.topic for x in sub.messages if x.retain}, timeout,
                     what=f"retained {sorted(expect - {x.topic for x in sub.messages})}")
        return {m.topic: m for m in sub.messages if m.retain}
    finally:
        sub.close()


class Gate:
    """A TCP relay on its own port in front of a broker; `close()` refuses new and cuts current
    connections (like a broker that went away), `open()` accepts again. Lets a test decide when
    the app may reconnect."""

    def __init__(self, upstream: int, port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0

    def open(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(16)
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def close(self) -> None:
        with self._lock:
            ls, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if ls is not None:
            try:
                ls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            ls.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                down, _ = ls.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream), timeout=2)
            except OSError:
                down.close()
                continue
            up.settimeout(None)
            with self._lock:
                if self._listener is not ls:
                    down.close()
                    up.close()
                    return
                self._conns += [down, up]
                self.accepted += 1
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


_validators: dict = {}


def validate(schema: str, value) -> None:
    """Validate a payload against docs/schemas/<schema>.schema.json (raises jsonschema.ValidationError)."""
    import jsonschema

    v = _validators.get(schema)
    if v is None:
        doc = json.loads((SCHEMAS / f"{schema}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(doc)
        v = _validators[schema] = jsonschema.Draft202012Validator(doc)
    v.validate(value)
