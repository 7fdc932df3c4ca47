"""Typed dependencies of the routes (``PosDep``, and the session ones in security)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from smartpos.web.pos import Pos

__all__ = ["GoTo", "Operator", "OperatorDep", "PosDep", "get_operator", "get_pos"]


def get_pos(request: Request) -> Pos:
    pos: Pos = request.app.state.pos
    return pos


PosDep = Annotated[Pos, Depends(get_pos)]


class GoTo(Exception):
    """Send the browser to ``path`` (a page: 303; an htmx request: HX-Redirect)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass(frozen=True)
class Operator:
    """The person at the till, from the server-side session of the request's cookie."""

    staff_id: int
    staff_no: str
    name: str
    role: str
    mode: str  # "cashier" | "admin": the operator mode chosen at login
    token: str
    csrf: str
    lang: str


SESSION_COOKIE = "sp_session"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_operator(request: Request) -> Operator:
    """The operator of a live, unlocked, fully authenticated session; else the browser is
    sent to log in (or to the lock screen, or to the second factor). Every state-changing
    request must carry the session's CSRF token (form field ``csrf`` or header
    ``X-CSRF-Token``)."""
    from smartpos.web.auth import operator_of

    operator = await operator_of(request)
    if request.method in UNSAFE:
        sent = request.headers.get("x-csrf-token")
        if sent is None:
            form = await request.form()
            field = form.get("csrf")
            sent = field if isinstance(field, str) else None
        if not sent or not hmac.compare_digest(sent, operator.csrf):
            raise HTTPException(status_code=403, detail="the form is out of date: reload")
    return operator


OperatorDep = Annotated[Operator, Depends(get_operator)]


class NeedsOverride(Exception):
    """The operator may not do this: a manager's PIN on this screen may allow it once."""

    def __init__(self, permission: str, message: str, files: list[str] | None = None) -> None:
        super().__init__(message)
        self.permission, self.message = permission, message
        self.files = files or []  # the form's file fields: to be chosen again


async def require(request: Request, operator: Operator, permission: str, detail: str) -> None:
    """Let the request through when ``operator`` has ``permission`` in the matrix (for its
    operator mode), or when the form carries a manager's staff number and PIN that allow it
    (the override is recorded with ``detail``); else :class:`NeedsOverride`. Enforced here,
    at the API, whatever the screen shows."""
    from smartpos.web.i18n import current_lang

    pos: Pos = request.app.state.pos
    security = pos.security
    if permission in security.permissions.effective_permissions(operator.role, operator.mode):
        return
    form = await request.form()
    files = [k for k, v in form.multi_items() if not isinstance(v, str)]
    manager, pin = form.get("override_staff"), form.get("override_pin")
    if isinstance(manager, str) and isinstance(pin, str) and manager and pin:
        from smartpos.security.errors import AuthError

        try:
            security.authorize_override(
                manager, pin, permission, cashier_staff_id=operator.staff_id, detail=detail
            )
        except AuthError as exc:
            raise NeedsOverride(permission, exc.text(current_lang()), files) from None
        return
    raise NeedsOverride(permission, "", files)


def allowed(request: Request, operator: Operator, permission: str) -> None:
    """A page the operator's role may not open at all (no override: the matrix says no):
    403 with the reason."""
    pos: Pos = request.app.state.pos
    if permission not in pos.security.permissions.effective_permissions(
        operator.role, operator.mode
    ):
        raise HTTPException(403, f"{operator.role} in {operator.mode} mode may not: {permission}")
