"""/docs (Swagger UI) with its script and style served by the app: a site network has no internet.

The files come from the fastapi-offline wheel (its `static` folder: Swagger UI's dist build); only its
files are used, not its FastAPI subclass. The page is served twice: at /docs, and at /api/docs with the
OpenAPI document beside it at /api/openapi.json, since the camera's reverse proxy forwards only
/local/<app>/api/…. Every URL on the page is relative, so both work under any proxy prefix.
"""
from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse, JSONResponse, Response

ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}
# validatorUrl: Swagger UI would otherwise ask validator.swagger.io for a badge
PARAMETERS = {**swagger_ui_default_parameters, "validatorUrl": None}


def router(title: str) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    dist = resources.files("fastapi_offline") / "static"

    def page() -> HTMLResponse:
        # relative: docs-assets/ and openapi.json beside the page, wherever it is served
        return get_swagger_ui_html(openapi_url="openapi.json", title=f"{title} - API",
                                   swagger_js_url="docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="docs-assets/swagger-ui.css",
                                   swagger_favicon_url="docs-assets/favicon.png",
                                   swagger_ui_parameters=PARAMETERS)  # no OAuth2: no redirect page

    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, f"no asset {name!r}")
        # the same for the life of the installed package: let the browser keep it
        return Response((dist / name).read_bytes(), media_type=ASSETS[name],
                        headers={"Cache-Control": "public, max-age=86400"})

    for prefix in ("", "/api"):
        r.add_api_route(f"{prefix}/docs", page, methods=["GET"])
        r.add_api_route(f"{prefix}/docs-assets/{{name}}", asset, methods=["GET"])

    @r.get("/api/openapi.json")
    def openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    return r
