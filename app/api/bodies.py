"""Request bodies, read the one way every route reads them: bounded, typed, and a broken one is a 4xx.

Writes must say what they send (`Content-Type: application/json`, or YAML for an import): a form or a
`no-cors` fetch from another web site cannot, so it cannot change anything (app/api/guard.py refuses
forms before they get here).
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request
from starlette.requests import ClientDisconnect

MAX_BODY = 1 << 20  # a site configuration is a few kB; a certificate chain a few more
PEEK = 64  # bytes of a request body read to tell an empty one (or `{}`) from one that says something


async def read(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes (the rest is left unread); 400 if it breaks off."""
    data = b""
    try:
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                return None
    except ClientDisconnect:  # the client went away mid-body (or sent a broken chunk): nothing to do
        raise HTTPException(400, "incomplete request body") from None
    return data


async def typed(request: Request, types: tuple[str, ...]) -> bytes:
    """The body, refused unless its content type is one of `types` (415) or it is too large (413)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in types:
        raise HTTPException(415, f"send the body as {' or '.join(types)} (got {ctype or 'no content type'})")
    data = await read(request, MAX_BODY)
    if data is None:
        raise HTTPException(413, f"body larger than {MAX_BODY} bytes")
    return data


async def json_body(request: Request) -> Any:
    """The body as JSON (`null` when empty); 400 when it is not JSON."""
    data = await typed(request, ("application/json",))
    try:
        return json.loads(data or b"null")
    except (ValueError, RecursionError) as e:
        raise HTTPException(400, f"body is not JSON: {str(e)[:120]}") from None


async def empty(request: Request) -> bool:
    """Whether the request sends no body, or an empty one, or `{}` (what a route that takes none accepts)."""
    length = request.headers.get("content-length")
    if length is None and "transfer-encoding" not in request.headers:
        return True
    if length is not None and (not length.isdigit() or int(length) > PEEK):
        return False  # not read: it may be large, or never come
    data = await read(request, PEEK)
    return data is not None and data.strip() in (b"", b"{}")
