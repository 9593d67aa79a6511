"""Debian's apache2 as the camera's reverse proxy: digest (the camera's default) or basic authentication in
front of Vigil's two ports, over http or, with a certificate and key, https (mod_ssl).

The camera's web server is Apache; an app's manifest `reverseProxy` entries become proxied paths
`/local/<app>/<apiPath>` that need the entry's user level and receive the full path. Here:
`/local/vigil/api/` -> the read port, for users viewer and admin (`access: viewer`), and
`/local/vigil/admin/` -> the admin port, for admin only (`access: admin`).
"""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MODULES = Path("/usr/lib/apache2/modules")
REALM = "AXIS_vigil_test"
USERS = {"viewer": "viewer-pass", "admin": "admin-pass"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> str | None:
    """Why apache2 cannot run here, or None."""
    if not shutil.which("apache2") and not Path("/usr/sbin/apache2").exists():
        return "Debian's apache2 is not installed (tools/install-test-deps.sh)"
    for m in ("mod_proxy", "mod_proxy_http", "mod_auth_digest", "mod_auth_basic", "mod_authz_user", "mod_authn_file",
              "mod_mpm_event", "mod_ssl", "mod_socache_shmcb"):
        if not (MODULES / f"{m}.so").exists():
            return f"apache2 module {m} missing"
    return None


class Proxy:
    """An apache2 in the foreground with its own config dir; `start(read, admin)` then `stop()`."""

    def __init__(self, auth: str = "digest", tls: tuple[Path, Path] | None = None, users: dict[str, str] | None = None,
                 lean: bool = False) -> None:
        """`auth`: digest or basic; `tls`: (certificate, key) files to serve https with; `users`: user -> password
        (else USERS); `lean`: one worker process of 8 threads, for a site of many proxies on a small machine."""
        # a directory the unprivileged worker (nobody, when the tests run as root) can read
        self.dir = Path(tempfile.mkdtemp(prefix="vigil-apache-"))
        self.dir.chmod(0o755)
        self.auth = auth
        self.tls = tls
        self.users = dict(users or USERS)
        self.lean = lean
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _users(self) -> Path:
        path = self.dir / "users"
        if self.auth == "basic":  # htpasswd's {SHA} format: user:{SHA}base64(sha1(password))
            lines = [f"{u}:{{SHA}}{base64.b64encode(hashlib.sha1(p.encode()).digest()).decode()}\n"
                     for u, p in self.users.items()]
        else:  # the htdigest format: user:realm:md5(user:realm:password)
            lines = [f"{u}:{REALM}:{hashlib.md5(f'{u}:{REALM}:{p}'.encode()).hexdigest()}\n"
                     for u, p in self.users.items()]
        path.write_text("".join(lines))
        path.chmod(0o644)
        return path

    def _conf(self, read_port: int, admin_port: int) -> Path:
        mods = ["mpm_event", "authn_core", "authn_file", "authz_core", "authz_user", f"auth_{self.auth}", "proxy",
                "proxy_http"]
        users = self._users()
        run_as = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
        kind = "Digest" if self.auth == "digest" else "Basic"
        domain = "  AuthDigestDomain /local/vigil/\n" if self.auth == "digest" else ""
        tls = ""
        if self.tls:
            mods += ["ssl", "socache_shmcb"]
            tls = (f"SSLEngine on\nSSLCertificateFile {self.tls[0]}\nSSLCertificateKeyFile {self.tls[1]}\n"
                   f"SSLSessionCache shmcb:{self.dir}/ssl_scache(512000)\n")

        # retry=0: a Vigil that was down is asked again at once when it is back, not after mod_proxy's 60 s
        def location(path: str, port: int, who: str) -> str:
            return (f'<Location "{path}">\n  AuthType {kind}\n  AuthName "{REALM}"\n{domain}'
                    f"  AuthUserFile {users}\n  Require user {who}\n"
                    f"  ProxyPass http://127.0.0.1:{port}{path} retry=0\n</Location>\n")

        text = (f"ServerRoot {self.dir}\nServerName 127.0.0.1\nListen 127.0.0.1:{self.port}\n"
                f"PidFile {self.dir}/httpd.pid\nDefaultRuntimeDir {self.dir}\nErrorLog {self.dir}/error.log\n"
                f"LogLevel warn\n{run_as}"
                + ("StartServers 1\nServerLimit 1\nThreadsPerChild 8\nMaxRequestWorkers 8\n"
                   "MinSpareThreads 1\nMaxSpareThreads 9\n" if self.lean else "")
                + "".join(f"LoadModule {m}_module {MODULES}/mod_{m}.so\n" for m in mods) + tls
                + location("/local/vigil/api/", read_port, "viewer admin")
                + location("/local/vigil/admin/", admin_port, "admin"))
        conf = self.dir / "httpd.conf"
        conf.write_text(text)
        return conf

    def start(self, read_port: int, admin_port: int, timeout: float = 20) -> "Proxy":
        """Proxy the viewer path to `read_port` and the admin path to `admin_port`."""
        for _ in range(5):  # a free port may be taken between finding it and apache binding it
            self.port = free_port()
            conf = self._conf(read_port, admin_port)
            self.proc = subprocess.Popen(["apache2", "-d", str(self.dir), "-f", str(conf), "-DFOREGROUND"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", self.port)) == 0:
                        return self
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.stop()
                raise AssertionError(f"apache2 did not listen within {timeout} s: {self.log()}")
            err = self.proc.stderr.read()
            if "Address already in use" not in err + self.log():
                raise AssertionError(f"apache2 exited {self.proc.returncode}: {err} {self.log()}")
        raise AssertionError("apache2 found no free port")

    def get(self, path: str, user: str = "admin", password: str | None = None, timeout: float = 10) -> dict | list:
        """The JSON answer of GET <url><path> as `user`, through this proxy's authentication (urllib's own
        digest or basic handler: a second client, not the fleet command's)."""
        import json
        import urllib.request

        mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        mgr.add_password(None, self.url, user, self.users[user] if password is None else password)
        handler = (urllib.request.HTTPDigestAuthHandler if self.auth == "digest"
                   else urllib.request.HTTPBasicAuthHandler)
        with urllib.request.build_opener(handler(mgr)).open(self.url + path, timeout=timeout) as r:
            return json.loads(r.read())

    def log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: apache stops its children and exits
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
