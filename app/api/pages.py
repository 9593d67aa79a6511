"""The status/settings page and its assets.

Served at `/` (laptop) and at `/api/ui/` so that it is reachable through the camera's reverse-proxy
paths, which forward only `/local/<app>/api/…` (viewer) and `/local/<app>/admin/…` (admin). Under
`/api/ui/` the page gets `<base href="../../">`: its relative URLs (`api/health`, `api/ui/status.js`)
then resolve against the app's root under any prefix, e.g. /local/vigil/admin/ for the admin path.
"""
from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response

STATIC = resources.files("app.api") / "static"
MEDIA = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png",
         ".html": "text/html; charset=utf-8", ".json": "application/json"}
BASE = '<base href="../../">'


def asset(name: str) -> Response:
    """A file of app/api/static by its name (no directories), or 404."""
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    f = STATIC / name
    if "/" in name or name.startswith(".") or suffix not in MEDIA or not f.is_file():
        raise HTTPException(404, f"no asset {name!r}")
    return Response(f.read_bytes(), media_type=MEDIA[suffix], headers={"Cache-Control": "no-cache"})


def page(base: bool) -> HTMLResponse:
    html = (STATIC / "index.html").read_text()
    if base:
        head = html.find("<head>")
        if head < 0:
            raise HTTPException(500, "index.html has no <head>")
        html = html[: head + 6] + BASE + html[head + 6:]
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/")
    def index() -> Response:
        return page(base=False)

    @r.get("/api/ui")
    def ui_slash() -> Response:
        # relative, so that it stays under whatever prefix the proxy added
        return RedirectResponse("ui/", status_code=308)

    @r.get("/api/ui/")
    def ui() -> Response:
        return page(base=True)

    @r.get("/api/ui/{name}")
    def ui_asset(name: str) -> Response:
        return asset(name)

    @r.get("/status.js")
    def status_js() -> Response:
        return asset("status.js")

    @r.get("/status.css")
    def status_css() -> Response:
        return asset("status.css")

    return r
