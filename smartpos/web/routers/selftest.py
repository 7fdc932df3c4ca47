"""The power-on self-test: the app's first screen, and ``GET /api/selftest``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from smartpos.services.selftest import SelfTestReport, run_selftest
from smartpos.web.deps import PosDep
from smartpos.web.i18n import gettext
from smartpos.web.pos import Pos
from smartpos.web.templates import render

router = APIRouter()


def _(message: str) -> str:  # marks a message for the catalogue; translated when shown
    return message


CHECK_NAMES = {
    "database": _("Database"),
    "host_link": _("Bank host link"),
    "certificate": _("Host certificate"),
    "clock": _("Clock"),
    "disk": _("Disk space"),
    "printer": _("Receipt printer"),
    "card_reader": _("Card reader"),
}


async def _run(pos: Pos) -> SelfTestReport:
    report = await run_selftest(pos.settings, pos.terminal)
    pos.last_selftest = report
    return report


@router.get("/selftest", response_class=HTMLResponse, include_in_schema=False)
async def selftest_page(request: Request, pos: PosDep) -> Any:
    report = await _run(pos)
    names = {name: gettext(text) for name, text in CHECK_NAMES.items()}
    return render(request, "selftest.html", report=report, check_names=names)


@router.get("/api/selftest", tags=["self-test"])
async def selftest_api(pos: PosDep) -> dict[str, Any]:
    """Run the power-on self-test now: each check with its status, detail and next step;
    whether card and cash payments are possible."""
    return (await _run(pos)).to_dict()
