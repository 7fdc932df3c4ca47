"""The sell screen: catalog search, the cart (on the server), keyed amounts, scans, hold and
resume. Each action answers with the cart's fragment; the page never reloads mid-sale."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from smartpos.store.errors import StoreError
from smartpos.store.orders import Order
from smartpos.web.deps import OperatorDep, PosDep, allowed, require
from smartpos.web.i18n import current_lang, gettext
from smartpos.web.pos import Pos
from smartpos.web.templates import render

router = APIRouter()
PAGE_SIZE = 40


def _(message: str) -> str:
    return message


def current_order(pos: Pos, staff_id: int) -> Order:
    """The operator's open cart; a new one (its id made now) when there is none."""
    order = pos.orders.current_open(staff_id)
    if order is not None:
        return order
    shift = pos.shifts.current(staff_id)
    return pos.orders.create(
        uuid.uuid4().hex, staff_id=staff_id, shift_id=shift.id if shift else None
    )


def card_off_reason(pos: Pos) -> str | None:
    if pos.card_payments:
        return None
    return gettext("Card payment is off: the bank's host cannot be used. Cash sales still work.")


def cart(
    request: Request, pos: Pos, order: Order, error: str | None = None, status: int = 200
) -> Any:
    publish_cart(pos, order)
    return render(
        request,
        "_cart.html",
        status_code=status,
        order=order,
        error=error,
        card_ok=pos.card_payments,
        card_off_reason=card_off_reason(pos),
    )


def publish_cart(pos: Pos, order: Order, state: str = "cart", **extra: Any) -> None:
    """What the customer display shows: the lines and total in the till's language."""
    from smartpos.web.i18n import format_money

    lang = current_lang()
    pos.events.publish(
        {
            "state": state,
            "lines": [
                {
                    "name": line.name(lang),
                    "qty": line.qty,
                    "total": format_money(line.total_minor),
                }
                for line in order.lines
            ],
            "total": format_money(order.total_minor) if order.lines else "",
            **extra,
        }
    )


@router.get("/sell", response_class=HTMLResponse, include_in_schema=False)
async def sell_page(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    allowed(request, op, "sell")
    shift = pos.shifts.current(op.staff_id)
    if shift is None:
        return RedirectResponse("/shift", status_code=303)
    order = current_order(pos, op.staff_id)
    publish_cart(pos, order)
    return render(
        request,
        "sell.html",
        staff=op,
        session=op,
        csrf=op.csrf,
        shift=shift,
        order=order,
        categories=pos.catalog.categories(),
        products=pos.catalog.search("", limit=PAGE_SIZE),
        idle_minutes=pos.settings.idle_lock_minutes,
        card_ok=pos.card_payments,
        card_off_reason=card_off_reason(pos),
    )


@router.get("/sell/products", response_class=HTMLResponse, include_in_schema=False)
async def products(
    request: Request, pos: PosDep, op: OperatorDep, q: str = "", category: str = ""
) -> Any:
    category_id = int(category) if category.isdigit() else None
    try:
        found = pos.catalog.search(q[:64], category_id=category_id, limit=PAGE_SIZE)
    except ValueError:
        found = []
    return render(request, "_products.html", products=found, q=q[:64])


def _change(request: Request, pos: Pos, op: Any, fn: Any) -> Any:
    allowed(request, op, "sell")
    order = current_order(pos, op.staff_id)
    try:
        return cart(request, pos, fn(order))
    except StoreError as exc:
        return cart(request, pos, pos.orders.get(order.id), exc.text(current_lang()), 422)


@router.post("/sell/add", response_class=HTMLResponse, include_in_schema=False)
async def add(
    request: Request, pos: PosDep, op: OperatorDep, product_id: Annotated[int, Form()]
) -> Any:
    return _change(request, pos, op, lambda o: pos.orders.add_product(o.id, product_id))


@router.post("/sell/scan", response_class=HTMLResponse, include_in_schema=False)
async def scan(request: Request, pos: PosDep, op: OperatorDep, code: Annotated[str, Form()]) -> Any:
    product = pos.catalog.by_barcode(code.strip()[:32])
    if product is None:
        order = current_order(pos, op.staff_id)
        message = gettext("Unknown barcode: %(code)s") % {"code": code.strip()[:32]}
        return cart(request, pos, order, message, 422)
    return _change(request, pos, op, lambda o: pos.orders.add_product(o.id, product.id))


@router.post("/sell/amount", response_class=HTMLResponse, include_in_schema=False)
async def add_amount(
    request: Request, pos: PosDep, op: OperatorDep, amount_minor: Annotated[str, Form()]
) -> Any:
    if not amount_minor.isdigit() or int(amount_minor) <= 0:
        order = current_order(pos, op.staff_id)
        return cart(request, pos, order, gettext("Key an amount first."), 422)
    label = gettext("Amount")
    return _change(
        request, pos, op, lambda o: pos.orders.add_amount(o.id, int(amount_minor), label)
    )


@router.post("/sell/qty", response_class=HTMLResponse, include_in_schema=False)
async def set_qty(
    request: Request,
    pos: PosDep,
    op: OperatorDep,
    line_id: Annotated[int, Form()],
    qty: Annotated[int, Form()],
) -> Any:
    return _change(request, pos, op, lambda o: pos.orders.set_qty(o.id, line_id, qty))


@router.get("/sell/discount", response_class=HTMLResponse, include_in_schema=False)
async def discount_dialog(request: Request, pos: PosDep, op: OperatorDep, line_id: int) -> Any:
    order = current_order(pos, op.staff_id)
    line = next((ln for ln in order.lines if ln.id == line_id), None)
    if line is None:
        return cart(request, pos, order, gettext("That line is no longer in the cart."), 422)
    return render(request, "_discount.html", line=line, csrf=op.csrf, percents=(5, 10, 20, 50))


@router.post("/sell/discount", response_class=HTMLResponse, include_in_schema=False)
async def discount(
    request: Request,
    pos: PosDep,
    op: OperatorDep,
    line_id: Annotated[int, Form()],
    percent: Annotated[int, Form(ge=0, le=100)],
) -> Any:
    permission = pos.security.permissions.discount_permission(percent)
    await require(request, op, str(permission), f"discount {percent}% on line {line_id}")
    order = current_order(pos, op.staff_id)
    try:
        pos.orders.set_line_discount(order.id, line_id, percent=percent)
    except StoreError as exc:
        return cart(request, pos, pos.orders.get(order.id), exc.text(current_lang()), 422)
    if request.headers.get("hx-request"):
        return cart(request, pos, pos.orders.get(order.id))
    return RedirectResponse("/sell", status_code=303)  # a form post (the manager's PIN)


@router.post("/sell/clear", response_class=HTMLResponse, include_in_schema=False)
async def clear(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    return _change(request, pos, op, lambda o: pos.orders.clear(o.id))


@router.post("/sell/hold", response_class=HTMLResponse, include_in_schema=False)
async def hold(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    order = current_order(pos, op.staff_id)
    try:
        pos.orders.hold(order.id)
    except StoreError as exc:
        return cart(request, pos, order, exc.text(current_lang()), 422)
    return cart(request, pos, current_order(pos, op.staff_id))


@router.get("/sell/held", response_class=HTMLResponse, include_in_schema=False)
async def held(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    return render(request, "_held.html", held=pos.orders.held())


@router.post("/sell/resume", response_class=HTMLResponse, include_in_schema=False)
async def resume(
    request: Request, pos: PosDep, op: OperatorDep, order_id: Annotated[str, Form()]
) -> Response:
    current = current_order(pos, op.staff_id)
    try:
        if current.lines:  # the cart in progress is held in its turn, never lost
            pos.orders.hold(current.id)
        pos.orders.resume(order_id, op.staff_id)
    except StoreError as exc:
        return cart(request, pos, current, exc.text(current_lang()), 422)  # type: ignore[no-any-return]
    return Response(headers={"HX-Redirect": "/sell"})


@router.post("/sell/new", include_in_schema=False)
async def new_sale(pos: PosDep, op: OperatorDep) -> Response:
    pos.events.publish({"state": "idle"})
    return Response(headers={"HX-Redirect": "/sell"})
