"""The settings page in camera mode, as an integrator meets it: Vigil on the ACAP Runtime emulator (frames
and inference over gRPC), both API ports behind Debian's apache2 set up as the camera's web server
(digest authentication, /local/vigil/api/ for viewers, /local/vigil/admin/ for admins), and Debian's
chromium driven by Playwright logging in as a camera viewer and as a camera admin."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from app.acap.emulator import Emulator, EmulatorConfig
from app.config import load_config
from tests.apache_proxy import USERS, Proxy, available
from tests.conftest import DEFAULT_MODEL, SAMPLE_CLIP
from tests.consumers import BackgroundRun, OnFrame
from tests.mqtt_util import free_port, wait_until
from tests.test_settings_page import (  # noqa: F401  (browser: the module's Playwright chromium fixture)
    LINE, ZONE, browser, draw_line, draw_zone, rename, review_and_save, screenshot,
)

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


@pytest.fixture
def camera(tmp_path):
    """Vigil in camera mode on the emulator, its read and admin ports behind the proxy; yields the proxy's URL."""
    sock_dir = Path(tempfile.mkdtemp(prefix="vg", dir="/tmp"))  # Unix socket paths are short
    address = f"unix://{sock_dir}/rt.sock"
    emu = Emulator(EmulatorConfig(address=address, video=str(SAMPLE_CLIP), loop=True)).start()
    port, admin_port = free_port(), free_port()
    cfg = load_config(None, {
        "model": {"backend": "acap-runtime", "path": str(DEFAULT_MODEL)},
        "source": {"type": "acap-runtime", "stream": {"width": 768, "height": 576, "framerate": 10}},
        "acap_runtime": {"address": address},
        "output.progress": False, "device_id": "cam1",
        "state.file": str(tmp_path / "state.json"),
        "api": {"enabled": True, "port": port, "admin_port": admin_port, "root_path": "/local/vigil"},
    }, env={})
    frames: list[int] = []
    run = BackgroundRun(cfg, [OnFrame(lambda f, d: frames.append(f.seq))])
    errors = run.errors
    proxy = Proxy()
    try:
        wait_until(lambda: errors or len(frames) >= 3, 90, 0.05, "frames from the emulator")
        assert not errors, errors
        proxy.start(port, admin_port)
        yield proxy.url, port
    finally:
        proxy.stop()
        run.stop()
        emu.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)
    assert not errors, errors


def login(browser, user: str):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000},
                              http_credentials={"username": user, "password": USERS[user]})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return ctx, page, errors


def ready(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('body[data-ready="1"]', timeout=30_000)
    page.wait_for_selector('#frame[data-loaded="1"]', timeout=30_000)
    page.wait_for_selector('#access:not([data-status="unknown"])', timeout=10_000)


def test_camera_viewer_reads_and_the_admin_draws_and_saves_through_the_cameras_proxy(browser, camera):
    base, port = camera
    # a viewer: the live picture and the settings, read only, with the way to the admin page
    ctx, page, errors = login(browser, "viewer")
    ready(page, f"{base}/local/vigil/api/ui/settings.html")
    assert page.get_attribute("body", "data-readonly") == "1"
    assert page.locator("#admin-link").get_attribute("href") == "/local/vigil/admin/api/ui/settings.html"
    assert page.locator("#add-zone").is_hidden() and page.locator('[data-key="mqtt.host"]').is_disabled()
    screenshot(page, "settings_camera_viewer.png")
    assert not errors, errors
    ctx.close()

    # the camera's admin: follows the link, draws a zone and a line on the emulator's frames, saves
    ctx, page, errors = login(browser, "admin")
    ready(page, f"{base}/local/vigil/admin/api/ui/settings.html")
    assert page.get_attribute("body", "data-readonly") == "0" and "admin" in page.inner_text("#access")
    draw_zone(page, ZONE)
    draw_line(page, *LINE)
    rename(page, "zone", "zone_1", "walkway")
    rename(page, "line", "line_1", "crossing")
    page.click("#save")
    page.wait_for_selector("#review:not([hidden])")
    screenshot(page, "settings_camera_review.png")
    page.click("#review-back")
    changes = review_and_save(page)
    assert "walkway" in changes and "crossing" in changes, changes
    screenshot(page, "settings_camera_admin.png")
    assert not errors, errors
    ctx.close()

    # through the viewer path, as anyone with viewer rights sees it: the new geometry counts
    with httpx.Client(timeout=15, auth=httpx.DigestAuth("viewer", USERS["viewer"])) as http:
        cfg = http.get(f"{base}/local/vigil/api/config").json()
        assert set(cfg["zones"]) == {"walkway"} and set(cfg["lines"]) == {"crossing"}
        site = http.get(f"{base}/local/vigil/api/config/site").json()
        assert site["file"] and set(site["site"]["lines"]) == {"crossing"}

        def counted():
            c = http.get(f"{base}/local/vigil/api/counts").json()
            line = c["lines"].get("crossing", {"in": 0, "out": 0})
            return c["zones"].get("walkway", {}).get("all", 0) > 0 and line["in"] + line["out"] > 0

        wait_until(counted, 120, 0.5, "the drawn zone and line to count")
