"""Who may read and who may change, through a real reverse proxy with digest authentication.

A real `vigil run` (sample clip) behind Debian's apache2 set up as the camera's web server sets up an
app's reverseProxy entries: /local/vigil/api/ -> the read port (viewer or admin), /local/vigil/admin/
-> the admin port (admin only). Every route is asked by every caller; the results are the table in
docs/camera.md ("Access matrix"), which this test checks line by line.
"""
from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.apache_proxy import USERS, Proxy, available
from tests.conftest import ROOT, SAMPLE_CLIP, run_vigil
from tests.mqtt_util import wait_until

needs_apache = pytest.mark.skipif(available() is not None, reason=str(available()))

TOKEN = "matrix-token-1"
# (row name, method, path under the app root, JSON body)
ROUTES = [
    ("GET /api/live", "GET", "api/live", None),
    ("GET /api/health", "GET", "api/health", None),
    ("GET /api/config", "GET", "api/config", None),
    ("GET /api/latest.jpg", "GET", "api/latest.jpg", None),
    ("GET /api/ui/ (page)", "GET", "api/ui/", None),
    ("GET /api/access", "GET", "api/access", None),
    ("GET /api/config/site", "GET", "api/config/site", None),
    ("POST /api/counts/reset", "POST", "api/counts/reset", None),
    ("POST /api/config/check", "POST", "api/config/check", {}),
    ("PUT /api/config", "PUT", "api/config", {}),
]
# (column, base URL kind, digest user, bearer token)
CALLERS = [
    ("anonymous, viewer path", "read", None, None),
    ("viewer, viewer path", "read", "viewer", None),
    ("viewer, admin path", "admin", "viewer", None),
    ("admin, viewer path", "read", "admin", None),
    ("admin, admin path", "admin", "admin", None),
    ("token, read port", "direct", None, TOKEN),  # a bearer token, straight to the port (camera: from itself)
    ("nothing, read port", "direct", None, None),
]


class Vigil:
    """`vigil run` on the sample clip, looping, with the API on free ports; ports read from its log."""

    def __init__(self, state: Path, *sets: str) -> None:
        args = [sys.executable, "-m", "app", "run", "--source", str(SAMPLE_CLIP), "--loop", "--no-progress",
                "--set", "mqtt.enabled=false", "--set", "api.enabled=true", "--set", "api.port=0", "--set", "api.root_path=/local/vigil",
                "--set", f"state.file={state / 'state.json'}", "--set", "lines.door.start=[0.5,0.0]",
                "--set", "lines.door.end=[0.5,1.0]"]
        for s in sets:
            args += ["--set", s]
        self.proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stderr.readline, "")),
                                        daemon=True)
        self._reader.start()
        wait_until(lambda: self.proc.poll() is not None or self._found(r"API at http://[^:]+:(\d+)/"), 120, 0.05,
                   "the API")
        assert self.proc.poll() is None, "".join(self.lines)
        self.port = int(self._found(r"API at http://[^:]+:(\d+)/"))
        admin = self._found(r"admin port \(changes\) (\d+)")
        self.admin_port = int(admin) if admin else None

    def _found(self, pattern: str) -> str | None:
        for line in list(self.lines):
            m = re.search(pattern, line)
            if m:
                return m.group(1)
        return None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self._reader.join(5)


def measure(vigil: Vigil, proxy: Proxy) -> dict[str, dict[str, int]]:
    """{route: {caller: status code}}."""
    bases = {"read": f"{proxy.url}/local/vigil/", "admin": f"{proxy.url}/local/vigil/admin/",
             "direct": f"http://127.0.0.1:{vigil.port}/"}
    out: dict[str, dict[str, int]] = {}
    with httpx.Client(timeout=30) as http:
        # a processed frame: counting has started (a reset answers 503 before)
        wait_until(lambda: http.get(bases["direct"] + "api/latest.jpg").status_code == 200, 120, 0.1, "a frame")
        has_put = "put" in http.get(bases["direct"] + "openapi.json").json()["paths"].get("/api/config", {})
        for name, method, path, body in ROUTES:
            if path.startswith("api/config") and method != "GET" and not has_put:
                continue  # not on this build yet
            row = out[name] = {}
            for col, base, user, token in CALLERS:
                auth = httpx.DigestAuth(user, USERS[user]) if user else None
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                r = http.request(method, bases[base] + path, auth=auth, headers=headers,
                                 json=body if body is not None else None)
                row[col] = r.status_code
    return out


def table(mode: str, results: dict[str, dict[str, int]]) -> list[str]:
    cols = [c for c, *_ in CALLERS]
    lines = [f"| {mode}: route | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for route, row in results.items():
        lines.append(f"| `{route}` | " + " | ".join(str(row[c]) for c in cols) + " |")
    return lines


@pytest.fixture
def proxy():
    p = Proxy()
    yield p
    p.stop()


def run_mode(proxy: Proxy, state: Path, *sets: str) -> tuple[Vigil, dict[str, dict[str, int]]]:
    vigil = Vigil(state, *sets)
    try:
        proxy.start(vigil.port, vigil.admin_port or vigil.port)
        return vigil, measure(vigil, proxy)
    except Exception as e:
        vigil.stop()
        raise AssertionError(f"{e}\nvigil: {''.join(vigil.lines[-15:])}\napache: {proxy.log()[-1500:]}") from e


def check_docs(mode: str, results: dict[str, dict[str, int]]) -> None:
    doc = (ROOT / "docs" / "camera.md").read_text()
    measured = "\n".join(table(mode, results))
    print(measured)
    assert measured in doc, f"docs/camera.md's access matrix differs from what was measured:\n{measured}"


READS = ["GET /api/live", "GET /api/health", "GET /api/config", "GET /api/latest.jpg", "GET /api/ui/ (page)",
         "GET /api/access", "GET /api/config/site"]
WRITES = ["POST /api/counts/reset", "POST /api/config/check", "PUT /api/config"]
PROXIED = [c for c, base, *_ in CALLERS if base != "direct"]
# mode: (--set keys, the callers that may change, the code the others get)
MODES = {
    "camera": (["api.admin_port=0"], {"admin, admin path"}, 403),
    "camera, api.token set": (["api.admin_port=0", f"api.token={TOKEN}"], {"admin, admin path", "token, read port"}, 401),
    "laptop, api.token set": ([f"api.token={TOKEN}"], {"token, read port"}, 401),
    # a proxy in front of a loopback bind without a token: the app cannot tell the proxy from a local user
    "laptop, no token": ([], {c for c, *_ in CALLERS} - {"anonymous, viewer path", "viewer, admin path"}, 401),
}


@needs_apache
@pytest.mark.parametrize("mode", list(MODES))
def test_access_matrix(proxy, mode, tmp_path):
    """Each route x each caller: reads need the camera's viewer level (or nothing, on the loopback-only read
    port); changes only what the mode allows. The table in docs/camera.md is what was measured."""
    sets, may_change, refused = MODES[mode]
    vigil, got = run_mode(proxy, tmp_path, *sets)
    camera = vigil.admin_port is not None
    try:
        with httpx.Client(timeout=30) as http:
            viewer, admin = (httpx.DigestAuth(u, USERS[u]) for u in ("viewer", "admin"))
            doc = http.get(f"{proxy.url}/local/vigil/api/access", auth=viewer).json()
            if camera:
                assert vigil.admin_port != vigil.port
                assert doc == {"can_change": False, "how": "none", "token_required": "token" in mode,
                               "admin_url": "/local/vigil/admin/api/ui/"}
                doc = http.get(f"{proxy.url}/local/vigil/admin/api/access", auth=admin).json()
                assert doc["can_change"] is True and doc["how"] == "admin"
                # the page behind admin_url, its assets and its data, through the admin path
                page = http.get(proxy.url + doc["admin_url"], auth=admin)
                assert page.status_code == 200 and '<base href="../../">' in page.text
                # without the slash: redirected, relatively, so it stays under the proxy's prefix
                r = http.get(f"{proxy.url}/local/vigil/api/ui", auth=viewer)
                assert r.status_code == 308 and r.headers["location"] == "ui/"
                refs = re.findall(r'(?:src|href)="(api/[^"?]+)"', page.text)
                assert refs
                for ref in refs:
                    assert http.get(f"{proxy.url}/local/vigil/admin/{ref}", auth=admin).status_code == 200, ref
            else:
                assert doc["admin_url"] is None and doc["how"] == ("none" if "token set" in mode else "loopback")
    except AssertionError as e:
        raise AssertionError(f"{e}\nvigil: {''.join(vigil.lines[-15:])}\napache: {proxy.log()[-1500:]}") from e
    finally:
        vigil.stop()
    print("\n".join(table(mode, got)))  # shown when a check below fails
    for route in READS:
        assert got[route]["anonymous, viewer path"] == 401, route  # the proxy asks for credentials
        assert got[route]["viewer, admin path"] == 401, route  # the proxy: admin only
        for caller in (c for c, *_ in CALLERS if c not in ("anonymous, viewer path", "viewer, admin path")):
            assert got[route][caller] == 200, (route, caller)
    for route in (r for r in WRITES if r in got):
        row = got[route]
        assert {c for c, code in row.items() if code == 200} == may_change, row
        for caller, code in row.items():
            if caller not in may_change:
                # refused by the proxy (no or too low credentials) or by Vigil (401 token / 403 not here)
                assert code == (401 if caller in ("anonymous, viewer path", "viewer, admin path") else refused), \
                    (caller, row)
    check_docs(mode, got)


def test_camera_setting_page_leads_to_the_admin_settings():
    """manifest settingPage (acap/html/index.html, at /local/vigil/index.html): to the admin path's page."""
    manifest = (ROOT / "manifest.json").read_text()
    assert '"settingPage": "index.html"' in manifest
    setting = (ROOT / "acap" / "html" / "index.html").read_text()
    assert 'id="settings" href="admin/api/ui/"' in setting and 'href="api/ui/"' in setting


def test_admin_port_is_checked_at_start(tmp_path):
    """Same port twice, or a busy admin port: one clear line, exit 2."""
    from app.api.config import ApiConfig
    from app.errors import ConfigError
    from app.config import load_config

    with pytest.raises((ConfigError, ValueError), match="api.admin_port must differ from api.port"):
        load_config(None, {"api.port": 8080, "api.admin_port": 8080}, env={})
    assert ApiConfig(port=0, admin_port=0).admin_port == 0  # two free ports
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        p = run_vigil("run", "--max-frames", "1", "--no-progress", "--set", "api.enabled=true",
                      "--set", "api.port=0", "--set", f"api.admin_port={port}")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert f"vigil: config error: api: cannot listen on 127.0.0.1:{port} (api.admin_port): Address already in use" \
        in p.stderr
