"""The customer display: a page for the second screen showing the cart, the total and the
result, updated live by server-sent events (``GET /display/events``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from smartpos.web.deps import PosDep
from smartpos.web.templates import render

router = APIRouter()


@router.get("/display", response_class=HTMLResponse, include_in_schema=False)
async def display_page(request: Request) -> Any:
    return render(request, "display.html")


@router.get("/display/events", include_in_schema=False)
async def display_events(pos: PosDep) -> StreamingResponse:
    return StreamingResponse(
        pos.events.stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
