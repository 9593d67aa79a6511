"""The CSRF / DNS-rebinding guard behind a real reverse proxy (Debian's apache2, set up as the camera's
`reverseProxy` entry is: /local/vigil/ to http://localhost:<port>, the full path passed on). The status
page and a same-origin change work through it; a change from another page and a rebound name do not."""
import os
import shutil
import subprocess
import time

import httpx
import pytest

from app.analytics.config import LineConfig
from app.api.config import ApiConfig
from app.health import Health
from app.status import Parts, Status
from app.timing import StageTimer
from tests.mqtt_util import free_port, port_open, wait_until

MODULES = "/usr/lib/apache2/modules"


def apache2() -> str:
    path = shutil.which("apache2") or ("/usr/sbin/apache2" if os.path.exists("/usr/sbin/apache2") else None)
    if path is None:
        pytest.fail("apache2 is needed for the reverse proxy test: sudo apt-get install apache2", pytrace=False)
    return path


@pytest.fixture(params=[False, True], ids=["host-rewritten", "host-preserved"])
def proxied(request, tmp_path):
    """(client through apache, resets that got through); ProxyPreserveHost Off (the default) or On."""
    from app.api.server import ApiServer, create_app

    resets = []

    def reset(lines):
        resets.append(lines)
        return {}

    status = Status(["person"], "dev", StageTimer(), Parts(Health(), Health()), "r",
                        lines={"door": LineConfig(start=(0.5, 0.0), end=(0.5, 1.0))})
    cfg = ApiConfig(enabled=True, port=0, root_path="/local/vigil")
    server = ApiServer(create_app(status, cfg, {}, {}, reset=reset), "127.0.0.1", 0)
    server.start()
    port = free_port()
    conf = tmp_path / "httpd.conf"
    conf.write_text("\n".join([
        f"LoadModule mpm_event_module {MODULES}/mod_mpm_event.so",
        f"LoadModule authz_core_module {MODULES}/mod_authz_core.so",
        f"LoadModule proxy_module {MODULES}/mod_proxy.so",
        f"LoadModule proxy_http_module {MODULES}/mod_proxy_http.so",
        f"Listen 127.0.0.1:{port}", "ServerName 127.0.0.1", f"DefaultRuntimeDir {tmp_path}",
        f"PidFile {tmp_path}/httpd.pid", f"ErrorLog {tmp_path}/error.log", "User www-data", "Group www-data",
        f"ProxyPreserveHost {'On' if request.param else 'Off'}",
        f"ProxyPass /local/vigil/ http://localhost:{server.port}/local/vigil/",
    ]) + "\n")
    proc = subprocess.Popen([apache2(), "-f", str(conf), "-DFOREGROUND"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_until(lambda: port_open(port) or proc.poll() is not None, 20, what="apache2 to listen")
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}/local/vigil", timeout=10)
        yield client, resets, request.param
        client.close()
    finally:
        proc.terminate()
        proc.wait(10)
        server.close()


def test_the_status_page_and_reads_work_through_the_proxy_under_the_cameras_address(proxied):
    client, _, _ = proxied
    camera = {"Host": "192.168.0.90"}  # the browser's address bar: the camera's IP
    assert client.get("/", headers=camera).status_code == 200
    assert client.get("/status.js", headers=camera).status_code == 200
    assert client.get("/api/health", headers=camera).status_code == 200


def test_a_same_origin_change_works_and_a_cross_site_one_does_not_through_the_proxy(proxied):
    client, resets, _ = proxied
    camera = {"Host": "192.168.0.90"}
    r = client.post("/api/counts/reset", headers={**camera, "Origin": "http://192.168.0.90"})
    assert r.status_code == 200 and resets == [None]
    r = client.post("/api/counts/reset", headers={**camera, "Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"] and resets == [None]
    assert client.post("/api/counts/reset", headers=camera).status_code == 200  # curl through the proxy


def test_a_rebound_name_through_a_proxy_that_keeps_host_is_refused(proxied):
    client, _, preserved = proxied
    r = client.get("/api/counts", headers={"Host": "rebind.attacker.example"})
    # Host kept: checked like any Host. Host rewritten to localhost: the proxy (on the camera, its login)
    # decides which names reach it, and Vigil takes the forwarded one as served
    assert r.status_code == (403 if preserved else 200), r.text
