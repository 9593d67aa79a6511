"""The settings page in a real browser (Debian's chromium driven by Playwright), against a running pipeline,
the real configuration routes and real mosquitto brokers: zones and lines drawn with the mouse, the MQTT
connection test, review-then-save, 422 messages beside their fields, and /docs without a CDN."""
from __future__ import annotations

import contextlib
import shutil
from urllib.parse import urlsplit

import httpx
import pytest

from app.config import load_config
from tests.conftest import ROOT
from tests.consumers import BackgroundRun, OnFrame
from tests.mqtt_util import Subscriber, free_port, wait_until
from tests.test_api import chromium
from tests.test_mqtt import FAST

# the walkway of the sample clip (people cross it left-right) and a line across it, drawn 'in' = rightwards
ZONE = [(0.4, 0.4), (0.98, 0.4), (0.98, 0.8), (0.4, 0.8)]
LINE = [(0.7, 0.8), (0.7, 0.25)]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        yield b
        b.close()


@contextlib.contextmanager
def pipeline(tmp_path, mqtt: dict, api: dict | None = None, **over):
    """A looping pipeline on the sample clip with the API on a free loopback port (writes allowed: loopback)."""
    port = free_port()
    cfg = load_config(None, {
        **FAST, "source.loop": True, "device_id": "uitest",
        "state.file": str(tmp_path / "counts.json"),
        "api": {"enabled": True, "port": port, **(api or {})}, "mqtt": mqtt, **over,
    }, env={})
    frames = []
    run = BackgroundRun(cfg, [OnFrame(lambda f, d: frames.append(f.seq))])
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15)

    def ready():
        if run.errors:
            raise run.errors[0]
        try:
            return len(frames) >= 5 and client.get("/api/latest.jpg").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, 60, 0.05, "the API to serve a frame")
        yield client
    finally:
        run.stop()
        client.close()
    assert not run.errors, run.errors


def open_settings(browser, base: str, path: str = "/api/ui/settings.html", from_status: bool = False):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    if from_status:  # as a person finds it: the status page's settings link
        page.goto(base.rstrip("/") + "/")
        page.click("#settings-link")
        page.wait_for_url("**" + path)
    else:
        page.goto(base.rstrip("/") + path)
    page.wait_for_selector('body[data-ready="1"]', timeout=20_000)
    page.wait_for_selector('#frame[data-loaded="1"]', timeout=20_000)
    return page, errors


def at(page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of the normalised point (x, y) of the live frame."""
    box = page.locator("#overlay").bounding_box()
    return box["x"] + x * box["width"], box["y"] + y * box["height"]


def draw_zone(page, points) -> None:
    page.click("#add-zone")
    for p in points:
        page.mouse.click(*at(page, *p))
    page.mouse.click(*at(page, *points[0]))  # the first corner again closes it


def draw_line(page, start, end) -> None:
    page.click("#add-line")
    page.mouse.click(*at(page, *start))
    page.mouse.click(*at(page, *end))


def drag(page, a, b) -> None:
    page.mouse.move(*at(page, *a))
    page.mouse.down()
    page.mouse.move(*at(page, *b), steps=8)
    page.mouse.up()


def rename(page, kind: str, old: str, new: str) -> None:
    field = page.locator(f'#{kind}s .card[data-name="{old}"] input.name')
    field.fill(new)
    field.dispatch_event("change")


def review_and_save(page) -> str:
    page.click("#save")
    page.wait_for_selector("#review:not([hidden])")
    changes = page.inner_text("#changes")
    page.click("#confirm-save")
    page.wait_for_selector('#message[data-ok="1"]', timeout=30_000)
    return changes


def screenshot(page, name: str) -> None:
    """The page as it looks now, in out/ (git-ignored) for people to look at."""
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    # the window as tall as the page, so the action bar sits under it rather than over it
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": page.evaluate("document.documentElement.scrollHeight")})
    page.screenshot(path=str(out / name))
    page.set_viewport_size(size)


def close(a, b, tol=0.01) -> bool:
    return all(abs(u - v) <= tol for u, v in zip(a, b))


def test_zone_and_line_drawn_with_the_mouse_are_saved_and_counted(browser, mosquitto, tmp_path):
    sub = Subscriber(mosquitto.port, "vigil/uitest/#")
    try:
        with pipeline(tmp_path, {"enabled": True, "port": mosquitto.port}) as client:
            page, errors = open_settings(browser, str(client.base_url))
            assert page.locator("#zones .card").count() == 0 and page.locator("#lines .card").count() == 0
            # drawn a little off, then put right by dragging: one corner of the zone, the whole line
            draw_zone(page, [*ZONE[:2], (0.9, 0.7), ZONE[3]])
            drag(page, (0.9, 0.7), ZONE[2])
            draw_line(page, (0.6, 0.8), (0.6, 0.25))
            drag(page, (0.6, 0.5), (0.7, 0.5))
            # one drawn too many, deleted
            draw_zone(page, [(0.05, 0.05), (0.2, 0.05), (0.2, 0.2)])
            assert page.locator('g.zone[data-name="zone_2"]').count() == 1
            page.click('#zones .card[data-name="zone_2"] button.delete')
            assert page.locator('g.zone[data-name="zone_2"]').count() == 0
            rename(page, "zone", "zone_1", "door")
            rename(page, "line", "line_1", "gate")
            page.locator('#zones .card[data-name="door"] input.labels').fill("person")
            page.locator('#zones .card[data-name="door"] input.labels').dispatch_event("change")
            page.locator('#zones .card[data-name="door"] input.loitering').fill("4")
            page.locator('#zones .card[data-name="door"] input.loitering').dispatch_event("change")
            assert page.inner_text("#dirty") == "unsaved changes"
            # the direction is shown, and flipping it twice brings it back
            arrow = page.locator('g.line[data-name="gate"] line.arrow')
            x_tip = float(arrow.get_attribute("x2")) - float(arrow.get_attribute("x1"))
            assert x_tip > 20  # start at the bottom, end at the top: 'in' is rightwards
            page.click('#lines .card[data-name="gate"] button.flip')
            flipped = page.locator('g.line[data-name="gate"] line.arrow')
            assert float(flipped.get_attribute("x2")) - float(flipped.get_attribute("x1")) < -20
            page.click('#lines .card[data-name="gate"] button.flip')

            page.click("#save")
            page.wait_for_selector("#review:not([hidden])")
            screenshot(page, "settings_review.png")
            page.click("#review-back")
            changes = review_and_save(page)
            assert "door" in changes and "gate" in changes, changes
            assert page.inner_text("#dirty") == "no unsaved changes"

            cfg = client.get("/api/config").json()
            assert set(cfg["zones"]) == {"door"} and set(cfg["lines"]) == {"gate"}
            door, gate = cfg["zones"]["door"], cfg["lines"]["gate"]
            assert len(door["polygon"]) == 4 and all(close(p, q) for p, q in zip(door["polygon"], ZONE)), door
            assert door["labels"] == ["person"] and door["loitering_time"] == 4
            assert close(gate["start"], LINE[0]) and close(gate["end"], LINE[1]), gate
            site = client.get("/api/config/site").json()
            assert set(site["site"]["zones"]) == {"door"}

            # counts now come from the drawn geometry: retained occupancy of the zone, crossings of the line
            sub.wait_for(lambda m: m.topic == "vigil/uitest/zones/door/person" and int(m.payload) > 0, 90,
                         "someone in the drawn zone")
            crossing = sub.wait_for(lambda m: m.topic == "vigil/uitest/lines/gate"
                                    and m.json()["in"] + m.json()["out"] > 0, 120, "a crossing of the drawn line")
            assert crossing.json()["in"] + crossing.json()["out"] >= 1
            screenshot(page, "settings_saved.png")
            assert not errors, errors
            page.close()
    finally:
        sub.close()


def test_wrong_mqtt_password_shows_the_brokers_refusal_and_changes_nothing(browser, broker_factory, tmp_path):
    broker = broker_factory(users={"vigil": "right-password"}).start()
    mqtt = {"enabled": True, "port": broker.port, "username": "vigil", "password": "right-password"}
    with pipeline(tmp_path, mqtt) as client:
        wait_until(lambda: client.get("/api/stats").json()["mqtt"]["connected"], 30, 0.1, "MQTT to connect")
        before = client.get("/api/config").json(), client.get("/api/config/site").json()
        page, errors = open_settings(browser, str(client.base_url))
        assert page.get_attribute('[data-key="mqtt.password"]', "value") in (None, "")  # write-only: never shown
        page.fill('[data-key="mqtt.password"]', "wrong-password")
        page.click("#test-mqtt")
        page.wait_for_selector('#mqtt-result[data-ok="0"]', timeout=30_000)
        # mosquitto answers a wrong password with CONNACK 5, "not authorised" (MQTT 3.1.1)
        result = page.get_attribute("#mqtt-result", "data-result")
        assert result in ("bad credentials", "not authorised"), result
        said = page.inner_text("#mqtt-result")
        assert said.startswith(result + ": the broker refused the connection: ") and "authori" in said.lower(), said
        screenshot(page, "settings_mqtt_refused.png")
        # the right one: ok, and still nothing saved
        page.fill('[data-key="mqtt.password"]', "right-password")
        page.click("#test-mqtt")
        page.wait_for_selector('#mqtt-result[data-ok="1"]', timeout=30_000)
        assert (client.get("/api/config").json(), client.get("/api/config/site").json()) == before
        assert client.get("/api/stats").json()["mqtt"]["connected"]
        assert not errors, errors
        page.close()


def test_broker_changed_from_the_page_the_feed_moves_with_no_event_lost(browser, mosquitto, broker_factory, tmp_path):
    """Test connection to a second broker, save: Vigil reconnects there and the events' seq runs on without a gap."""
    second = broker_factory().start()
    old, new = Subscriber(mosquitto.port, "vigil/uitest/events"), Subscriber(second.port, "vigil/uitest/events")
    try:
        with pipeline(tmp_path, {"enabled": True, "port": mosquitto.port}, lines={"mid": {"start": [0.7, 0.8],
                                                                                          "end": [0.7, 0.25]}}) as client:
            old.wait_for(lambda m: True, 60, "events on the first broker")
            page, errors = open_settings(browser, str(client.base_url))
            page.fill('[data-key="mqtt.port"]', str(second.port))
            page.click("#test-mqtt")
            page.wait_for_selector('#mqtt-result[data-ok="1"]', timeout=30_000)
            assert page.inner_text("#mqtt-result").startswith("ok: connected to 127.0.0.1:")
            page.click("#save")
            page.wait_for_selector("#review:not([hidden])")
            assert "mqtt.port" in page.inner_text("#changes") and "reconnects: mqtt" in page.inner_text("#apply")
            page.click("#confirm-save")
            page.wait_for_selector('#message[data-ok="1"]', timeout=30_000)
            assert client.get("/api/config").json()["mqtt"]["port"] == second.port
            first_new = new.wait_for(lambda m: True, 60, "events on the second broker").json()["seq"]
            new.wait_for(lambda m: m.json()["seq"] >= first_new + 5, 60, "more events on the second broker")
            assert not errors, errors
            page.close()
        seqs = sorted({m.json()["seq"] for m in old.messages} | {m.json()["seq"] for m in new.messages})
        assert seqs == list(range(seqs[0], seqs[-1] + 1)), "an event was lost in the move"
        assert min(m.json()["seq"] for m in new.messages) > min(m.json()["seq"] for m in old.messages)
    finally:
        old.close()
        new.close()


def test_a_refused_value_is_shown_beside_its_field_and_nothing_is_saved(browser, tmp_path):
    with pipeline(tmp_path, {"enabled": False}) as client:
        before = client.get("/api/config/site").json()["site"]
        page, errors = open_settings(browser, str(client.base_url), from_status=True)
        page.fill('[data-key="mqtt.port"]', "70000")
        page.click("#save")
        err = page.locator('[data-key="mqtt.port"] ~ .err')
        err.wait_for(timeout=15_000)
        assert err.inner_text(), "no message beside the port"
        assert page.get_attribute('[data-key="mqtt.port"]', "data-invalid") == "1"
        screenshot(page, "settings_refused_value.png")
        assert page.locator("#review").is_hidden()
        # a zone whose label the model does not know: the message in the zone's card
        page.fill('[data-key="mqtt.port"]', "1883")
        draw_zone(page, ZONE)
        labels = page.locator('#zones .card[data-name="zone_1"] input.labels')
        labels.fill("person, unicorn")
        labels.dispatch_event("change")
        page.click("#save")
        card_err = page.locator('#zones .card[data-name="zone_1"] .err')
        page.wait_for_function("document.querySelector('#zones .card .err').textContent !== ''", timeout=15_000)
        said = card_err.inner_text()
        assert said.startswith("labels: 'unicorn' is not one of the model's labels"), said
        assert page.get_attribute('#zones .card[data-name="zone_1"]', "data-invalid") == "1"
        assert client.get("/api/config/site").json()["site"] == before
        # Revert: the edit is gone, the running value is back
        page.click("#revert")  # the port already reads 1883: wait for the reload itself, which drops the zone
        page.wait_for_function("document.getElementById('dirty').textContent === 'no unsaved changes'",
                               timeout=15_000)
        assert page.locator('#zones .card[data-name="zone_1"]').count() == 0
        assert page.input_value('[data-key="mqtt.port"]') == "1883"
        assert not errors, errors
        page.close()


def test_settings_page_works_under_the_reverse_proxy_prefix(browser, tmp_path):
    """Served as the camera's proxy forwards it (/local/vigil/api/ui/…): every URL it uses stays under the prefix."""
    with pipeline(tmp_path, {"enabled": False}, api={"root_path": "/local/vigil"}) as client:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        paths: list[str] = []
        page.on("request", lambda r: r.url.startswith("http") and paths.append(urlsplit(r.url).path))
        page.goto(f"{client.base_url}/local/vigil/api/ui/settings.html")
        page.wait_for_selector('body[data-ready="1"]', timeout=20_000)
        page.wait_for_selector('#frame[data-loaded="1"]', timeout=20_000)
        assert paths and [p for p in paths if not p.startswith("/local/vigil/api/")] == [], paths
        # its API docs link: Swagger UI, its files and the OpenAPI document all under the prefix too
        paths.clear()
        page.click("#docs-link")
        page.wait_for_selector(".opblock", timeout=20_000)
        assert "/local/vigil/api/openapi.json" in paths
        assert [p for p in paths if not p.startswith("/local/vigil/api/")] == [], paths
        page.close()


def test_docs_loads_swagger_from_the_app_and_nothing_else(browser, tmp_path):
    with pipeline(tmp_path, {"enabled": False}) as client:
        html = client.get("/docs").text
        assert "cdn." not in html and "https://" not in html and "http://" not in html, html
        page = browser.new_page()
        hosts: list[str] = []
        page.on("request", lambda r: hosts.append(urlsplit(r.url).netloc))
        page.goto(f"{client.base_url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        page.wait_for_selector(".opblock", timeout=20_000)  # the operations, from the app's openapi.json
        assert "Vigil" in page.inner_text(".swagger-ui .info .title")
        assert set(hosts) == {urlsplit(str(client.base_url)).netloc}, hosts
        page.close()


def test_read_only_without_the_right_to_change_until_the_token_is_given(browser, tmp_path):
    with pipeline(tmp_path, {"enabled": False}, api={"token": "tok-123"}) as client:
        page, errors = open_settings(browser, str(client.base_url))
        assert page.get_attribute("body", "data-readonly") == "1"
        assert page.locator("#readonly").is_visible() and page.locator("#add-zone").is_hidden()
        assert page.locator('[data-key="mqtt.host"]').is_disabled()
        assert page.locator("#save").is_hidden()
        screenshot(page, "settings_read_only.png")
        page.fill("#token-input", "tok-123")
        page.click("#token-use")
        page.wait_for_selector('body[data-readonly="0"]', timeout=10_000)
        assert page.locator("#add-zone").is_visible() and page.locator('[data-key="mqtt.host"]').is_enabled()
        assert not errors, errors
        page.close()


def test_export_import_and_a_ca_upload_from_the_page(browser, tmp_path):
    """One camera's set-up as a YAML file, brought into the next; a CA certificate stored beside the site file."""
    with pipeline(tmp_path, {"enabled": False}) as client:
        page, errors = open_settings(browser, str(client.base_url))
        draw_line(page, *LINE)
        review_and_save(page)
        with page.expect_download() as got:
            page.click("#export")
        text = open(got.value.path()).read()
        assert "line_1:" in text and "password" not in text, text

        other = tmp_path / "next-camera.yaml"
        other.write_text(text.replace("line_1", "gate"))
        page.set_input_files("#import", str(other))
        page.wait_for_selector("#import-confirm:not([hidden])")
        page.click("#import-go")
        page.wait_for_selector('#message[data-ok="1"]:has-text("imported")', timeout=30_000)
        assert set(client.get("/api/config").json()["lines"]) == {"gate"}
        assert page.locator('#lines .card[data-name="gate"]').count() == 1

        pem = tmp_path / "site-ca.pem"
        pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        page.set_input_files("#ca-upload", str(pem))
        page.wait_for_function("document.querySelector('[data-key=\"mqtt.tls.ca_file\"]').value.endsWith('site-ca.pem')")
        stored = page.input_value('[data-key="mqtt.tls.ca_file"]')
        assert open(stored).read() == pem.read_text()
        assert page.is_checked('[data-key="mqtt.tls.enabled"]') and page.inner_text("#dirty") == "unsaved changes"
        assert not errors, errors
        page.close()


def test_an_api_token_set_from_the_page_is_the_one_it_uses_next(browser, tmp_path):
    """Setting api.token from the page: stored, never shown, said to apply at the next start; the page sends it
    from then on (so it is not locked out once it applies)."""
    with pipeline(tmp_path, {"enabled": False}) as client:
        page, errors = open_settings(browser, str(client.base_url))
        page.fill('[data-key="api.token"]', "new-token-42")
        review_and_save(page)
        assert "applied at the next start" in page.inner_text("#message")
        assert client.get("/api/config/site").json()["secrets_set"] == ["api.token"]
        assert page.input_value('[data-key="api.token"]') == ""
        assert page.get_attribute('[data-key="api.token"]', "placeholder").startswith("stored")
        assert page.evaluate("sessionStorage.getItem('vigil-token')") == "new-token-42"
        assert page.get_attribute("body", "data-readonly") == "0"
        page.fill('[data-key="stationary.seconds"]', "12")
        review_and_save(page)  # the page's next change, with the new token
        site = client.get("/api/config/site").json()
        assert site["site"]["stationary"] == {"seconds": 12} and site["secrets_set"] == ["api.token"]
        assert not errors, errors
        page.close()
