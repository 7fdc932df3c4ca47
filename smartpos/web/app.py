"""The cashier app: FastAPI serving server-rendered pages (Jinja2, htmx for the parts that
change during a sale) and a JSON API under ``/api`` (OpenAPI at ``/api/openapi.json``).

Every asset is served from ``smartpos/web/static`` (htmx vendored with its licence): the
terminal loads nothing from the internet. The Content-Security-Policy says so to the
browser too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from smartpos.web import i18n
from smartpos.web.deps import GoTo, NeedsOverride
from smartpos.web.pos import Pos
from smartpos.web.templates import templates

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
# No inline script: every script is a file of ours; styles too.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def create_app(pos: Pos) -> FastAPI:
    """The app on ``pos``; runs its power-on self-test when it starts."""
    from smartpos.web.routers import (
        api,
        auth,
        catalog,
        display,
        orders,
        pay,
        selftest,
        sell,
        settle,
        shift,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The power-on self-test runs at start too, so a screen opened without it (a
        # bookmark to /login) still knows whether card payment is possible.
        from smartpos.services.selftest import run_selftest

        async def power_on() -> None:
            pos.last_selftest = await run_selftest(pos.settings, pos.terminal)

        task = asyncio.create_task(power_on())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    app = FastAPI(
        title="smartpos cashier API",
        version="1",
        description="The cashier app's JSON API (docs/cashier-app.md).",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.pos = pos
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def language_and_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        lang = request.cookies.get("lang") or request.headers.get("accept-language")
        token = i18n.use_lang(i18n.normalize(lang))
        try:
            response = await call_next(request)
        finally:
            i18n._lang.reset(token)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.url.path.startswith("/static"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/selftest", status_code=303)

    @app.get("/lang/{code}", include_in_schema=False)
    async def choose_language(code: str, next: str = "/") -> RedirectResponse:
        # Only a path of this app: never a redirect to somewhere else (an open redirect).
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        if code in i18n.LANGS:
            response.set_cookie("lang", code, max_age=365 * 86400, httponly=True, samesite="strict")
        return response

    for router in (selftest, api, auth, sell, pay, orders, shift, settle, catalog, display):
        app.include_router(router.router)

    @app.exception_handler(NeedsOverride)
    async def needs_override(request: Request, exc: NeedsOverride) -> Response:
        """The manager-PIN screen, posting the same form again with the PIN."""
        if request.url.path.startswith("/api/"):
            detail = {"code": "not_permitted", "message": exc.message or str(exc.permission)}
            return JSONResponse({"detail": detail}, status_code=403)
        form = await request.form()
        fields = [
            (k, v)
            for k, v in form.multi_items()
            if isinstance(v, str) and k not in ("override_staff", "override_pin")
        ]
        page = templates.TemplateResponse(
            request,
            "override.html",
            {
                "action": request.url.path,
                "fields": fields,
                "what": exc.permission,
                "files": exc.files,  # a browser cannot post a file again by itself
                "error": exc.message or None,
            },
            status_code=403,
        )
        if request.headers.get("hx-request"):
            page.headers["HX-Retarget"] = "body"
        return page

    @app.exception_handler(GoTo)
    async def go_to(request: Request, exc: GoTo) -> Response:
        if request.url.path.startswith("/api/"):
            why = {"/login": "not_logged_in", "/lock": "locked"}.get(exc.path, "second_factor")
            return JSONResponse({"detail": {"code": why, "message": why}}, status_code=401)
        if request.headers.get("hx-request"):
            return Response(status_code=200, headers={"HX-Redirect": exc.path})
        return RedirectResponse(exc.path, status_code=303)

    templates.env.globals["pos"] = pos
    return app
