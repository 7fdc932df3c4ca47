"""Day-end (日结): settle the terminal's batch with the host — balanced at once, or after the
batch upload — show the report and open the next batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from smartpos.terminal.errors import TerminalError
from smartpos.terminal.results import SettleOutcome, SettleReport
from smartpos.web.deps import OperatorDep, PosDep, require
from smartpos.web.i18n import current_lang, format_money, gettext
from smartpos.web.templates import render

router = APIRouter()


def _(message: str) -> str:
    return message


OUTCOMES = {
    SettleOutcome.BALANCED: _("Balanced: the bank's totals equal the terminal's."),
    SettleOutcome.UPLOADED: _("Balanced after the batch upload."),
    SettleOutcome.NOT_BALANCED: _("Not balanced: settled on the bank's records; ask the acquirer."),
    SettleOutcome.ALREADY_SETTLED: _("The bank had already closed this batch."),
}


@router.get("/settle", response_class=HTMLResponse, include_in_schema=False)
async def settle_page(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    return render(request, "settle.html", csrf=op.csrf, report=None, text=None)


@router.post("/settle", response_class=HTMLResponse, include_in_schema=False)
async def settle(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    await require(request, op, "settle", "day-end settlement")
    try:
        report = await pos.terminal.settle()
    except TerminalError as exc:
        return render(
            request,
            "settle.html",
            422,
            csrf=op.csrf,
            report=None,
            text=None,
            error=exc.text(current_lang()),
        )
    from smartpos.services.checkout import print_report

    text = settle_text(report)
    problem = await print_report(pos.settings, text)
    return render(
        request, "settle.html", csrf=op.csrf, report=report, text=text, print_error=problem
    )


def settle_text(report: SettleReport) -> str:
    rows = [
        f"{gettext('Settlement')} · {gettext('Batch')} {report.batch_no}",
        gettext(OUTCOMES[report.result]),
        "",
        f"{gettext('Sales')} {report.sales_count}: {format_money(report.sales_minor)}",
        f"{gettext('Refunds')} {report.refunds_count}: {format_money(report.refunds_minor)}",
    ]
    if report.uploaded:
        rows.append(f"{gettext('Uploaded')}: {report.uploaded}")
    rows.append(f"{gettext('Next batch')}: {report.next_batch_no}")
    return "\n".join(rows)
