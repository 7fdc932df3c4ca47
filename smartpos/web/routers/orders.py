"""After the sale: find an order (date range, amount, card last 4, RRN, receipt number,
method, status), see it, reprint its slips, void it, refund part of it (never more than
what is left), take goods back into stock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from smartpos.money import Money, MoneyError
from smartpos.services import checkout
from smartpos.store.errors import StoreError
from smartpos.terminal.errors import TerminalError
from smartpos.web.deps import Operator, OperatorDep, PosDep, allowed, require
from smartpos.web.i18n import current_lang, gettext
from smartpos.web.money_words import money_error
from smartpos.web.pos import Pos
from smartpos.web.templates import render

router = APIRouter()
STATUSES = ("paid", "voided", "partially_refunded", "refunded", "held", "open")


def _(message: str) -> str:
    return message


def _day(text: str, zone: str, *, end: bool = False) -> datetime | None:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=ZoneInfo(zone))
    except ValueError:
        return None
    return day + timedelta(days=1) if end else day


@router.get("/orders", response_class=HTMLResponse, include_in_schema=False)
async def orders_page(
    request: Request,
    pos: PosDep,
    op: OperatorDep,
    date_from: str = "",
    date_to: str = "",
    amount: str = "",
    last4: str = "",
    rrn: str = "",
    receipt_no: str = "",
    method: str = "",
    status: str = "",
) -> Any:
    allowed(request, op, "lookup")
    zone = pos.settings.timezone
    error = None
    amount_minor = None
    if amount.strip():
        try:
            amount_minor = Money.parse(amount, pos.settings.currency).amount_minor
        except MoneyError as exc:
            error = money_error(exc)
    found: list[Any] = []
    if error is None:
        try:
            found = pos.orders.search(
                date_from=_day(date_from, zone),
                date_to=_day(date_to, zone, end=True),
                amount_minor=amount_minor,
                last4=last4.strip() or None,
                rrn=rrn.strip() or None,
                receipt_no=receipt_no.strip() or None,
                method=method or None,
                status=status or None,
                limit=50,
            )
        except StoreError as exc:
            error = exc.text(current_lang())
    query = {
        "date_from": date_from,
        "date_to": date_to,
        "amount": amount,
        "last4": last4,
        "rrn": rrn,
        "receipt_no": receipt_no,
        "method": method,
        "status": status,
    }
    return render(
        request,
        "orders.html",
        csrf=op.csrf,
        found=found,
        q=query,
        error=error,
        statuses=STATUSES,
        zone=zone,
    )


def _details_page(
    request: Request, pos: Pos, op: Operator, order_id: str, status: int = 200, **extra: Any
) -> Any:
    try:
        details = pos.payments.details(order_id)
    except StoreError as exc:
        return render(
            request,
            "orders.html",
            404,
            csrf=op.csrf,
            found=[],
            q={},
            error=exc.text(current_lang()),
            statuses=STATUSES,
            zone="UTC",
        )
    return render(
        request,
        "order.html",
        status_code=status,
        csrf=op.csrf,
        d=details,
        test_cards=pos.test_cards,
        zone=pos.settings.timezone,
        **extra,
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse, include_in_schema=False)
async def order_page(request: Request, pos: PosDep, op: OperatorDep, order_id: str) -> Any:
    allowed(request, op, "lookup")
    return _details_page(request, pos, op, order_id)


@router.post("/orders/{order_id}/reprint", response_class=HTMLResponse, include_in_schema=False)
async def reprint(request: Request, pos: PosDep, op: OperatorDep, order_id: str) -> str:
    await require(request, op, "reprint", f"reprint {order_id}")
    try:
        details = pos.payments.details(order_id)
    except StoreError as exc:
        return exc.text(current_lang())
    sale = next((p for p in details.payments if p.kind == "sale" and p.status == "approved"), None)
    if sale is None:
        return gettext("Nothing to reprint for this order.")
    if sale.method == "cash":
        receipt = checkout.sale_receipt(
            pos.settings,
            details.order,
            pos.identity,
            cashier=op.name,
            lang=current_lang(),
            tendered_minor=sale.tendered_minor,
            change_minor=sale.change_minor,
            reprint=True,
        )
        problem = await checkout.print_sale_receipt(pos.settings, receipt)
        return problem or gettext("Reprinted.")
    from smartpos.terminal.results import TxnResult

    stored = await pos.terminal.call(lambda t: _stored_result(t, sale.key))
    if stored is None:
        return gettext("Nothing to reprint for this order.")
    slips = checkout.card_slips(pos.settings, TxnResult.from_dict(stored), pos.identity)
    slips = [s.__class__(**{**s.__dict__, "reprint": True}) for s in slips]
    problem = await checkout.print_card_slips(pos.settings, slips)
    return problem or gettext("Reprinted.")


async def _stored_result(terminal: Any, key: str) -> dict[str, Any] | None:
    """The terminal's result for the sale of ``key`` (its journal keeps it)."""
    from smartpos.terminal.orders import repeated

    result = repeated(terminal, key, "sale", None)
    return None if result is None else result.to_dict()


@router.post("/orders/{order_id}/void", response_class=HTMLResponse, include_in_schema=False)
async def void(request: Request, pos: PosDep, op: OperatorDep, order_id: str) -> Any:
    lang = current_lang()
    try:
        order = pos.orders.get(order_id)
    except StoreError as exc:
        return _details_page(request, pos, op, order_id, 404, error=exc.text(lang))
    own = order.staff_id == op.staff_id
    await require(request, op, "void_own" if own else "void_any", f"void {order_id}")
    try:
        payment = pos.payments.begin_void(order_id, staff_id=op.staff_id)
        if payment.method == "card" and payment.status == "pending":
            result = await pos.terminal.void(order_ref=payment.key, stan=payment.original_stan)
            pos.payments.record_void(order_id, result.to_dict())
            if not checkout.approved(result):
                return _not_approved(request, pos, op, order_id, result)
    except (StoreError, TerminalError) as exc:
        return _details_page(request, pos, op, order_id, 422, error=exc.text(lang))
    return _details_page(request, pos, op, order_id, notice=gettext("The sale is voided."))


@router.post("/orders/{order_id}/refund", response_class=HTMLResponse, include_in_schema=False)
async def refund(
    request: Request,
    pos: PosDep,
    op: OperatorDep,
    order_id: str,
    amount: Annotated[str, Form(max_length=20)] = "",
    card: Annotated[str, Form(max_length=120)] = "",
) -> Any:
    lang = current_lang()
    try:
        returned = await _returned_goods(request)
        order = pos.orders.get(order_id)
    except (ValueError, StoreError) as exc:
        message = exc.text(lang) if isinstance(exc, StoreError) else str(exc)
        return _details_page(request, pos, op, order_id, 422, error=message)
    if amount.strip():
        try:
            amount_minor = Money.parse(amount, pos.settings.currency).amount_minor
        except MoneyError as exc:
            return _details_page(request, pos, op, order_id, 422, error=money_error(exc))
    else:
        amount_minor = _goods_value(order, returned)
        if amount_minor <= 0:
            message = gettext("Type the amount to refund, or the goods coming back.")
            return _details_page(request, pos, op, order_id, 422, error=message)
    permission = pos.security.permissions.refund_permission(amount_minor)
    await require(request, op, str(permission), f"refund {amount_minor} of {order_id}")
    shift = pos.shifts.current(op.staff_id)
    try:
        details = pos.payments.details(order_id)
        sale = next(p for p in details.payments if p.kind == "sale" and p.status == "approved")
        if sale.method == "card" and not card.strip():
            return _details_page(
                request,
                pos,
                op,
                order_id,
                422,
                error=gettext("Present the card the sale was paid with."),
            )
        refund = pos.payments.begin_refund(
            order_id,
            amount_minor,
            lines=list(returned.items()) or None,
            shift_id=shift.id if shift else None,
            staff_id=op.staff_id,
        )
        if refund.payment.method == "card" and refund.status == "pending":
            from smartpos.terminal.engine import card_or_error

            result = await pos.terminal.refund(
                amount_minor,
                card_or_error(card.strip(), None),
                rrn=refund.payment.original_rrn or "",
                order_ref=refund.key,
            )
            pos.payments.record_refund_result(refund.id, result.to_dict())
            if not checkout.approved(result):
                return _not_approved(request, pos, op, order_id, result)
    except StopIteration:
        return _details_page(
            request, pos, op, order_id, 422, error=gettext("This order has no payment to refund.")
        )
    except (StoreError, TerminalError) as exc:
        return _details_page(request, pos, op, order_id, 422, error=exc.text(lang))
    return _details_page(request, pos, op, order_id, notice=gettext("Refunded."))


def _not_approved(request: Request, pos: Pos, op: Operator, order_id: str, result: Any) -> Any:
    """The order again, with why the bank did not approve and what to do next."""
    from smartpos.terminal.advice import advise

    advice, lang = advise(result), current_lang()
    why = f"{advice.reason(lang)} — {advice.next_step(lang)}"
    return _details_page(request, pos, op, order_id, 422, error=why)


async def _returned_goods(request: Request) -> dict[int, int]:
    """``return_<product id>`` = quantity fields of the refund form (0 or empty: none)."""
    form = await request.form()
    goods: dict[int, int] = {}
    for key, value in form.multi_items():
        if not key.startswith("return_") or not isinstance(value, str) or not value.strip():
            continue
        product, qty = key.removeprefix("return_"), value.strip()
        if not (product.isdigit() and qty.isascii() and qty.isdigit()) or len(qty) > 4:
            raise ValueError(gettext("A quantity is a whole number."))
        if int(qty):
            goods[int(product)] = goods.get(int(product), 0) + int(qty)
    return goods


def _goods_value(order: Any, returned: dict[int, int]) -> int:
    """What the goods coming back were paid: each line's total per unit (its discount
    included), rounded down to the fen so a refund never exceeds what was paid."""
    value = 0
    for line in order.lines:
        qty = returned.get(line.product_id or -1, 0)
        if qty and line.qty:
            value += line.total_minor * min(qty, line.qty) // line.qty
    return value
