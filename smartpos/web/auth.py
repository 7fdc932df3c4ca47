"""The browser's side of the server-side sessions (smartpos.security): the session cookie
(HttpOnly, SameSite=Strict, Secure), who the request's operator is, and where a request
without a usable session goes (log in, the second factor, the lock screen)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from smartpos.web.deps import SESSION_COOKIE, GoTo, Operator

__all__ = ["clear_session_cookie", "operator_of", "session_of", "set_session_cookie"]

PRE_LOGIN_COOKIE = "sp_pre"  # the login form's CSRF token (double-submit), before a session


def set_session_cookie(response: Response, token: str) -> None:
    # Secure: browsers keep Secure cookies for http://localhost and 127.0.0.1 too (a
    # "potentially trustworthy" origin); over the network the app sits behind TLS.
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=True, path="/"
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")


def session_of(request: Request) -> Any:
    """The live session of the request's cookie (locked or pending too), or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    security = request.app.state.pos.security
    return security.session(token)


async def operator_of(request: Request) -> Operator:
    security = request.app.state.pos.security
    token = request.cookies.get(SESSION_COOKIE)
    # One transaction: the session as session_of reads it, seen now when it is usable.
    session = security.touch(token) if token else None
    if session is None:
        raise GoTo("/login")
    if session.locked:
        raise GoTo("/lock")
    if not session.second_factor_ok:
        raise GoTo("/login/second-factor")
    staff = security.directory.get(session.staff_id)
    return Operator(
        staff_id=staff.id,
        staff_no=staff.staff_no,
        name=staff.name,
        role=staff.role,
        mode=session.mode,
        token=session.token,
        csrf=session.csrf,
        lang=staff.lang,
    )
