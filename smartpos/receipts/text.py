"""Lay a receipt out in fixed-width lines, bilingual CUP style, and render it as plain text.

The layout (``receipt_lines``) is shared by the text and the ESC/POS renderers so the paper
and the on-screen preview never disagree. Widths are counted in display columns: a CJK
character takes two columns on screen and on a thermal printer's GB18030 font alike.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from smartpos.receipts.model import Copy, Receipt, TxnKind


class Style(StrEnum):
    """How a line is printed; plain text ignores all but centering."""

    NORMAL = "normal"
    CENTER = "center"
    TITLE = "title"  # bold, double height, centered
    STRONG = "strong"  # bold, double height, left (the amount)


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    style: Style = Style.NORMAL


@dataclass(frozen=True, slots=True)
class _Label:
    zh: str
    en: str

    def render(self, ascii_only: bool) -> str:
        return f"{self.en}:" if ascii_only else f"{self.zh}({self.en}):"


_MERCHANT_NAME = _Label("商户名称", "MERCHANT NAME")
_MERCHANT_NO = _Label("商户编号", "MERCHANT NO.")
_TERMINAL_NO = _Label("终端编号", "TERMINAL NO.")
_OPERATOR_NO = _Label("操作员号", "OPERATOR NO.")
_ISSUER = _Label("发卡行/卡组织", "ISSUER")
_ACQUIRER = _Label("收单行", "ACQUIRER")
_CARD_NO = _Label("卡号", "CARD NO.")
_TRANS_TYPE = _Label("交易类型", "TRANS TYPE")
_BATCH_NO = _Label("批次号", "BATCH NO.")
_VOUCHER_NO = _Label("凭证号", "VOUCHER NO.")
_AUTH_NO = _Label("授权码", "AUTH NO.")
_REFER_NO = _Label("参考号", "REFER NO.")
_DATE_TIME = _Label("日期/时间", "DATE/TIME")
_AMOUNT = _Label("金额", "AMOUNT")
_BALANCE = _Label("余额", "BALANCE")
_REFERENCE = _Label("备注", "REFERENCE")
_SIGNATURE = _Label("持卡人签名", "CARDHOLDER SIGNATURE")
# Chip data printed on an IC-card slip (what the card and terminal used for the ARQC).
ICC_LABELS = {
    "AID": _Label("应用标识", "AID"),
    "ARQC": _Label("应用密文", "ARQC"),
    "ATC": _Label("应用交易计数器", "ATC"),
    "TVR": _Label("终端验证结果", "TVR"),
    "TC": _Label("交易证书", "TC"),
}

_TITLE = ("POS签购单", "POS SALES SLIP")
_REPRINT = ("重打印", "REPRINT")
_PIN_VERIFIED = ("密码验证 免签名", "PIN VERIFIED - NO SIGNATURE REQUIRED")
_APP_LABEL = _Label("应用标签", "APP LABEL")
_NO_CVM = ("小额免密免签", "NO PIN, NO SIGNATURE REQUIRED")
_ACKNOWLEDGE = (
    "本人确认以上交易,同意将其记入本卡账户",
    "I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS/SERVICES",
)

# Chinese slips say RMB, not the ISO code CNY.
_CURRENCY_ON_PAPER = {"CNY": "RMB"}


def display_width(text: str) -> int:
    """Columns ``text`` takes on a fixed-width receipt: wide/fullwidth characters count 2."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def ascii_part(text: str) -> str:
    """``text`` without its non-ASCII characters, spaces collapsed (for printers without CJK)."""
    return " ".join("".join(c for c in text if c.isascii()).split())


def _tokens(text: str) -> list[str]:
    # Break opportunities: after a space, around every wide character, before "(".
    tokens: list[str] = []
    current = ""
    for char in text:
        wide = display_width(char) == 2
        if wide or char == "(":
            if current:
                tokens.append(current)
            current = char
            if wide:
                tokens.append(current)
                current = ""
            continue
        if current.endswith(" ") and char != " ":
            tokens.append(current)
            current = ""
        current += char
    if current:
        tokens.append(current)
    return tokens


def _hard_split(token: str, width: int) -> list[str]:
    pieces: list[str] = []
    piece = ""
    for char in token:
        if display_width(piece + char) > width:
            pieces.append(piece)
            piece = ""
        piece += char
    return [*pieces, piece] if piece else pieces


def wrap(text: str, width: int) -> list[str]:
    """Break ``text`` into lines of at most ``width`` display columns (words kept when possible)."""
    lines: list[str] = []
    line = ""
    for token in _tokens(text):
        if display_width((line + token).rstrip()) <= width:
            line += token
            continue
        if line.strip():
            lines.append(line.rstrip())
        token = token.lstrip()
        if display_width(token.rstrip()) > width:
            *full, token = _hard_split(token.rstrip(), width)
            lines.extend(full)
        line = token
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


class _Layout:
    """Collects the lines of one receipt at one width, in one script."""

    def __init__(self, width: int, ascii_only: bool) -> None:
        self.width = width
        self.ascii_only = ascii_only
        self.lines: list[Line] = []

    def value(self, text: str) -> str:
        return ascii_part(text) if self.ascii_only else text.strip()

    def add(self, text: str, style: Style = Style.NORMAL) -> None:
        for part in wrap(text, self.width):
            self.lines.append(Line(part, style))

    def bilingual(self, zh: str, en: str, style: Style = Style.NORMAL, sep: str = " ") -> None:
        """Both halves on one line if they fit, else Chinese then English on their own lines."""
        if self.ascii_only:
            self.add(en, style)
        elif display_width(zh + sep + en) <= self.width:
            self.add(zh + sep + en, style)
        else:
            self.add(zh, style)
            self.add(en, style)

    def rule(self) -> None:
        self.lines.append(Line("-" * self.width))

    def blank(self) -> None:
        self.lines.append(Line(""))

    def field(self, label: _Label, raw_value: str, style: Style = Style.NORMAL) -> None:
        """Label and value on one line (value right-aligned) if they fit, else on two."""
        head = label.render(self.ascii_only)
        value = self.value(raw_value)
        gap = self.width - display_width(head) - display_width(value)
        if value and gap >= 1 and style is Style.NORMAL:
            self.lines.append(Line(head + " " * gap + value))
            return
        self.add(head)
        if value:
            self.add(value, style)


def receipt_lines(receipt: Receipt, width: int = 32, ascii_only: bool = False) -> list[Line]:
    """The receipt as styled lines, each at most ``width`` display columns.

    With ``ascii_only`` every label is its English half and values lose their non-ASCII
    characters, for printers without a Chinese font.
    """
    if width < 16:
        raise ValueError(f"receipt width {width} is too narrow (16 columns at least)")
    out = _Layout(width, ascii_only)
    out.bilingual(*_TITLE, Style.TITLE, sep=" / ")
    out.bilingual(receipt.copy.label_zh, receipt.copy.label_en, Style.CENTER)
    if receipt.reprint:
        out.bilingual(*_REPRINT, Style.CENTER)
    out.rule()
    out.field(_MERCHANT_NAME, receipt.merchant_name)
    out.field(_MERCHANT_NO, receipt.mid)
    out.field(_TERMINAL_NO, receipt.tid)
    out.field(_OPERATOR_NO, receipt.operator)
    out.rule()
    out.field(_ISSUER, receipt.brand_label)
    out.field(_ACQUIRER, receipt.acquirer)
    out.field(_CARD_NO, f"{receipt.pan_masked} /{receipt.entry_marker}")
    kind = receipt.kind
    out.field(_TRANS_TYPE, kind.label_en if ascii_only else f"{kind.label_zh} {kind.label_en}")
    out.field(_BATCH_NO, receipt.batch_no)
    out.field(_VOUCHER_NO, receipt.invoice_no)
    out.field(_AUTH_NO, receipt.auth_code)
    out.field(_REFER_NO, receipt.rrn)
    out.field(_DATE_TIME, receipt.when.strftime("%Y/%m/%d %H:%M:%S"))
    amount = receipt.signed_amount
    code = _CURRENCY_ON_PAPER.get(amount.currency.alpha, amount.currency.alpha)
    out.field(
        _BALANCE if kind is TxnKind.BALANCE else _AMOUNT, f"{code} {amount.format()}", Style.STRONG
    )
    if receipt.reference.strip():
        out.field(_REFERENCE, receipt.reference)
    if receipt.app_label:
        out.field(_APP_LABEL, receipt.app_label)
    for name, value in receipt.icc:
        out.field(ICC_LABELS[name], value)
    out.rule()
    if receipt.copy is Copy.MERCHANT and kind is not TxnKind.BALANCE:
        if receipt.needs_signature:
            out.add(_SIGNATURE.render(ascii_only))
            out.blank()
            out.blank()
            out.rule()
        elif receipt.no_cvm:
            out.bilingual(*_NO_CVM)
        else:
            out.bilingual(*_PIN_VERIFIED)
        out.bilingual(*_ACKNOWLEDGE)
    return out.lines


def _center(text: str, width: int) -> str:
    return " " * max(0, (width - display_width(text)) // 2) + text


def render_text(receipt: Receipt, width: int = 32) -> str:
    """The receipt as the customer reads it: bilingual, one field per line, ``\\n``-terminated.

    Every line fits in ``width`` display columns (CJK characters count two); no line has
    trailing spaces.
    """
    return lines_text(receipt_lines(receipt, width), width)


def lines_text(lines: Iterable[Line], width: int) -> str:
    """Laid-out ``lines`` as plain text, centred ones centred in ``width``, ``\\n``-terminated."""
    rendered = [
        _center(line.text, width) if line.style in (Style.CENTER, Style.TITLE) else line.text
        for line in lines
    ]
    return "".join(f"{text}\n" for text in rendered)
