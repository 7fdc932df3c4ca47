"""The store's sale receipt (收银小票): an order's items, totals and payments, as data and as
laid-out lines for the paper and the on-screen preview.

Unlike the card slip it is printed in one language, the cashier's (``zh_CN`` or ``en``).
Amounts are integer fen and given as magnitudes; a refund or a void prints them negative.
The arithmetic is the store's (docs/orders-and-shifts.md): a line's total is
``qty × unit price − its discount``, ``subtotal = Σ qty × unit price`` and
``total = subtotal − discount``; ``__post_init__`` refuses a receipt that does not add up,
because a receipt whose figures disagree is worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from smartpos.money import Money
from smartpos.receipts.model import check_masked_pan
from smartpos.receipts.text import Line, Style, _Layout, display_width, lines_text, wrap

if TYPE_CHECKING:
    from escpos.escpos import Escpos

Lang = Literal["zh_CN", "en"]
SaleKind = Literal["sale", "refund", "void"]
PaymentMethod = Literal["card", "cash", "qr"]

LANGS: tuple[Lang, ...] = ("zh_CN", "en")
SALE_KINDS: tuple[SaleKind, ...] = ("sale", "refund", "void")
PAYMENT_METHODS: tuple[PaymentMethod, ...] = ("card", "cash", "qr")

# The store's limits (docs/orders-and-shifts.md): quantities 1..9999, at most 200 lines.
MAX_QTY = 9999
MAX_LINES = 200
MAX_PAYMENTS = 10
# A printer's QR buffer is a few kilobytes; an invoicing link is far shorter than this.
MAX_QR_PAYLOAD_CHARS = 500
MAX_FOOTER_CHARS = 200
MIN_WIDTH = 24

# The fullwidth yuan sign (U+FFE5) rather than U+00A5: it is in GB2312/GBK (A3 A4), so every
# Chinese printer font has it, while U+00A5 exists only as a four-byte GB18030 code that
# GBK-only printers print as garbage. Printers without a Chinese font get no symbol at all.
CURRENCY_SYMBOL = "￥"

_LABELS: dict[str, tuple[str, str]] = {
    "sale": ("收银小票", "Sales receipt"),
    "refund": ("退货/退款", "Refund"),
    "void": ("撤销", "Void"),
    "reprint": ("重打印", "REPRINT"),
    "receipt_no": ("单号", "Receipt no."),
    "cashier": ("收银员", "Cashier"),
    "time": ("时间", "Time"),
    "mid": ("商户号", "Merchant no."),
    "tid": ("终端号", "Terminal no."),
    "qty": ("数量", "Qty"),
    "price": ("单价", "Price"),
    "amount": ("金额", "Amount"),
    "subtotal": ("小计", "Subtotal"),
    "discount": ("优惠", "Discount"),
    "total": ("合计", "Total"),
    "cash": ("现金", "Cash"),
    "card": ("银行卡", "Card"),
    "qr": ("扫码支付", "QR pay"),
    "tendered": ("实收", "Tendered"),
    "change": ("找零", "Change"),
    "card_no": ("卡号", "Card no."),
    "auth_code": ("授权码", "Auth code"),
    "rrn": ("参考号", "Ref. no."),
    "thanks": ("谢谢惠顾", "Thank you"),
    "invoice_qr": ("[QR: 扫码开票]", "[QR: scan for e-fapiao]"),
}


def _check_minor(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative int of fen, got {value!r}")


@dataclass(frozen=True, slots=True)
class SaleLine:
    """One item line: ``total_minor = qty × unit_price_minor − discount_minor``."""

    name: str
    qty: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int

    def __post_init__(self) -> None:
        if not isinstance(self.qty, int) or isinstance(self.qty, bool):
            raise ValueError(f"qty must be an int, got {self.qty!r}")
        if not 1 <= self.qty <= MAX_QTY:
            raise ValueError(f"qty must be 1..{MAX_QTY}, got {self.qty}")
        for name in ("unit_price_minor", "discount_minor", "total_minor"):
            _check_minor(name, getattr(self, name))
        if self.discount_minor > self.gross_minor:
            raise ValueError("a line's discount cannot exceed qty × unit price")
        if self.total_minor != self.gross_minor - self.discount_minor:
            raise ValueError(
                f"line {self.name!r}: total {self.total_minor} != "
                f"{self.qty} × {self.unit_price_minor} − {self.discount_minor}"
            )

    @property
    def gross_minor(self) -> int:
        return self.qty * self.unit_price_minor


@dataclass(frozen=True, slots=True)
class SalePayment:
    """One payment. Cash may carry what was handed over and the change
    (``change = tendered − amount``); a card payment only ever a masked card number."""

    method: PaymentMethod
    amount_minor: int
    tendered_minor: int | None = None
    change_minor: int | None = None
    pan_masked: str = ""
    auth_code: str = ""
    rrn: str = ""

    def __post_init__(self) -> None:
        if self.method not in PAYMENT_METHODS:
            raise ValueError(f"method must be one of {PAYMENT_METHODS}, got {self.method!r}")
        _check_minor("amount_minor", self.amount_minor)
        if self.pan_masked:
            if self.method != "card":
                raise ValueError("only a card payment has a card number")
            check_masked_pan(self.pan_masked)
        if self.method != "cash":
            if self.tendered_minor is not None or self.change_minor is not None:
                raise ValueError("only a cash payment has tendered and change amounts")
            return
        if self.tendered_minor is None:
            if self.change_minor is not None:
                raise ValueError("change without the tendered amount")
            return
        _check_minor("tendered_minor", self.tendered_minor)
        if self.tendered_minor < self.amount_minor:
            raise ValueError("tendered is less than the amount paid")
        change = self.tendered_minor - self.amount_minor
        if self.change_minor is not None and self.change_minor != change:
            raise ValueError(f"change must be tendered − amount = {change}")


@dataclass(frozen=True, slots=True)
class SaleReceipt:
    """Everything printed on a sale (or refund, or void) receipt.

    ``when`` must be timezone-aware and already in the store's zone; it is printed as is.
    The payments must add up to ``total_minor``. ``invoice_qr`` (printable ASCII, a link to
    the e-fapiao page) prints as a QR code under the receipt.
    """

    store_name: str
    tid: str
    mid: str
    receipt_no: str
    cashier: str
    when: datetime
    lang: Lang
    lines: tuple[SaleLine, ...]
    subtotal_minor: int
    discount_minor: int
    total_minor: int
    payments: tuple[SalePayment, ...]
    kind: SaleKind = "sale"
    store_address: str = ""
    reprint: bool = False
    footer: str = ""
    invoice_qr: str | None = None

    def __post_init__(self) -> None:
        if self.lang not in LANGS:
            raise ValueError(f"lang must be one of {LANGS}, got {self.lang!r}")
        if self.kind not in SALE_KINDS:
            raise ValueError(f"kind must be one of {SALE_KINDS}, got {self.kind!r}")
        if self.when.tzinfo is None or self.when.utcoffset() is None:
            raise ValueError("when must be timezone-aware (in the store's zone)")
        if not 1 <= len(self.lines) <= MAX_LINES:
            raise ValueError(f"a receipt has 1..{MAX_LINES} lines, got {len(self.lines)}")
        if len(self.payments) > MAX_PAYMENTS:
            raise ValueError(f"at most {MAX_PAYMENTS} payments, got {len(self.payments)}")
        for name in ("subtotal_minor", "discount_minor", "total_minor"):
            _check_minor(name, getattr(self, name))
        gross = sum(line.gross_minor for line in self.lines)
        if self.subtotal_minor != gross:
            raise ValueError(f"subtotal {self.subtotal_minor} != Σ qty × unit price = {gross}")
        if self.discount_minor < sum(line.discount_minor for line in self.lines):
            raise ValueError("the discount is less than the lines' discounts together")
        if self.total_minor != self.subtotal_minor - self.discount_minor:
            raise ValueError("total must be subtotal − discount")
        if self.sign < 0 and any(p.tendered_minor is not None for p in self.payments):
            raise ValueError("money paid back has no tendered amount or change")
        paid = sum(p.amount_minor for p in self.payments)
        if paid != self.total_minor:
            raise ValueError(f"payments add up to {paid}, not the total {self.total_minor}")
        if len(self.footer) > MAX_FOOTER_CHARS:
            raise ValueError(f"footer is longer than {MAX_FOOTER_CHARS} characters")
        if self.invoice_qr is not None:
            qr = self.invoice_qr
            if not (0 < len(qr) <= MAX_QR_PAYLOAD_CHARS and qr.isascii() and qr.isprintable()):
                # ASCII because python-escpos sends QR data as UTF-8 whatever the code page,
                # and an ASCII-only printer must never get a byte >= 0x80.
                raise ValueError(
                    f"invoice_qr must be 1..{MAX_QR_PAYLOAD_CHARS} printable ASCII characters"
                )

    @property
    def sign(self) -> int:
        """-1 for a refund or a void (money goes back to the customer), else 1."""
        return -1 if self.kind in ("refund", "void") else 1


class _SaleLayout(_Layout):
    """The card slip's layout, in one language, with amounts right-aligned."""

    def __init__(self, width: int, ascii_only: bool, lang: Lang, sign: int) -> None:
        super().__init__(width, ascii_only)
        # A printer without a Chinese font gets English labels whatever the cashier's language.
        self.english = ascii_only or lang == "en"
        self.sign = sign

    def label(self, key: str) -> str:
        zh, en = _LABELS[key]
        return en if self.english else zh

    def money(self, minor: int, signed: bool = True) -> str:
        """``minor`` fen, with the receipt's sign unless not ``signed`` (a unit price):
        ``￥1,234.50``, ``-￥12.00``."""
        value = (self.sign if signed else 1) * minor
        symbol = "" if self.ascii_only else CURRENCY_SYMBOL
        magnitude = Money.of(abs(value), "CNY").format()
        return f"{'-' if value < 0 else ''}{symbol}{magnitude}"

    def pair(self, left: str, right: str, style: Style = Style.NORMAL) -> None:
        """``left`` and ``right`` (right-aligned) on one line if they fit, else ``left``'s
        lines first and ``right`` right-aligned under them."""
        gap = self.width - display_width(left) - display_width(right)
        if left and gap >= 1:
            self.lines.append(Line(left + " " * gap + right, style))
            return
        if left:
            self.add(left, style)
        for part in wrap(right, self.width):
            self.lines.append(Line(" " * (self.width - display_width(part)) + part, style))

    def info(self, key: str, raw_value: str, indent: str = "") -> None:
        """A labelled value, left out when there is nothing to print."""
        value = self.value(raw_value)
        if value:
            self.pair(indent + self.label(key), value)

    def centred(self, raw_text: str, style: Style = Style.CENTER) -> None:
        text = self.value(raw_text)
        # What ascii_only leaves of a Chinese sentence may be bare punctuation: not worth paper.
        if any(c.isalnum() for c in text):
            self.add(text, style)


def _item(out: _SaleLayout, number: int, line: SaleLine) -> None:
    # A name lost to ascii_only (all Chinese) is still told apart by its position.
    name = out.value(line.name) or f"#{number}"
    amount = out.money(line.gross_minor)
    if (
        line.qty == 1
        and not line.discount_minor
        and display_width(name + "  " + amount) <= out.width
    ):
        out.pair(name, amount)  # "1 x price" would only repeat the amount
    else:
        out.add(name)
        out.pair(f"  {line.qty} x {out.money(line.unit_price_minor, signed=False)}", amount)
    if line.discount_minor:
        out.pair(f"  {out.label('discount')}", out.money(-line.discount_minor))


def _payment(out: _SaleLayout, payment: SalePayment) -> None:
    out.pair(out.label(payment.method), out.money(payment.amount_minor))
    if payment.tendered_minor is not None:
        out.pair(f"  {out.label('tendered')}", out.money(payment.tendered_minor))
        change = payment.tendered_minor - payment.amount_minor
        out.pair(f"  {out.label('change')}", out.money(change))
    out.info("card_no", payment.pan_masked, indent="  ")
    out.info("auth_code", payment.auth_code, indent="  ")
    out.info("rrn", payment.rrn, indent="  ")


def sale_receipt_lines(
    receipt: SaleReceipt, width: int = 32, ascii_only: bool = False
) -> list[Line]:
    """The receipt as styled lines in its language, each at most ``width`` display columns.

    With ``ascii_only`` (a printer without a Chinese font) every label is English, values lose
    their non-ASCII characters and amounts their currency symbol. With an ``invoice_qr`` the
    last line is the QR code's placeholder; on paper the code itself stands there.
    """
    if width < MIN_WIDTH:
        raise ValueError(f"receipt width {width} is too narrow ({MIN_WIDTH} columns at least)")
    out = _SaleLayout(width, ascii_only, receipt.lang, receipt.sign)
    out.add(out.label(receipt.kind), Style.TITLE)
    out.centred(receipt.store_name)
    out.centred(receipt.store_address)
    if receipt.reprint:
        out.add(out.label("reprint"), Style.CENTER)
    out.rule()
    out.info("receipt_no", receipt.receipt_no)
    out.info("cashier", receipt.cashier)
    out.info("time", receipt.when.strftime("%Y-%m-%d %H:%M:%S"))
    out.info("mid", receipt.mid)
    out.info("tid", receipt.tid)
    out.rule()
    out.pair(f"{out.label('qty')} x {out.label('price')}", out.label("amount"))
    for number, line in enumerate(receipt.lines, start=1):
        _item(out, number, line)
    out.rule()
    out.pair(out.label("subtotal"), out.money(receipt.subtotal_minor))
    if receipt.discount_minor:
        out.pair(out.label("discount"), out.money(-receipt.discount_minor))
    out.pair(out.label("total"), out.money(receipt.total_minor), Style.STRONG)
    if receipt.payments:
        out.rule()
    for payment in receipt.payments:
        _payment(out, payment)
    out.rule()
    out.centred(receipt.footer)
    out.add(out.label("thanks"), Style.CENTER)
    if receipt.invoice_qr is not None:
        out.add(out.label("invoice_qr"), Style.CENTER)
    return out.lines


def render_sale_text(receipt: SaleReceipt, width: int = 32) -> str:
    """The on-screen preview: the lines the printer gets, centred ones centred,
    ``\\n``-terminated, the QR code as its placeholder line."""
    return lines_text(sale_receipt_lines(receipt, width), width)


# Dots per QR module: a short link (version 3-4) comes out about 20 mm wide, easy to scan.
QR_SIZE = 5


def render_sale_escpos(
    receipt: SaleReceipt, printer: Escpos, width: int = 32, codepage: str = "gb18030"
) -> None:
    """Print ``receipt`` on ``printer``: initialise, styled lines, the invoicing QR code
    (printed by the printer itself, GS ( k) if any, feed and cut. ``codepage`` as for the
    card slip: ``"gb18030"`` or ``"ascii"`` (never a byte >= 0x80)."""
    # Imported here: python-escpos is slow to import and the text preview does not need it.
    from smartpos.receipts.escpos import check_codepage, print_lines

    check_codepage(codepage)
    lines = sale_receipt_lines(receipt, width, ascii_only=codepage == "ascii")
    printer.hw("INIT")
    if receipt.invoice_qr is None:
        print_lines(printer, lines)
    else:
        *text, placeholder = lines
        print_lines(printer, text)
        # The caption without its brackets, then the code centred (ESC a 1 also centres GS ( k).
        caption = placeholder.text.removeprefix("[QR: ").removesuffix("]")
        print_lines(printer, [Line(caption, Style.CENTER)])
        printer.set(align="center")
        printer.qr(receipt.invoice_qr, size=QR_SIZE, native=True)
        printer.set(align="left")
        printer.text("\n")
    printer.cut()


def sale_receipt_bytes(receipt: SaleReceipt, width: int = 32, codepage: str = "gb18030") -> bytes:
    """The exact bytes ``render_sale_escpos`` sends (for printing, golden tests and logs)."""
    from escpos.printer import Dummy

    dummy = Dummy()
    render_sale_escpos(receipt, dummy, width=width, codepage=codepage)
    data: bytes = dummy.output
    return data
