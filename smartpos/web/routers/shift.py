"""Shifts (交班): open one with the cash float, close it with the cash counted (a difference
needs its reason), the shift report shown and printed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from smartpos.money import Money, MoneyError
from smartpos.store.errors import StoreError
from smartpos.store.shifts import ShiftReport
from smartpos.web.deps import OperatorDep, PosDep, allowed
from smartpos.web.i18n import current_lang, format_money, format_time, gettext
from smartpos.web.money_words import money_error
from smartpos.web.templates import render

router = APIRouter()


def _(message: str) -> str:
    return message


METHODS = {"card": _("Card"), "cash": _("Cash"), "qr": _("QR code")}


@router.get("/shift", response_class=HTMLResponse, include_in_schema=False)
async def shift_page(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    allowed(request, op, "shift")
    return render(request, "shift.html", shift=pos.shifts.current(op.staff_id), csrf=op.csrf)


@router.post("/shift/open", response_class=HTMLResponse, include_in_schema=False)
async def shift_open(
    request: Request, pos: PosDep, op: OperatorDep, float: Annotated[str, Form(max_length=20)]
) -> Any:
    allowed(request, op, "shift")
    try:
        float_minor = Money.parse(float, pos.settings.currency).amount_minor
        pos.shifts.open(op.staff_id, float_minor)
    except MoneyError as exc:
        return render(
            request,
            "shift.html",
            422,
            shift=None,
            csrf=op.csrf,
            error=money_error(exc),
            float_text=float,
        )
    except StoreError as exc:
        return render(
            request, "shift.html", 422, shift=None, csrf=op.csrf, error=exc.text(current_lang())
        )
    return RedirectResponse("/sell", status_code=303)


@router.post("/shift/close", response_class=HTMLResponse, include_in_schema=False)
async def shift_close(
    request: Request,
    pos: PosDep,
    op: OperatorDep,
    counted: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Any:
    allowed(request, op, "shift")
    shift = pos.shifts.current(op.staff_id)
    if shift is None:
        return RedirectResponse("/shift", status_code=303)
    again = {"shift": shift, "csrf": op.csrf, "counted_text": counted, "reason": reason}
    try:
        counted_minor = Money.parse(counted, pos.settings.currency).amount_minor
        report = pos.shifts.close(shift.id, counted_minor, reason.strip() or None)
    except MoneyError as exc:
        return render(request, "shift.html", 422, error=money_error(exc), **again)
    except StoreError as exc:
        return render(request, "shift.html", 422, error=exc.text(current_lang()), **again)
    text = report_text(report, op.name, pos.settings.timezone)
    from smartpos.services.checkout import print_report

    problem = await print_report(pos.settings, text)
    return render(
        request, "shift_report.html", report=report, text=text, csrf=op.csrf, print_error=problem
    )


def report_text(report: ShiftReport, cashier: str, timezone: str) -> str:
    """The shift report as the screen shows it (and the printer prints it)."""
    rows = [
        f"{gettext('Shift report')} #{report.shift_id}",
        f"{gettext('Cashier')}: {cashier}",
        f"{gettext('Opened')}: {format_time(report.opened_at, timezone)}",
    ]
    if report.closed_at:
        rows.append(f"{gettext('Closed')}: {format_time(report.closed_at, timezone)}")
    rows.append("")
    for method, totals in report.by_method.items():
        rows.append(f"{gettext(METHODS.get(method, method))}")
        rows.append(
            f"  {gettext('Sales')} {totals.sales_count}: {format_money(totals.sales_minor)}"
        )
        rows.append(
            f"  {gettext('Refunds')} {totals.refunds_count}: {format_money(totals.refunds_minor)}"
        )
        rows.append(
            f"  {gettext('Voids')} {totals.voids_count}: {format_money(totals.voids_minor)}"
        )
    rows += [
        "",
        f"{gettext('Cash float')}: {format_money(report.float_minor)}",
        f"{gettext('Cash expected')}: {format_money(report.expected_minor)}",
    ]
    if report.counted_minor is not None:
        rows.append(f"{gettext('Cash counted')}: {format_money(report.counted_minor)}")
        rows.append(f"{gettext('Difference')}: {format_money(report.difference_minor or 0)}")
    if report.reason:
        rows.append(f"{gettext('Reason')}: {report.reason}")
    return "\n".join(rows)
