"""A site of real Vigils for the fleet tests and bench: N `vigil run` processes on the sample clip at a
low rate, each with its own API port, token and state directory, feeding one mosquitto; or, as on
cameras, each with a read and an admin port behind its own apache2 with digest authentication
(CameraSite); and a TCP proxy in front of a camera that holds or delays connections (a slow camera,
a link that drops)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


ZONE = {"polygon": [[0.0, 0.0], [0.6, 0.0], [0.6, 1.0], [0.0, 1.0]], "labels": ["person"]}


def fleet_env(env: dict | None = None) -> dict[str, str]:
    """This process's environment without its Vigil, fleet or camera-password variables, plus `env`."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "FLEET_", "CAM_PW"))}
    return {**full, **(env or {})}


def fleet(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """`vigil fleet …` as a user runs it (fleet_env)."""
    return subprocess.run([sys.executable, "-m", "app", "fleet", *args], cwd=ROOT, env=fleet_env(env),
                          capture_output=True, text=True, timeout=timeout)


def write(path, doc) -> str:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instance:
    """One real Vigil: `vigil run --loop --fps 2 --api <port>` with a token, device id cam<i>; with
    `camera=True` as on a camera instead: no token, served under /local/vigil with changes taken on
    a second port, `admin_port`, for the camera's reverse proxy to guard (tests/apache_proxy.py)."""

    def __init__(self, root: Path, i: int, broker_port: int, fps: float = 2.0, token: bool = True,
                 extra: tuple[str, ...] = (), camera: bool = False) -> None:
        self.i = i
        self.name = f"cam{i}"
        self.dir = root / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.token = f"token-{i}-{os.urandom(4).hex()}" if token and not camera else None
        self.admin_port = free_port() if camera else None
        if camera:
            extra = ("api.root_path=/local/vigil", f"api.admin_port={self.admin_port}", *extra)
        self.extra = [a for kv in extra for a in ("--set", kv)]
        self.broker_port = broker_port
        self.fps = fps
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Instance":
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        env["PYTHONUNBUFFERED"] = "1"
        if self.token:
            env["VIGIL_API__TOKEN"] = self.token  # not on the command line
        log = open(self.dir / "vigil.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "run", "--loop", "--fps", str(self.fps), "--no-progress",
             "--api", str(self.port), "--threads", "1", "--interpreters", "1",
             "--set", f"state.file={self.dir / 'state.json'}", "--set", "api.protect=all",
             "--set", f"device_id={self.name}", "--set", "mqtt.enabled=true",
             "--set", f"mqtt.port={self.broker_port}", "--set", "mqtt.stats_interval=5", *self.extra],
            cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
        log.close()
        return self

    def get(self, path: str, timeout: float = 5) -> dict | list | None:
        """The JSON answer of GET path (with the token), or None when it does not answer (yet)."""
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=auth)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read()) if e.code == 503 else None
        except (OSError, ValueError):
            return None

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.log()[-1500:]}")
        s = self.get("/api/stats")
        return bool(s) and s["frames"]["processed"] >= 2 and s["mqtt"].get("connected", False)

    def kill(self) -> None:
        """SIGKILL: the camera loses power (no goodbye on the feed, nothing finished)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def site_file(self) -> dict | None:
        path = self.dir / "site.yaml"
        return yaml.safe_load(path.read_text()) if path.exists() else None

    def log(self) -> str:
        return (self.dir / "vigil.log").read_text(errors="replace")


def wait_all(instances: list[Instance], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(instances)
    while waiting:
        waiting = [i for i in waiting if not i.ready()]
        if waiting and time.monotonic() > deadline:
            raise AssertionError(f"not ready after {timeout} s: {[i.name for i in waiting]}: "
                                 f"{waiting[0].log()[-1500:]}")
        time.sleep(0.2)


def fleet_doc(instances: list[Instance], urls: dict[str, str] | None = None, common: dict | None = None,
              sites: dict[str, dict] | None = None) -> dict:
    """A fleet file for these instances: token auth, each token in FLEET_TOKEN_<i> (see tokens())."""
    urls = urls or {}
    return {"defaults": {"auth": "token", "timeout": 10}, "common": common or {},
            "cameras": {i.name: {"url": urls.get(i.name, f"http://127.0.0.1:{i.port}/"),
                                 "token_env": f"FLEET_TOKEN_{i.i}", "site": (sites or {}).get(i.name, {})}
                        for i in instances}}


def tokens(instances: list[Instance]) -> dict[str, str]:
    return {f"FLEET_TOKEN_{i.i}": i.token for i in instances}


class HoldingProxy:
    """A TCP proxy on a free loopback port to 127.0.0.1:<upstream>: each connection waits `delay`
    seconds, or (hold=True) until release(), before it is passed on; a dead upstream closes it.
    With `tls`, it speaks https to the client and plain http to the upstream."""

    def __init__(self, upstream: int, delay: float = 0.0, hold: bool = False, tls=None) -> None:
        self.upstream = upstream
        self.tls = tls  # an ssl.SSLContext: terminate TLS here, as a camera's web server does
        self.delay = delay
        self.released = threading.Event()
        if not hold:
            self.released.set()
        self.waiting = 0  # connections held now
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def release(self) -> None:
        self.released.set()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:  # the client refused our certificate
                conn.close()
                return
        with self.lock:
            self.waiting += 1
        self.released.wait(120)
        if self.delay:
            time.sleep(self.delay)  # the slow camera itself, not a test's synchronisation
        with self.lock:
            self.waiting -= 1
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
        except OSError:
            conn.close()  # the camera is gone: the client sees the connection dropped
            return
        up.settimeout(None)
        threading.Thread(target=self._pipe, args=(up, conn), daemon=True).start()
        self._pipe(conn, up)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.released.set()
        self.sock.close()


class CameraSite:
    """n real Vigils as on cameras (`Instance(camera=True)`), each behind its own Debian apache2 with digest
    authentication and its own administrator password; `start()` then `stop()`. The fleet file reads each
    password from the environment (CAM_PW_<i>: `passwords()`), as a site keeps them out of the file."""

    def __init__(self, root: Path, n: int, broker_port: int, fps: float = 1.0) -> None:
        self.cams = [Instance(root, i, broker_port, fps=fps, camera=True) for i in range(n)]
        self.proxies: list = []

    def start(self, timeout: float = 300) -> "CameraSite":
        from tests.apache_proxy import Proxy

        try:
            for c in self.cams:
                c.start()
            wait_all(self.cams, timeout)
            for c in self.cams:
                users = {"viewer": f"viewer-{c.i}-{os.urandom(4).hex()}", "admin": f"admin-{c.i}-{os.urandom(4).hex()}"}
                self.proxies.append(Proxy(users=users, lean=True).start(c.port, c.admin_port))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM to every Vigil first, then wait for each: 20 shut down together, not one after the other."""
        for c in self.cams:
            if c.proc is not None and c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        for p in self.proxies:
            p.stop()
        for c in self.cams:
            c.stop()

    def passwords(self) -> dict[str, str]:
        return {f"CAM_PW_{c.i}": p.users["admin"] for c, p in zip(self.cams, self.proxies)}

    def doc(self, urls: dict[str, str] | None = None, common: dict | None = None,
            sites: dict[str, dict] | None = None, **defaults) -> dict:
        """A fleet file for the site: each camera's proxy URL (or `urls`), digest as user admin, its password
        from CAM_PW_<i>."""
        urls = urls or {}
        return {"defaults": {"auth": "digest", "user": "admin", "timeout": 30, **defaults}, "common": common or {},
                "cameras": {c.name: {"url": urls.get(c.name, f"{p.url}/local/vigil/"), "password_env": f"CAM_PW_{c.i}",
                                     "site": (sites or {}).get(c.name, {})}
                            for c, p in zip(self.cams, self.proxies)}}
