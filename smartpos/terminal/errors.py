"""Why the terminal refuses a request before anything is sent: codes, with the words in
English and Chinese.

A refusal changes nothing (no trace number used, nothing journaled or armed). Each has a
stable code the callers branch on — the command line adds the command to run, the cashier
app the button to press — and a message for people in each language. The engine's words
name no command-line flag and no screen: those belong to the caller (docs/cli.md lists what
the command line adds).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["MESSAGES", "Refusal", "TerminalError"]


class Refusal(StrEnum):
    NOT_PROVISIONED = "not_provisioned"
    BUSY = "busy"
    NOT_SIGNED_ON = "not_signed_on"  # no working keys (MAC or PIN) yet
    CHIP_CARD_SWIPED = "chip_card_swiped"
    CARD_NOT_ACCEPTED = "card_not_accepted"
    AMOUNT_NOT_POSITIVE = "amount_not_positive"
    PIN_REQUIRED = "pin_required"
    CARD_COUNTER_EXHAUSTED = "card_counter_exhausted"
    NO_SUCH_SALE = "no_such_sale"
    SALE_NOT_VOIDABLE = "sale_not_voidable"
    SALE_SETTLED = "sale_settled"
    SALE_PARTLY_REFUNDED = "sale_partly_refunded"
    NOT_A_REFERENCE = "not_a_reference"
    NOTHING_TO_REFUND = "nothing_to_refund"
    OVER_REFUND = "over_refund"
    OTHER_CARD = "other_card"
    BATCH_FULL = "batch_full"
    CANNOT_ENCODE = "cannot_encode"
    REVERSAL_PENDING = "reversal_pending"
    NOTHING_TO_SETTLE = "nothing_to_settle"
    SETTLEMENT_FAILED = "settlement_failed"
    SETTLEMENT_REFUSED = "settlement_refused"
    NO_PIN_KEY = "no_pin_key"  # the profile's PIN key was never loaded, or is used up
    KEY_REUSED = "key_reused"  # an idempotency key given again for another request


# (English, Chinese); ``{name}`` placeholders are filled from the error's parameters.
MESSAGES: dict[Refusal, tuple[str, str]] = {
    Refusal.NOT_PROVISIONED: (
        "terminal is not provisioned: load its identity and master key first",
        "终端尚未装载：请先装载终端号和主密钥",
    ),
    Refusal.BUSY: (
        "the terminal is busy with another transaction: wait for it to finish, then try again",
        "终端正在处理另一笔交易：请等待完成后重试",
    ),
    Refusal.NOT_SIGNED_ON: (
        "no {key} key: sign on first",
        "没有{key}密钥：请先签到",
    ),
    Refusal.CHIP_CARD_SWIPED: (
        "chip card: insert or tap it (swipe it only when its chip cannot be read)",
        "芯片卡：请插卡或挥卡（芯片无法读取时才可刷卡降级）",
    ),
    Refusal.CARD_NOT_ACCEPTED: ("card not accepted: {reason}", "卡片无法受理：{reason}"),
    Refusal.AMOUNT_NOT_POSITIVE: ("amount must be above zero", "金额必须大于零"),
    Refusal.PIN_REQUIRED: (
        "PIN required: contactless sales above {limit} need the cardholder's PIN",
        "需要密码：超过 {limit} 的挥卡交易须持卡人输入密码",
    ),
    Refusal.CARD_COUNTER_EXHAUSTED: (
        "the card's transaction counter is exhausted",
        "卡片交易计数器已用尽",
    ),
    Refusal.NO_SUCH_SALE: (
        "no such sale in this terminal's journal",
        "本终端流水中没有这笔消费",
    ),
    Refusal.SALE_NOT_VOIDABLE: (
        "the sale is {status}; only approved sales can be voided",
        "该消费状态为 {status}：只有成功的消费可以撤销",
    ),
    Refusal.SALE_SETTLED: (
        "the sale is in a settled batch: refund it instead",
        "该消费所在批次已结算：请改做退货",
    ),
    Refusal.SALE_PARTLY_REFUNDED: (
        "the sale was partly refunded: refund the rest instead",
        "该消费已部分退货：请对余额做退货",
    ),
    Refusal.NOT_A_REFERENCE: (
        "{rrn!r} is not a reference number: an RRN is the 12 letters and digits printed on"
        " the sale's slip",
        "{rrn!r} 不是参考号：参考号是签购单上的 12 位字母和数字",
    ),
    Refusal.NOTHING_TO_REFUND: (
        "the original sale is {status}: nothing to refund",
        "原消费状态为 {status}：无可退款项",
    ),
    Refusal.OVER_REFUND: (
        "refund {amount} exceeds what is left of the sale ({left})",
        "退货金额 {amount} 超过原消费可退余额（{left}）",
    ),
    Refusal.OTHER_CARD: (
        "this is not the card the sale was paid with",
        "这不是原消费所用的卡",
    ),
    Refusal.BATCH_FULL: (
        "batch {batch_no} is full ({count} transactions): settling it first failed"
        " ({reason}); settle, then retry",
        "批次 {batch_no} 已满（{count} 笔）：自动结算失败（{reason}）；请结算后重试",
    ),
    Refusal.CANNOT_ENCODE: (
        "the request cannot be sent: {reason}",
        "请求无法发送：{reason}",
    ),
    Refusal.REVERSAL_PENDING: (
        "a reversal is still waiting for the host: check the link and retry (nothing new is"
        " sent before it is acknowledged)",
        "仍有冲正等待主机确认：请检查网络后重试（确认前不发送新交易）",
    ),
    Refusal.NOTHING_TO_SETTLE: (
        "batch {batch_no} has no transactions: nothing to settle",
        "批次 {batch_no} 没有交易：无需结算",
    ),
    Refusal.SETTLEMENT_FAILED: (
        "{reason}; the batch stays open, settle again",
        "{reason}；批次未关闭，请重新结算",
    ),
    Refusal.SETTLEMENT_REFUSED: (
        "settlement refused: {rc} {text}",
        "结算被拒绝：{rc} {text}",
    ),
    Refusal.NO_PIN_KEY: (
        "no {what} for PINs: provision the terminal with a new one (sales without a PIN still go)",
        "没有可用的{what}加密密码：请重新装载终端密钥（无需密码的交易仍可进行）",
    ),
    Refusal.KEY_REUSED: (
        "order reference {key!r} was used for another request ({was}): use a new reference",
        "订单号 {key!r} 已用于另一笔请求（{was}）：请使用新的订单号",
    ),
}


class TerminalError(Exception):
    """A request the terminal refuses before anything is sent (clear message, no change).

    ``code`` says which refusal; ``text(lang)`` gives the words (``en`` or ``zh``)."""

    def __init__(self, code: Refusal, /, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(self.text("en"))

    def text(self, lang: str = "en") -> str:
        en, zh = MESSAGES[self.code]
        return (zh if lang.startswith("zh") else en).format(**self.params)
