"""Changes need more than a web page's POST (issue 23 §2): cross-site requests and foreign Host names are
refused, over real HTTP (uvicorn) and from a real page in headless Chromium; curl-style clients, the
camera's reverse proxy (X-Forwarded-Host) and same-origin pages keep working."""
import http.server
import subprocess
import threading

import httpx
import pytest

from app.analytics.config import LineConfig
from app.api.config import ApiConfig
from app.api.guard import HostPolicy, split_host
from app.health import Health
from app.status import Parts, Status
from app.timing import StageTimer
from tests.mqtt_util import wait_until
from tests.test_api import chromium


class Served:
    """The API over a bare Status on a free loopback port; `resets` records every reset that got through."""

    def __init__(self, reset_fn=None, **api) -> None:
        from app.api.server import ApiServer, create_app

        self.resets: list = []

        def reset(lines):
            self.resets.append(lines)
            return reset_fn(lines) if reset_fn is not None else {}

        status = Status(["person"], "dev", StageTimer(), Parts(Health(), Health()), "r",
                        lines={"door": LineConfig(start=(0.5, 0.0), end=(0.5, 1.0))})
        cfg = ApiConfig(enabled=True, port=0, **api)
        self.server = ApiServer(create_app(status, cfg, {}, {}, reset=reset), cfg.host, 0)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def post(self, **headers) -> httpx.Response:
        return self.client.post("/api/counts/reset", headers={k.replace("_", "-"): v for k, v in headers.items()})

    def close(self) -> None:
        self.client.close()
        self.server.close()


@pytest.fixture
def api():
    s = Served()
    yield s
    s.close()


def test_the_issues_cross_site_reset_is_refused_and_resets_nothing(api):
    # curl -X POST -H 'Origin: http://evil.example' -H 'Content-Type: text/plain' …/api/counts/reset
    r = api.post(Origin="http://evil.example", Content_Type="text/plain")
    assert r.status_code == 403 and "cross-site request refused" in r.json()["detail"]
    assert api.resets == []


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},  # a no-cors fetch without a body
    {"Origin": "null"},  # a sandboxed frame, a file:// page
    {"Origin": "http://127.0.0.1:1"},  # another web app on this machine (same host, other port)
    {"Sec-Fetch-Site": "cross-site"},
    {"Content-Type": "application/x-www-form-urlencoded"},  # an old browser's form, without Origin
    {"Content-Type": "text/plain;charset=UTF-8"},
    {"Content-Type": "multipart/form-data; boundary=x"},
])
def test_every_sign_of_a_cross_site_change_is_refused(api, headers):
    r = api.client.post("/api/counts/reset", headers=headers)
    assert r.status_code == (415 if "Content-Type" in headers else 403), r.text
    assert api.resets == []


@pytest.mark.parametrize("headers", [
    {},  # curl -X POST, scripts, Home Assistant's rest_command
    {"Content-Type": "application/json"},
    {"Origin": "ORIGIN"},  # the status page itself, or the docs page at /docs
    {"Origin": "ORIGIN", "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"},
])
def test_same_origin_pages_and_plain_clients_still_change(api, headers):
    headers = {k: v.replace("ORIGIN", api.url) for k, v in headers.items()}
    assert api.client.post("/api/counts/reset", headers=headers).status_code == 200
    assert len(api.resets) == 1


def test_a_form_content_type_with_the_bearer_token_is_not_a_forged_request():
    s = Served(token="t0k3n")
    try:
        r = s.post(Content_Type="text/plain", Authorization="Bearer t0k3n")
        assert r.status_code == 200 and s.resets == [None]
    finally:
        s.close()


@pytest.mark.parametrize("host,code", [
    ("evil.example", 403), ("evil.example:8080", 403), ("rebind.attacker.example.com.", 403),
    ("127.0.0.1", 200), ("localhost", 200), ("[::1]:8080", 200), ("192.168.0.90", 200), ("camera", 200),
    ("axis-accc8e012345.local", 200),
])
def test_reads_refuse_a_foreign_host_name_dns_rebinding(api, host, code):
    r = api.client.get("/api/counts", headers={"Host": host})
    assert r.status_code == code, r.text
    if code == 403:
        assert "api.allowed_hosts" in r.json()["detail"]


def test_allowed_hosts_adds_names_and_domains_and_star_allows_any():
    s = Served(allowed_hosts=["cam.example.com", ".site.example"])
    try:
        for host, code in (("cam.example.com", 200), ("CAM.example.com:8080", 200), ("a.site.example", 200),
                           ("site.example", 200), ("other.example.com", 403)):
            assert s.client.get("/api/health", headers={"Host": host}).status_code == code, host
    finally:
        s.close()
    s = Served(allowed_hosts=["*"])
    try:
        assert s.client.get("/api/health", headers={"Host": "anything.example"}).status_code == 200
    finally:
        s.close()


def test_behind_the_cameras_reverse_proxy_the_forwarded_name_is_the_served_one(api):
    # Apache on the camera: Host rewritten to the target (localhost:2001), the browser's name forwarded
    proxied = {"Host": "localhost:2001", "X-Forwarded-Host": "cam.example.com", "X-Forwarded-For": "10.0.0.7"}
    assert api.client.get("/api/counts", headers=proxied).status_code == 200
    r = api.client.post("/api/counts/reset", headers={**proxied, "Origin": "http://cam.example.com"})
    assert r.status_code == 200 and len(api.resets) == 1
    r = api.client.post("/api/counts/reset", headers={**proxied, "Origin": "http://evil.example"})
    assert r.status_code == 403
    # a forwarded name that did not come through a proxy on this machine is checked like Host
    r = api.client.get("/api/counts", headers={"Host": "192.168.0.90", "X-Forwarded-Host": "evil.example"})
    assert r.status_code == 403


def test_a_page_on_another_origin_cannot_reset_counts_from_a_real_browser(api, tmp_path):
    """The attack as a browser runs it: a page elsewhere sends a no-cors POST and a form (no body: the route
    takes none) to the API."""
    target = f"{api.url}/api/counts/reset"
    page = f"""<html><body>
<form id="f" method="POST" action="{target}" enctype="text/plain" target="sink"></form>
<iframe name="sink"></iframe>
<script>
fetch("{target}", {{method: "POST", mode: "no-cors"}})
  .finally(() => {{ document.body.dataset.sent = "1"; document.getElementById("f").submit(); }});
</script></body></html>""".encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *a):
            pass

    seen = []
    real = api.server.server.config.app

    async def spy(scope, receive, send):  # what reached the server, before the guard
        if scope["type"] == "http" and scope["method"] == "POST":
            seen.append(dict((k.decode(), v.decode()) for k, v in scope["headers"]))
        await real(scope, receive, send)

    api.server.server.config.app = spy  # uvicorn reads it per connection once loaded
    api.server.server.config.loaded_app = spy
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=4000", "--dump-dom",
                        f"http://127.0.0.1:{evil.server_address[1]}/"], capture_output=True, text=True, timeout=120)
    finally:
        evil.shutdown()
        evil.server_close()
    assert seen, "the browser sent no POST to the API: the test proves nothing"
    assert all("origin" in h for h in seen)  # what the guard relies on: every browser POST says where from
    assert api.resets == []


def test_split_host_and_policy_defaults():
    assert split_host("[::1]:8080") == ("::1", 8080) and split_host("Cam.Example.:80") == ("cam.example", 80)
    assert split_host("::1") == ("::1", None)
    p = HostPolicy([], "127.0.0.1")
    assert p.allows("10.1.2.3") and p.allows("nas") and not p.allows("nas.example.org")


@pytest.mark.parametrize("method,path", [("PUT", "/api/config"), ("POST", "/api/config/import"),
                                         ("POST", "/api/config/test-mqtt"), ("DELETE", "/api/anything")])
def test_every_changing_route_is_guarded_before_routing(api, method, path):
    # the configuration routes (site issue) included: the guard runs before any route or dependency
    r = api.client.request(method, path, headers={"Origin": "http://evil.example", "Content-Type": "application/json"},
                           content=b"{}")
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]


def test_an_error_no_route_handled_is_one_bounded_line_a_minute_and_a_500(caplog):
    import logging

    def broken(lines):
        raise RuntimeError("y" * 5000)

    caplog.set_level(logging.INFO)
    s = Served(reset_fn=broken)
    try:
        for _ in range(3):
            r = s.client.post("/api/counts/reset")
            assert r.status_code == 500 and r.json() == {"detail": "internal error (logged)"}
        assert s.client.get("/api/live").status_code == 200  # the server goes on
    finally:
        s.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage()[:200] for r in errors]
    assert "POST /api/counts/reset" in errors[0].getMessage() and len(errors[0].getMessage()) < 500
    assert errors[0].exc_info is None  # no traceback in the log line (it is at debug level)
