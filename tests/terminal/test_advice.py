"""Every way a card payment can fail has a reason and a next step, in both languages."""

from __future__ import annotations

import pytest

from smartpos.protocol.codes import CODES
from smartpos.terminal.advice import Retry, advise
from smartpos.terminal.results import Kind, Outcome, TxnResult


def _result(code: str, outcome: Outcome = Outcome.DECLINED, **kw: object) -> TxnResult:
    return TxnResult(outcome, code, "", Kind.SALE, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", sorted(c for c in CODES if not CODES[c].approved))
def test_every_decline_has_a_reason_and_next_step(code: str) -> None:
    advice = advise(_result(code))
    assert advice.retry != Retry.NONE
    assert advice.reason("en") and advice.reason("zh_CN") and advice.next_step("en")
    assert advice.next_step("zh_CN") and advice.next_step("zh_CN") != advice.next_step("en")


def test_the_guide_s_cases() -> None:
    assert advise(_result("55")).retry == Retry.PIN
    assert "PIN again" in advise(_result("55")).next_step("en")
    assert advise(_result("51")).retry == Retry.OTHER
    assert "cash" in advise(_result("51")).next_step("en")
    assert "现金" in advise(_result("51")).next_step("zh_CN")
    assert advise(_result("45")).retry == Retry.CARD
    assert "insert" in advise(_result("45")).next_step("en")
    assert advise(_result("00", Outcome.APPROVED)).retry == Retry.NONE
    timed_out = advise(_result("98", Outcome.ERROR, reversal="sent"))
    assert timed_out.retry == Retry.AGAIN and "reversed" in timed_out.reason("en")
    assert "nothing was charged" in timed_out.next_step("en")
    assert advise(_result("N7")).reason("en") == "Declined (code N7)"
