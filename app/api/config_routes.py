"""The configuration routes: read the running and the site configuration, check, save and apply a
site configuration, export and import it as YAML, test an MQTT connection, upload TLS files.

Writes carry the write dependencies of app/api/access.py (token, admin port, loopback) and must say
what they send (`Content-Type: application/json`, or `application/yaml` for an import: app/api/bodies.py):
a form or a `no-cors` fetch from another web site cannot, so they cannot change the settings of a local Vigil.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import yaml
from fastapi import APIRouter, BackgroundTasks, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from app.api.access import Access
from app.api.bodies import json_body, typed
from app.errors import ConfigError
from app.settings import Settings
from app.site import without_secrets

FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


def invalid(e: ConfigError) -> JSONResponse:
    return JSONResponse({"detail": e.items}, status_code=422)


def config_router(settings: Settings, access: Access, schema: dict) -> APIRouter:
    """The configuration routes over one Settings, guarded by `access`."""
    r = APIRouter()
    read, write, who = access.read_dependencies(), access.write_dependencies(), access.who
    problems = {**access.read_responses(), **access.write_responses(),
                422: {"description": "invalid: every problem as {loc, msg}; nothing changed"}}

    @r.get("/api/config", dependencies=read, summary="the running configuration, secrets redacted")
    def config() -> dict[str, Any]:
        return settings.doc()

    @r.get("/api/config/schema.json", dependencies=read, summary="JSON Schema of the configuration")
    def config_schema() -> dict[str, Any]:
        return schema

    @r.get("/api/config/site", dependencies=read,
           summary="the site configuration (what was saved on this device), secrets left out")
    def site() -> dict[str, Any]:
        return settings.site_doc()

    @r.post("/api/config/check", dependencies=write, responses=problems,
            summary="what a site configuration would change and how it would apply; changes nothing")
    async def check(request: Request) -> Any:
        tree = await json_body(request)
        try:
            _, plan, _ = settings.check(tree)
        except ConfigError as e:
            return invalid(e)
        return plan.doc()

    async def save(request: Request, tree: Any, background: BackgroundTasks) -> Any:
        try:
            doc, later = settings.put(tree, who(request))
        except ConfigError as e:
            return invalid(e)
        if later is not None:
            background.add_task(later)  # after the answer is sent: the restart stops this server too
        return doc

    @r.put("/api/config", dependencies=write, responses=problems,
           summary="replace the site configuration: validated, saved (previous version kept), applied")
    async def put(request: Request, background: BackgroundTasks) -> Any:
        return await save(request, await json_body(request), background)

    @r.get("/api/config/export", dependencies=read, response_class=Response,
           responses={200: {"content": {"application/yaml": {"schema": {"type": "object"}}}}},
           summary="the site configuration as one YAML file, secrets left out (import it on the next camera)")
    def export() -> Response:
        text = yaml.safe_dump(without_secrets(settings.site.tree), sort_keys=False, allow_unicode=True)
        return Response(text, media_type="application/yaml",
                        headers={"Content-Disposition": 'attachment; filename="vigil-site.yaml"'})

    @r.post("/api/config/import", dependencies=write, responses=problems,
            summary="a site configuration from a YAML file (an export): same as PUT /api/config")
    async def import_(request: Request, background: BackgroundTasks) -> Any:
        data = await typed(request, YAML_TYPES)
        try:
            tree = yaml.safe_load(data.decode("utf-8-sig")) if data.strip() else {}
        except (UnicodeDecodeError, yaml.YAMLError) as e:
            raise HTTPException(400, f"not a YAML file: {str(e).splitlines()[0][:160]}") from None
        return await save(request, tree, background)

    @r.post("/api/config/test-mqtt", dependencies=write, responses=problems,
            summary="connect once with these MQTT settings (omitted secrets: the stored ones); changes nothing")
    async def test_mqtt(request: Request) -> Any:
        from app.publish.probe import probe  # paho: only when asked

        section = await json_body(request)
        try:
            cfg, _, _ = settings.check(settings_with_mqtt(settings, section))
        except ConfigError as e:
            return invalid(e)
        return await run_in_thread(probe, cfg.mqtt)

    @r.put("/api/config/files/{name}", dependencies=write, responses=problems,
           summary="store a PEM file (CA, client certificate or key) for mqtt.tls.*; answers its path")
    async def upload(name: str, request: Request) -> Any:
        if not FILE_NAME.match(name) or name.startswith("."):
            raise HTTPException(422, "file name: letters, digits, _ . - only (e.g. ca.pem)")
        data = await typed(request, ("application/x-pem-file", "application/octet-stream", "application/json"))
        if b"-----BEGIN " not in data[:4096]:
            return JSONResponse({"detail": [{"loc": name, "msg": "not a PEM file (no -----BEGIN line)"}]}, 422)
        try:
            folder = settings.site.files_dir()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_bytes(data)
            tmp.chmod(0o600)
            tmp.replace(path)
        except ConfigError as e:
            raise HTTPException(409, str(e)) from None
        except OSError as e:
            raise HTTPException(507, f"cannot store {name}: {e.strerror or e}") from None
        return {"path": str(path)}

    return r


def settings_with_mqtt(settings: Settings, section: Any) -> dict:
    """The stored site tree with its mqtt section replaced by `section` (what test-mqtt checks)."""
    if not isinstance(section, dict):
        raise HTTPException(422, "send the mqtt section as a JSON object")
    tree = dict(settings.site.tree)
    tree["mqtt"] = {**section, "enabled": True}
    return tree


async def run_in_thread(fn: Callable, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
