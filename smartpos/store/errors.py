"""Why the store refuses an order, payment, refund or shift request: codes, with the words in
English and Chinese.

A refusal changes nothing: it is raised before the transaction commits, so the database is
as it was. Each has a stable ``code`` the cashier app branches on and a message for people in
each language (``text(lang)``), as :class:`smartpos.terminal.errors.TerminalError` does.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["MESSAGES", "StoreError", "StoreRefusal"]


class StoreRefusal(StrEnum):
    BAD_ORDER_ID = "bad_order_id"
    NO_SUCH_ORDER = "no_such_order"
    ORDER_NOT_OPEN = "order_not_open"
    ORDER_NOT_HELD = "order_not_held"
    EMPTY_ORDER = "empty_order"
    NO_SUCH_PRODUCT = "no_such_product"
    NO_SUCH_LINE = "no_such_line"
    BAD_QTY = "bad_qty"
    BAD_AMOUNT = "bad_amount"
    BAD_LABEL = "bad_label"
    BAD_NOTE = "bad_note"
    BAD_DISCOUNT = "bad_discount"
    TOO_MANY_LINES = "too_many_lines"
    BAD_METHOD = "bad_method"
    AMOUNT_NOT_DUE = "amount_not_due"
    TENDERED_SHORT = "tendered_short"
    PAYMENT_PENDING = "payment_pending"
    NO_SUCH_PAYMENT = "no_such_payment"
    RESULT_MISMATCH = "result_mismatch"
    ALREADY_RECORDED = "already_recorded"
    FULL_PAN = "full_pan"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    NOT_VOIDABLE = "not_voidable"
    VOID_SHIFT_CLOSED = "void_shift_closed"
    NOT_REFUNDABLE = "not_refundable"
    OVER_REFUND = "over_refund"
    OVER_RETURN = "over_return"
    NO_SUCH_REFUND = "no_such_refund"
    NO_SHIFT = "no_shift"
    NO_SUCH_SHIFT = "no_such_shift"
    SHIFT_CLOSED = "shift_closed"
    SHIFT_ALREADY_OPEN = "shift_already_open"
    REASON_REQUIRED = "reason_required"
    SHIFT_HAS_PENDING = "shift_has_pending"
    BAD_QUERY = "bad_query"


# (English, Chinese); ``{name}`` placeholders are filled from the error's parameters.
MESSAGES: dict[StoreRefusal, tuple[str, str]] = {
    StoreRefusal.BAD_ORDER_ID: (
        "order id {order_id!r} is not valid: 8 to 56 letters, digits, '-' or '_'",
        "订单号 {order_id!r} 无效：须为 8 到 56 位字母、数字、'-' 或 '_'",
    ),
    StoreRefusal.NO_SUCH_ORDER: ("no order {order_id!r}", "没有订单 {order_id!r}"),
    StoreRefusal.ORDER_NOT_OPEN: (
        "the order is {status}: only an open order can do this",
        "订单状态为 {status}：只有未结账的订单可以这样操作",
    ),
    StoreRefusal.ORDER_NOT_HELD: (
        "the order is {status}, not held: nothing to resume",
        "订单状态为 {status}，不是挂单：无法取单",
    ),
    StoreRefusal.EMPTY_ORDER: (
        "the order has no lines: add goods first",
        "订单没有商品：请先添加商品",
    ),
    StoreRefusal.NO_SUCH_PRODUCT: (
        "no active product {product_id}",
        "没有在售商品 {product_id}",
    ),
    StoreRefusal.NO_SUCH_LINE: ("the order has no line {line_id}", "订单中没有第 {line_id} 行"),
    StoreRefusal.BAD_QTY: (
        "quantity {qty} is not allowed: {low} to {high}",
        "数量 {qty} 不允许：须在 {low} 到 {high} 之间",
    ),
    StoreRefusal.BAD_AMOUNT: (
        "amount {amount} is not allowed: 1 to {high} (minor units)",
        "金额 {amount} 不允许：须在 1 到 {high} 之间（以分计）",
    ),
    StoreRefusal.BAD_LABEL: (
        "a label of 1 to {high} characters is required",
        "须填写 1 到 {high} 个字的名称",
    ),
    StoreRefusal.BAD_NOTE: (
        "the note is too long: at most {high} characters",
        "备注太长：最多 {high} 个字",
    ),
    StoreRefusal.BAD_DISCOUNT: (
        "discount not allowed: {why}",
        "折扣不允许：{why}",
    ),
    StoreRefusal.TOO_MANY_LINES: (
        "the order has {high} lines already: start another order",
        "订单已有 {high} 行：请另开一单",
    ),
    StoreRefusal.BAD_METHOD: (
        "payment method {method!r} is not accepted here: {allowed}",
        "此处不接受支付方式 {method!r}：可用 {allowed}",
    ),
    StoreRefusal.AMOUNT_NOT_DUE: (
        "amount {amount} is not the amount due ({due}): one payment pays the whole order",
        "金额 {amount} 与应付金额（{due}）不符：每笔订单一次付清",
    ),
    StoreRefusal.TENDERED_SHORT: (
        "tendered {tendered} is less than the amount due ({due})",
        "实收 {tendered} 少于应付金额（{due}）",
    ),
    StoreRefusal.PAYMENT_PENDING: (
        "payment {key!r} is still waiting for its result: finish it first",
        "支付 {key!r} 仍在等待结果：请先完成该笔支付",
    ),
    StoreRefusal.NO_SUCH_PAYMENT: ("no payment {payment_id}", "没有支付记录 {payment_id}"),
    StoreRefusal.RESULT_MISMATCH: (
        "the result does not belong to this request: {why}",
        "该结果不属于这笔请求：{why}",
    ),
    StoreRefusal.ALREADY_RECORDED: (
        "a different result was already recorded ({status})",
        "已记录了不同的结果（{status}）",
    ),
    StoreRefusal.FULL_PAN: (
        "a full card number must never be stored: give the masked PAN only",
        "不得保存完整卡号：只能提供屏蔽后的卡号",
    ),
    StoreRefusal.TOO_MANY_ATTEMPTS: (
        "{high} attempts already: start a new order",
        "已尝试 {high} 次：请新开订单",
    ),
    StoreRefusal.NOT_VOIDABLE: (
        "the order is {status}: only a paid order with no refund can be voided",
        "订单状态为 {status}：只有已付款且未退货的订单可以撤销",
    ),
    StoreRefusal.VOID_SHIFT_CLOSED: (
        "the sale's shift is closed: refund it instead",
        "该笔销售所在班次已交班：请改做退货",
    ),
    StoreRefusal.NOT_REFUNDABLE: (
        "the order is {status}: only paid orders can be refunded",
        "订单状态为 {status}：只有已付款的订单可以退货",
    ),
    StoreRefusal.OVER_REFUND: (
        "refund {amount} exceeds what is left to refund ({left})",
        "退款金额 {amount} 超过可退余额（{left}）",
    ),
    StoreRefusal.OVER_RETURN: (
        "return of {qty} of product {product_id} exceeds what is left ({left})",
        "商品 {product_id} 退货数量 {qty} 超过可退数量（{left}）",
    ),
    StoreRefusal.NO_SUCH_REFUND: ("no refund {refund_id}", "没有退款记录 {refund_id}"),
    StoreRefusal.NO_SHIFT: (
        "cash needs an open shift: open a shift first",
        "现金收付需要当班：请先开班",
    ),
    StoreRefusal.NO_SUCH_SHIFT: ("no shift {shift_id}", "没有班次 {shift_id}"),
    StoreRefusal.SHIFT_CLOSED: (
        "shift {shift_id} is closed: open a new shift",
        "班次 {shift_id} 已交班：请开新班",
    ),
    StoreRefusal.SHIFT_ALREADY_OPEN: (
        "shift {shift_id} is already open with a float of {float_minor}: close it first",
        "班次 {shift_id} 已开班，备用金 {float_minor}：请先交班",
    ),
    StoreRefusal.REASON_REQUIRED: (
        "a reason is required ({why})",
        "须填写原因（{why}）",
    ),
    StoreRefusal.SHIFT_HAS_PENDING: (
        "{count} payment(s) of this shift still wait for a result: finish them first",
        "本班次仍有 {count} 笔支付等待结果：请先完成",
    ),
    StoreRefusal.BAD_QUERY: ("bad search: {why}", "查询条件有误：{why}"),
}


class StoreError(ValueError):
    """A request the store refuses (clear message, nothing changed).

    ``code`` says which refusal; ``text(lang)`` gives the words (``en`` or ``zh``)."""

    def __init__(self, code: StoreRefusal, /, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(self.text("en"))

    def text(self, lang: str = "en") -> str:
        en, zh = MESSAGES[self.code]
        return (zh if lang.startswith("zh") else en).format(**self.params)
