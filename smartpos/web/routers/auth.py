"""Logging in (staff or merchant number + password, operator mode), the admin mode's second
factor (TOTP, or a code by SMS), the idle lock and logging out."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from smartpos.web.auth import (
    PRE_LOGIN_COOKIE,
    clear_session_cookie,
    session_of,
    set_session_cookie,
)
from smartpos.web.deps import PosDep
from smartpos.web.i18n import LANGS, current_lang, gettext
from smartpos.web.templates import render

router = APIRouter()


def _(message: str) -> str:
    return message


def _pre_login(request: Request) -> str:
    return request.cookies.get(PRE_LOGIN_COOKIE) or secrets.token_urlsafe(24)


def _login_page(request: Request, pos: Any, status: int = 200, **extra: Any) -> Response:
    token = _pre_login(request)
    response: Response = render(
        request,
        "login.html",
        status_code=status,
        csrf=token,
        demo_logins=pos.demo_logins,
        **extra,
    )
    response.set_cookie(PRE_LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=True)
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page(request: Request, pos: PosDep) -> Response:
    return _login_page(request, pos)


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
async def login(
    request: Request,
    pos: PosDep,
    identifier: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=128)],
    mode: Annotated[str, Form()] = "cashier",
    lang: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    from smartpos.security.errors import AuthError

    expected = request.cookies.get(PRE_LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf, expected):
        return _login_page(request, pos, 403, error=gettext("The form is out of date: try again."))
    if mode not in ("cashier", "admin"):
        mode = "cashier"
    try:
        outcome = pos.security.login(identifier.strip(), password, mode)
    except AuthError as exc:
        return _login_page(
            request, pos, 401, error=exc.text(current_lang()), identifier=identifier, mode=mode
        )
    staff = outcome.staff
    target = "/login/second-factor" if outcome.needs_second_factor else "/sell"
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, outcome.token)
    # The language chosen at login, else the operator's own.
    chosen = lang if lang in LANGS else staff.lang
    response.set_cookie("lang", chosen, max_age=365 * 86400, httponly=True, samesite="strict")
    response.delete_cookie(PRE_LOGIN_COOKIE)
    return response


def _second_factor_page(
    request: Request, pos: Any, session: Any, status: int = 200, **extra: Any
) -> Response:
    staff = pos.security.directory.get(session.staff_id)
    context: dict[str, Any] = {
        "csrf": session.csrf,
        "method": "totp",
        "has_phone": bool(staff.phone),
        "outbox": pos.sms_outbox_lines(),
        **extra,
    }
    if not staff.totp_enrolled and context["method"] == "totp":
        enrol = pos.security.second_factor.begin_totp(staff.id)
        context.update(enrol_svg=enrol.qr_svg, enrol_secret=enrol.secret)
    return render(request, "second_factor.html", status_code=status, **context)  # type: ignore[no-any-return]


@router.get("/login/second-factor", response_class=HTMLResponse, include_in_schema=False)
async def second_factor_page(request: Request, pos: PosDep) -> Response:
    session = session_of(request)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    if session.second_factor_ok:
        return RedirectResponse("/sell", status_code=303)
    return _second_factor_page(request, pos, session)


def _csrf_ok(session: Any, sent: str) -> bool:
    return bool(sent) and hmac.compare_digest(sent, session.csrf)


@router.post("/login/sms", response_class=HTMLResponse, include_in_schema=False)
async def send_sms(request: Request, pos: PosDep, csrf: Annotated[str, Form()] = "") -> Response:
    from smartpos.security.errors import AuthError

    session = session_of(request)
    if session is None or not _csrf_ok(session, csrf):
        return RedirectResponse("/login", status_code=303)
    try:
        pos.security.second_factor.send_sms_code(session.token)
    except AuthError as exc:
        return _second_factor_page(request, pos, session, 422, error=exc.text(current_lang()))
    return _second_factor_page(request, pos, session, method="sms")


@router.post("/login/second-factor", response_class=HTMLResponse, include_in_schema=False)
async def verify_second_factor(
    request: Request,
    pos: PosDep,
    code: Annotated[str, Form(max_length=12)],
    method: Annotated[str, Form()] = "totp",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    from smartpos.security.errors import AuthError

    session = session_of(request)
    if session is None or not _csrf_ok(session, csrf):
        return RedirectResponse("/login", status_code=303)
    try:
        if method == "sms":
            pos.security.second_factor.verify_sms(session.token, code.strip())
        else:
            pos.security.second_factor.verify_totp(session.token, code.strip())
    except AuthError as exc:
        if exc.code == "locked":
            response = _login_page(request, pos, 401, error=exc.text(current_lang()))
            clear_session_cookie(response)
            return response
        return _second_factor_page(
            request, pos, session, 401, error=exc.text(current_lang()), method=method
        )
    return RedirectResponse("/sell", status_code=303)


@router.get("/lock", response_class=HTMLResponse, include_in_schema=False)
async def lock_page(request: Request, pos: PosDep) -> Response:
    session = session_of(request)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    staff = pos.security.directory.get(session.staff_id)
    return render(request, "lock.html", csrf=session.csrf, operator_name=staff.name)  # type: ignore[no-any-return]


@router.post("/lock", include_in_schema=False)
async def lock_now(request: Request, pos: PosDep, csrf: Annotated[str, Form()] = "") -> Response:
    session = session_of(request)
    if session is not None and _csrf_ok(session, csrf):
        pos.security.lock(session.token)
    return RedirectResponse("/lock", status_code=303)


@router.post("/unlock", response_class=HTMLResponse, include_in_schema=False)
async def unlock(
    request: Request,
    pos: PosDep,
    password: Annotated[str, Form(max_length=128)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    from smartpos.security.errors import AuthError

    session = session_of(request)
    if session is None or not _csrf_ok(session, csrf):
        return RedirectResponse("/login", status_code=303)
    staff = pos.security.directory.get(session.staff_id)
    try:
        pos.security.unlock(session.token, password)
    except AuthError as exc:
        status = 401
        page = render(
            request,
            "lock.html",
            status_code=status,
            csrf=session.csrf,
            operator_name=staff.name,
            error=exc.text(current_lang()),
        )
        return page  # type: ignore[no-any-return]
    return RedirectResponse("/sell", status_code=303)


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, pos: PosDep, csrf: Annotated[str, Form()] = "") -> Response:
    session = session_of(request)
    if session is not None and _csrf_ok(session, csrf):
        pos.security.logout(session.token)
        pos.start_payment(session.token)  # a card presented on the screen is forgotten too
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response
