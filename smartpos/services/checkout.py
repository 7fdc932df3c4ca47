"""Paying an order: the application service the cashier app (and any other front end) calls
to take a card or cash for an order of the store (DESIGN §3.5 ``pay_by_card``, ``pay_cash``).

The money rule, end to end: the order's payment attempt gives the terminal its idempotency
key (``Orders.begin_payment``: a repeated Pay while the attempt is pending gets the same
attempt, so the same key), and the terminal answers a key it has seen from its journal
without sending anything. A double-clicked Pay, a retried request after a timeout and two
tabs paying one order therefore charge once. Only a declined or failed attempt lets a new
one (a new key) begin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from smartpos.terminal.results import Outcome, TxnResult

if TYPE_CHECKING:
    from smartpos.cards.reading import CardInput
    from smartpos.config import Settings
    from smartpos.services.terminal import TerminalService
    from smartpos.store.orders import Order, Orders
    from smartpos.store.payments import Payments

__all__ = ["CardPayment", "pay_by_card", "print_card_slips"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardPayment:
    result: TxnResult
    order: Order
    payment_id: int


async def pay_by_card(
    orders: Orders,
    payments: Payments,
    terminal: TerminalService,
    order_id: str,
    card: CardInput,
    pin: str | None,
    *,
    staff_id: int,
) -> CardPayment:
    """Charge the order's total to ``card``; the order is paid when approved."""
    order = orders.get(order_id)
    payment = payments.begin_payment(order_id, "card", order.total_minor, staff_id=staff_id)
    result = await terminal.sale(payment.amount_minor, card, pin, order_ref=payment.key)
    payments.record_card_result(payment.id, result.to_dict())
    return CardPayment(result, orders.get(order_id), payment.id)


def card_slips(settings: Settings, result: TxnResult, identity: tuple[str, str, str]) -> list[Any]:
    """Merchant and customer copies of an approved card payment, with its order reference."""
    from smartpos.terminal.receipts import slips_for

    return slips_for(settings, result, identity, reference=result.order_ref or "")


async def _print(what: str, send: Callable[[], None]) -> str | None:
    """Run the printing ``send`` off the event loop; the printer's problem in words, or
    None. A sale stands without its paper: a printer fault is reported, never raised."""
    from smartpos.devices.printer import PrinterError

    try:
        await asyncio.to_thread(send)
    except PrinterError as exc:
        log.warning("%s not printed: %s", what, exc)
        return str(exc)
    return None


async def print_card_slips(settings: Settings, slips: list[Any]) -> str | None:
    """Print the card slips; the printer's problem in words, or None."""
    from smartpos.devices.printer import print_receipts

    return await _print("receipt", lambda: print_receipts(settings, slips))


def approved(result: TxnResult) -> bool:
    return result.result == Outcome.APPROVED


async def open_drawer(settings: Settings) -> str | None:
    """Kick the cash drawer open (ESC/POS, through the receipt printer); the problem in
    words, or None. The cash sale stands either way: the drawer opens by its key too."""
    from smartpos.devices.drawer import EscposCashDrawer
    from smartpos.devices.ports import DrawerError

    try:
        await asyncio.to_thread(EscposCashDrawer.from_settings(settings).open)
    except DrawerError as exc:
        log.warning("%s", exc)
        return str(exc)
    return None


def sale_receipt(
    settings: Settings,
    order: Order,
    identity: tuple[str, str, str],
    *,
    cashier: str,
    lang: str,
    tendered_minor: int | None = None,
    change_minor: int | None = None,
    reprint: bool = False,
) -> Any:
    """The store's receipt (收银小票) of a cash-paid order, in the cashier's language."""
    from smartpos.receipts.sale import SaleLine, SalePayment, SaleReceipt

    tid, mid, merchant_name = identity
    zone = ZoneInfo(settings.timezone)
    return SaleReceipt(
        store_name=merchant_name,
        tid=tid,
        mid=mid,
        receipt_no=order.receipt_no or order.id[:12],
        cashier=cashier,
        when=(order.paid_at or order.created_at).astimezone(zone),
        lang="zh_CN" if lang == "zh_CN" else "en",
        lines=tuple(
            SaleLine(
                name=line.name(lang),
                qty=line.qty,
                unit_price_minor=line.unit_price_minor,
                discount_minor=line.discount_minor,
                total_minor=line.total_minor,
            )
            for line in order.lines
        ),
        subtotal_minor=order.subtotal_minor,
        discount_minor=order.discount_minor,
        total_minor=order.total_minor,
        payments=(
            SalePayment(
                method="cash",
                amount_minor=order.total_minor,
                tendered_minor=tendered_minor,
                change_minor=change_minor,
            ),
        ),
        reprint=reprint,
    )


async def print_sale_receipt(settings: Settings, receipt: Any) -> str | None:
    """Print the store's receipt; the printer's problem in words, or None."""
    from smartpos.devices.printer import print_jobs
    from smartpos.receipts.sale import sale_receipt_bytes

    job = sale_receipt_bytes(
        receipt, width=settings.printer_width_chars, codepage=settings.printer_codepage
    )
    return await _print("receipt", lambda: print_jobs(settings, [job]))


def report_job(text: str, *, width: int) -> bytes:
    """A report (shift, settlement) as ESC/POS bytes: its lines wrapped to the paper,
    Chinese in GB18030, then cut."""
    from escpos.printer import Dummy

    from smartpos.receipts.escpos import print_lines
    from smartpos.receipts.text import Line, wrap

    printer = Dummy()
    printer.hw("INIT")
    print_lines(
        printer, [Line(part) for row in text.splitlines() for part in wrap(row, width) or [""]]
    )
    printer.cut()
    data: bytes = printer.output
    return data


async def print_report(settings: Settings, text: str) -> str | None:
    """Print a report; the printer's problem in words, or None."""
    from smartpos.devices.printer import print_jobs

    job = report_job(text, width=settings.printer_width_chars)
    return await _print("report", lambda: print_jobs(settings, [job]))
