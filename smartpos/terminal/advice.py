"""What the cashier does next after a card payment did not go through: the reason in plain
words and the next step, in English and Chinese, for every outcome a merchant's guide lists
(wrong PIN: enter it again; 51: another card or cash; chip card swiped: insert it …).

Pure data over a result's response code and outcome; the cashier app shows it, the tests
hold every code of ``smartpos.protocol.codes`` to having an answer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from smartpos.protocol.codes import describe
from smartpos.terminal.results import Outcome, TxnResult

__all__ = ["Advice", "Retry", "advise"]


class Retry(StrEnum):
    """What the screen offers next."""

    PIN = "pin"  # the same card, the PIN again
    CARD = "card"  # present the card again (read it again, insert it instead)
    OTHER = "other"  # another card or cash
    AGAIN = "again"  # the same payment again (nothing was charged)
    NONE = "none"  # approved: nothing to do


@dataclass(frozen=True)
class Advice:
    reason_en: str
    reason_zh: str
    next_en: str
    next_zh: str
    retry: Retry

    def reason(self, lang: str) -> str:
        return self.reason_zh if lang.startswith("zh") else self.reason_en

    def next_step(self, lang: str) -> str:
        return self.next_zh if lang.startswith("zh") else self.next_en


_OTHER = ("ask for another card or take cash", "请客户换一张卡或改用现金支付")
_CALL = (
    "ask the customer to call their bank, or pay another way",
    "请客户联系发卡行，或改用其他方式支付",
)
_AGAIN = (
    "nothing was charged: try the payment again, or take cash",
    "未扣款：请重新发起交易，或改用现金",
)
_SIGN_ON = ("nothing was charged: sign on again, then retry", "未扣款：请重新签到后再试")

_NEXT: dict[str, tuple[tuple[str, str], Retry]] = {
    "55": (("ask the customer to enter the PIN again", "请客户重新输入密码"), Retry.PIN),
    "75": (_OTHER, Retry.OTHER),
    "51": (_OTHER, Retry.OTHER),
    "61": (
        (
            "the amount is above the card's limit: another card or cash",
            "超出卡片限额：请换卡或改用现金",
        ),
        Retry.OTHER,
    ),
    "65": (_OTHER, Retry.OTHER),
    "54": (
        ("the card has expired: another card or cash", "卡片已过期：请换卡或改用现金"),
        Retry.OTHER,
    ),
    "45": (
        ("insert the card (chip) or tap it instead of swiping", "请插卡（芯片）或挥卡，不要刷卡"),
        Retry.CARD,
    ),
    "14": (("check the card number, or use another card", "请核对卡号，或换一张卡"), Retry.CARD),
    "41": (
        (
            "keep calm, do not accept this card: another card or cash",
            "请勿受理此卡：请换卡或改用现金",
        ),
        Retry.OTHER,
    ),
    "43": (
        (
            "keep calm, do not accept this card: another card or cash",
            "请勿受理此卡：请换卡或改用现金",
        ),
        Retry.OTHER,
    ),
    "04": (
        ("do not accept this card: another card or cash", "请勿受理此卡：请换卡或改用现金"),
        Retry.OTHER,
    ),
    "01": (_CALL, Retry.OTHER),
    "05": (_CALL, Retry.OTHER),
    "57": (_OTHER, Retry.OTHER),
    "62": (_OTHER, Retry.OTHER),
    "91": (_AGAIN, Retry.AGAIN),
    "96": (_AGAIN, Retry.AGAIN),
    "98": (_AGAIN, Retry.AGAIN),
    "94": (_AGAIN, Retry.AGAIN),
    "77": (_SIGN_ON, Retry.AGAIN),
    "A0": (_SIGN_ON, Retry.AGAIN),
    "99": (("ask the customer to enter the PIN again", "请客户重新输入密码"), Retry.PIN),
}

# Card reading fails before anything is sent (the reader's own errors).
READ_ERROR = Advice(
    "the card could not be read",
    "读卡失败",
    "swipe the card again, slowly and in one stroke; or insert it",
    "请重新刷卡（匀速一次划过），或插卡",
    Retry.CARD,
)
USE_CHIP = Advice(
    "this is a chip card",
    "这是芯片卡",
    "insert the card (chip) or tap it; swipe only if its chip cannot be read",
    "请插卡或挥卡；芯片无法读取时才可刷卡",
    Retry.CARD,
)


def advise(result: TxnResult) -> Advice:
    """The reason and next step for ``result`` (approved: nothing to do)."""
    code = describe(result.response_code)
    if result.result == Outcome.APPROVED:
        return Advice(code.en, code.zh, "", "", Retry.NONE)
    if result.result == Outcome.ERROR:
        reason = (
            "no answer from the bank; the payment was reversed"
            if result.reversal
            else "the bank's host cannot be reached"
        )
        reason_zh = "银行无应答，交易已冲正" if result.reversal else "无法连接银行主机"
        return Advice(reason, reason_zh, *_AGAIN, Retry.AGAIN)
    (next_en, next_zh), retry = _NEXT.get(result.response_code, (_OTHER, Retry.OTHER))
    return Advice(code.en, code.zh, next_en, next_zh, retry)
