"""The count routes: objects per label and zone now, line counts since their reset, and the reset."""
from __future__ import annotations

from typing import Annotated, Any, Callable

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from app.api import bodies
from app.api.access import Access, Problem
from app.status import Status

Reset = Callable[[list[str] | None], dict]  # the lines named (None: all) -> their states; None while starting


class LineState(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    in_: int = Field(alias="in", ge=0)
    out: int = Field(ge=0)
    since: float
    labels: dict[str, dict[str, int]]


class Counts(BaseModel):
    counts: dict[str, int]
    zones: dict[str, dict[str, int]]
    lines: dict[str, LineState]


class ResetResult(BaseModel):
    reset: list[str]
    lines: dict[str, LineState]


async def no_body(request: Request) -> None:
    """Refuse a body: one naming lines would otherwise be ignored, and every line reset."""
    if not await bodies.empty(request):
        raise HTTPException(400, f"{request.method} {request.url.path} takes no body; name lines with "
                                 "?line=<name> (repeatable), or send none to reset every line")


def router(status: Status, access: Access, reset: Reset | None) -> APIRouter:
    r = APIRouter()
    write_problem = access.write_responses()

    @r.get("/api/counts", response_model=Counts, dependencies=access.read_dependencies(),
           responses=access.read_responses(), summary="objects per label and zone now; line counts since their reset")
    def counts() -> Any:
        return status.counts()

    @r.post("/api/counts/reset", response_model=ResetResult,
            dependencies=[*access.write_dependencies(), Depends(no_body)],
            responses={**write_problem, 400: {"model": Problem, "description": "a body (this route takes none)"},
                       404: {"model": Problem, "description": "no such line"},
                       503: {"model": Problem, "description": "still starting"}},
            summary="zero line counts (all, or the lines named)")
    def reset_counts(line: Annotated[list[str] | None, Query(description="line to reset (repeatable); default: all")] = None) -> Any:
        if reset is None or not status.lines_cfg:
            raise HTTPException(404, "no lines are configured")
        try:
            lines = reset(line or None)
        except KeyError as e:
            raise HTTPException(404, f"no line named {e.args[0]!r}") from None
        if lines is None:
            raise HTTPException(503, "not counting yet: Vigil is starting (see /api/health)")
        names = line or list(lines)
        return {"reset": names, "lines": lines}

    return r
