"""app/api/pages.py: the status and settings pages share one HTML head and are served whole."""
import re

import pytest

from app.api.config import ApiConfig
from app.api.server import create_app
from app.health import Health
from app.status import Parts, Status
from app.timing import StageTimer


@pytest.fixture
def client():
    from fastapi.testclient import TestClient

    status = Status(["person"], "dev", StageTimer(), Parts(Health(), Health()), "r")
    with TestClient(create_app(status, ApiConfig())) as c:
        yield c


def head(html: str) -> str:
    return html[: html.index("</head>")]


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_status_and_settings_pages_share_their_head(client):
    status, ui, settings = (client.get(p) for p in ("/", "/api/ui/", "/api/ui/settings.html"))
    assert all(r.status_code == 200 and r.headers["content-type"].startswith("text/html")
               for r in (status, ui, settings))
    common = ['<!doctype html>', '<html lang="en">', '<meta charset="utf-8">',
              '<meta name="viewport" content="width=device-width, initial-scale=1">']
    for r in (status, ui, settings):
        assert all(line in head(r.text) for line in common), head(r.text)
        assert r.text.count("<head>") == 1 and r.text.count("<body") == 1 and r.text.rstrip().endswith("</html>")
    assert "<title>Vigil status</title>" in status.text and "<title>Vigil settings</title>" in settings.text
    # each page's style sheets, relative to where it is served; a <base> only for the page under api/ui/
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)">', settings.text) == ["status.css", "settings.css"]
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)">', status.text) == ["api/ui/status.css"]
    assert '<base href="../../">' in head(ui.text) and "<base" not in status.text + settings.text
    # the script both pages use, from the same file
    assert '<script src="api/ui/common.js"></script>' in head(status.text)
    assert '<script src="common.js"></script>' in head(settings.text)
    js = client.get("/api/ui/common.js")
    assert js.status_code == 200 and "function liveFrame" in js.text
    for own in ("status.js", "settings.js"):  # not defined twice
        assert "const $ =" not in client.get(f"/api/ui/{own}").text, own
    for css in ("status.css", "settings.css"):
        assert client.get(f"/api/ui/{css}").status_code == 200


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_page_parts_are_not_served_raw(client):
    for name in ("head.html", "index.html"):
        assert client.get(f"/api/ui/{name}").status_code == 404
