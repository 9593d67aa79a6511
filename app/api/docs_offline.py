"""/docs (Swagger UI) with its script and style served by the app: a site network has no internet.

The files come from the fastapi-offline wheel (its `static` folder: Swagger UI's dist build); only its
files are used, not its FastAPI subclass. Every URL on the page is relative, so /docs works under a
reverse-proxy prefix too.
"""
from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse, Response

ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}
# validatorUrl: Swagger UI would otherwise ask validator.swagger.io for a badge
PARAMETERS = {**swagger_ui_default_parameters, "validatorUrl": None}


def router(title: str) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    dist = resources.files("fastapi_offline") / "static"

    @r.get("/docs")
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="openapi.json", title=f"{title} - API",
                                   swagger_js_url="docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="docs-assets/swagger-ui.css",
                                   swagger_favicon_url="docs-assets/favicon.png",
                                   oauth2_redirect_url="docs/oauth2-redirect", swagger_ui_parameters=PARAMETERS)

    @r.get("/docs/oauth2-redirect")
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @r.get("/docs-assets/{name}")
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, f"no asset {name!r}")
        # immutable for the life of the installed package: let the browser keep it
        return Response((dist / name).read_bytes(), media_type=ASSETS[name],
                        headers={"Cache-Control": "public, max-age=86400"})

    return r
