"""The status and settings pages and their assets.

Both pages share one HTML head (static/head.html: charset, viewport, title, style sheets, and
common.js, the script both use); the page files (static/index.html, static/settings.html) hold their
body, and PAGES says each one's title, asset folder and style sheets.

Served at `/` (laptop) and at `/api/ui/` so that it is reachable through the camera's reverse-proxy
paths, which forward only `/local/<app>/api/…` (viewer) and `/local/<app>/admin/…` (admin). Under
`/api/ui/` the page gets `<base href="../../">`: its relative URLs (`api/health`, `api/ui/status.js`)
then resolve against the app's root under any prefix, e.g. /local/vigil/admin/ for the admin path.
"""
from __future__ import annotations

from importlib import resources
from string import Template

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response

STATIC = resources.files("app.api") / "static"
MEDIA = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png",
         ".json": "application/json"}  # not .html: the pages are put together by `page`
BASE = '<base href="../../">'
# a page's title, where its assets are relative to where it is served (index.html: at the app's root,
# settings.html: in api/ui/) and its style sheets
PAGES = {"index.html": ("status", "api/ui/", ("status.css",)),
         "settings.html": ("settings", "", ("status.css", "settings.css"))}


def asset(name: str) -> Response:
    """A file of app/api/static by its name (no directories), or 404."""
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    f = STATIC / name
    if "/" in name or name.startswith(".") or suffix not in MEDIA or not f.is_file():
        raise HTTPException(404, f"no asset {name!r}")
    return Response(f.read_bytes(), media_type=MEDIA[suffix], headers={"Cache-Control": "no-cache"})


def html(name: str, base: bool = False) -> str:
    """A page of PAGES: the shared head (with `<base href="../../">` when `base`), then the page's body."""
    title, ui, styles = PAGES[name]
    head = Template((STATIC / "head.html").read_text()).substitute(
        base=BASE if base else "", title=title, ui=ui,
        styles="\n".join(f'<link rel="stylesheet" href="{ui}{s}">' for s in styles))
    return head + (STATIC / name).read_text()


def page(name: str, base: bool = False) -> HTMLResponse:
    return HTMLResponse(html(name, base), headers={"Cache-Control": "no-cache"})


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/")
    def index() -> Response:
        return page("index.html")

    @r.get("/api/ui")
    def ui_slash() -> Response:
        # relative, so that it stays under whatever prefix the proxy added
        return RedirectResponse("ui/", status_code=308)

    @r.get("/api/ui/")
    def ui() -> Response:
        return page("index.html", base=True)

    @r.get("/api/ui/settings.html")
    def settings() -> Response:
        return page("settings.html")

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
