"""Taking the money: the card flow (reader → PIN pad → bank → result and receipts) and cash
(tendered, change, the drawer). Every step answers with the dialog's fragment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from smartpos.cards.pan import mask_pan
from smartpos.cards.reading import CardInput
from smartpos.devices.ports import CardReadError, UseChipError
from smartpos.money import Money, MoneyError
from smartpos.services import checkout
from smartpos.store.errors import StoreError
from smartpos.terminal.advice import READ_ERROR, USE_CHIP, Advice, advise
from smartpos.terminal.errors import TerminalError
from smartpos.web.deps import Operator, OperatorDep, PosDep, allowed
from smartpos.web.i18n import current_lang, format_money, gettext
from smartpos.web.money_words import money_error
from smartpos.web.pos import ApprovedScreen, Pos, PresentedCard
from smartpos.web.routers.sell import current_order, publish_cart
from smartpos.web.templates import render

router = APIRouter()

CASH_QUICK_NOTES_MINOR = (1000, 2000, 5000, 10000)  # ¥10, ¥20, ¥50, ¥100


def _(message: str) -> str:
    return message


def _card_dialog(
    request: Request, pos: Pos, op: Operator, advice: Advice | None = None, **extra: Any
) -> Any:
    order = current_order(pos, op.staff_id)
    if advice is not None:
        lang = current_lang()
        extra.setdefault("error", advice.reason(lang))
        extra["next_step"] = advice.next_step(lang)
    return render(
        request,
        "_pay_card.html",
        due_minor=order.total_minor,
        test_cards=pos.test_cards,
        **extra,
    )


@router.get("/pay/card", response_class=HTMLResponse, include_in_schema=False)
async def card_start(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    allowed(request, op, "sell")
    pos.start_payment(op.token)
    if not pos.card_payments:
        return _card_dialog(
            request,
            pos,
            op,
            error=gettext(
                "Card payment is off: the bank's host cannot be used. Cash sales still work."
            ),
        )
    order = current_order(pos, op.staff_id)
    publish_cart(pos, order, "paying")
    return _card_dialog(request, pos, op)


@router.post("/pay/card/present", response_class=HTMLResponse, include_in_schema=False)
async def card_present(
    request: Request,
    pos: PosDep,
    op: OperatorDep,
    card: Annotated[str, Form(max_length=120)],
    entry: Annotated[str, Form()] = "swipe",
) -> Any:
    lang = current_lang()
    text = card.strip()
    keyed = "=" not in text and entry == "swipe" and not text.startswith((";", "%"))
    try:
        card_input = _read(text, entry)
    except UseChipError:
        return _card_dialog(request, pos, op, advice=USE_CHIP)
    except CardReadError:
        return _card_dialog(request, pos, op, advice=READ_ERROR)
    except TerminalError as exc:
        return _card_dialog(request, pos, op, error=exc.text(lang), advice=READ_ERROR)
    order = current_order(pos, op.staff_id)
    pos.presented[op.token] = PresentedCard(
        card_input, "keyed" if keyed else entry, mask_pan(card_input.pan), order.id
    )
    return _pin_dialog(request, pos, op)


def _read(text: str, entry: str) -> CardInput:
    """The card from what the reader gave: a keyboard-wedge magstripe reader types its tracks
    (``%…?;…?``), the simulated reader a PAN or track 2, the cashier may key the PAN."""
    from smartpos.devices.cardreader import card_from_swipe
    from smartpos.devices.magstripe import parse_swipe
    from smartpos.terminal.engine import card_or_error

    if not text:
        raise CardReadError("nothing was read")
    if text.startswith((";", "%")):
        return card_from_swipe(parse_swipe(text), fallback=False)
    return card_or_error(text, None, chip=entry == "insert", tap=entry == "tap")


def _pin_dialog(request: Request, pos: Pos, op: Operator, **extra: Any) -> Any:
    presented = pos.presented.get(op.token)
    if presented is None:
        return _card_dialog(request, pos, op)
    layout = pos.pins.start(op.token, shuffled=pos.pin_pad_shuffled)
    order = current_order(pos, op.staff_id)
    return render(
        request,
        "_pin.html",
        due_minor=order.total_minor,
        card_masked=presented.masked,
        layout=layout,
        count=0,
        no_pin_allowed=True,
        **extra,
    )


@router.get("/pay/pin", response_class=HTMLResponse, include_in_schema=False)
async def pin_again(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    return _pin_dialog(request, pos, op)


@router.post("/pay/pin/key", response_class=HTMLResponse, include_in_schema=False)
async def pin_key(pos: PosDep, op: OperatorDep, position: Annotated[int, Form()]) -> str:
    try:
        count = pos.pins.press(op.token, position)
    except (KeyError, ValueError):
        count = pos.pins.count(op.token)
    return "●" * count


@router.post("/pay/pin/back", response_class=HTMLResponse, include_in_schema=False)
async def pin_back(pos: PosDep, op: OperatorDep) -> str:
    return "●" * pos.pins.back(op.token)


@router.post("/pay/card/confirm", response_class=HTMLResponse, include_in_schema=False)
async def card_confirm(
    request: Request, pos: PosDep, op: OperatorDep, no_pin: Annotated[str, Form()] = ""
) -> Any:
    lang = current_lang()
    presented = pos.presented.get(op.token)
    if presented is None:
        shown = pos.approved.get(op.token)
        if shown is not None:  # the same Pay again after the approval: its screen again
            return _approved(request, pos, op, shown, None)
        return _card_dialog(request, pos, op, error=gettext("Present the card first."))
    pin = None if no_pin else pos.pins.take(op.token)
    if pin is None and not no_pin:
        return _pin_dialog(request, pos, op, error=gettext("Enter the PIN: at least 4 digits."))
    try:
        paid = await checkout.pay_by_card(
            pos.orders,
            pos.payments,
            pos.terminal,
            presented.order_id,
            presented.card,
            pin,
            staff_id=op.staff_id,
        )
    except (TerminalError, StoreError) as exc:
        return _card_dialog(request, pos, op, error=exc.text(lang))
    result = paid.result
    if not checkout.approved(result):
        advice = advise(result)
        publish_cart(pos, paid.order, "declined")
        return render(
            request,
            "_result.html",
            approved=False,
            reason=advice.reason(lang),
            next_step=advice.next_step(lang),
            retry=str(advice.retry),
            csrf=op.csrf,
        )
    pos.presented.pop(op.token, None)
    slips = checkout.card_slips(pos.settings, result, pos.identity)
    print_error = None if result.repeated else await checkout.print_card_slips(pos.settings, slips)
    publish_cart(pos, paid.order, "approved")
    from smartpos.receipts.text import render_text

    preview = render_text(slips[-1], width=pos.settings.printer_width_chars)
    shown = ApprovedScreen(
        paid.order.id,
        paid.order.receipt_no,
        result.amount_minor,
        preview,
        auth_code=result.auth_code,
    )
    return _approved(request, pos, op, shown, print_error)


@router.post("/pay/cancel", response_class=HTMLResponse, include_in_schema=False)
async def cancel(pos: PosDep, op: OperatorDep) -> str:
    pos.start_payment(op.token)
    order = current_order(pos, op.staff_id)
    publish_cart(pos, order)
    return ""


@router.get("/pay/cash", response_class=HTMLResponse, include_in_schema=False)
async def cash_start(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    allowed(request, op, "sell")
    pos.start_payment(op.token)
    order = current_order(pos, op.staff_id)
    publish_cart(pos, order, "paying")
    return _cash_dialog(request, order.total_minor)


def _cash_dialog(request: Request, due_minor: int, **extra: Any) -> Any:
    quick = sorted({due_minor, *(n for n in CASH_QUICK_NOTES_MINOR if n > due_minor)})[:5]
    return render(request, "_pay_cash.html", due_minor=due_minor, quick=quick, **extra)


@router.post("/pay/cash", response_class=HTMLResponse, include_in_schema=False)
async def cash_take(
    request: Request, pos: PosDep, op: OperatorDep, tendered: Annotated[str, Form(max_length=20)]
) -> Any:
    lang = current_lang()
    order = current_order(pos, op.staff_id)
    shown = pos.approved.get(op.token)
    if shown is not None and not order.lines:  # the same submit again: its screen again
        return _approved(request, pos, op, shown, None)
    try:
        tendered_minor = Money.parse(tendered, pos.settings.currency).amount_minor
    except MoneyError as exc:
        return _cash_dialog(request, order.total_minor, error=money_error(exc))
    try:
        _, change_minor = pos.payments.pay_cash(order.id, tendered_minor, staff_id=op.staff_id)
    except StoreError as exc:
        return _cash_dialog(request, order.total_minor, error=exc.text(lang))
    drawer_error = await checkout.open_drawer(pos.settings)
    paid = pos.orders.get(order.id)
    receipt = checkout.sale_receipt(
        pos.settings,
        paid,
        pos.identity,
        cashier=op.name,
        lang=lang,
        tendered_minor=tendered_minor,
        change_minor=change_minor,
    )
    print_error = await checkout.print_sale_receipt(pos.settings, receipt)
    publish_cart(pos, paid, "approved", change=format_money(change_minor))
    from smartpos.receipts.sale import render_sale_text

    preview = render_sale_text(receipt, width=pos.settings.printer_width_chars)
    problems = " ".join(p for p in (drawer_error, print_error) if p) or None
    shown = ApprovedScreen(
        paid.id, paid.receipt_no, paid.total_minor, preview, change_minor=change_minor
    )
    return _approved(request, pos, op, shown, problems)


def _approved(
    request: Request, pos: Pos, op: Operator, shown: ApprovedScreen, print_error: str | None
) -> Any:
    """The approved screen: the amount, the change or auth code, the receipt's preview, the
    printer's problem if any, and what comes next (new sale, reprint, log out). It is kept
    for the session until its next payment starts, and answers the same submit again."""
    pos.approved[op.token] = shown
    return render(
        request,
        "_result.html",
        approved=True,
        amount_minor=shown.amount_minor,
        change_minor=shown.change_minor,
        auth_code=shown.auth_code,
        receipt_no=shown.receipt_no,
        order_id=shown.order_id,
        preview=shown.preview,
        print_error=print_error,
        csrf=op.csrf,
    )
