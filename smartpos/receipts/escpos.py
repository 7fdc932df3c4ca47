"""Render a receipt as ESC/POS commands through a python-escpos printer object.

Why not just ``printer.text()`` for everything: python-escpos encodes text through its
"magic" code-page switcher, which knows single-byte code pages only, so Chinese comes out as
garbage or ``?`` on most Chinese printers (python-escpos issues #269, #491). Those printers
instead have a Chinese character mode (FS &) in which double-byte GB18030/GBK codes print from
their built-in font. So lines with Chinese are sent raw, GB18030-encoded, inside FS & … FS .;
ASCII-only lines go through ``printer.text()`` as usual.
"""

from __future__ import annotations

from collections.abc import Iterable

from escpos.escpos import Escpos
from escpos.printer import Dummy

from smartpos.receipts.model import Receipt
from smartpos.receipts.text import Line, Style, receipt_lines

FS_CHINESE_ON = b"\x1c\x26"  # FS &: select Kanji/Chinese character mode
FS_CHINESE_OFF = b"\x1c\x2e"  # FS .: cancel it, back to single-byte (ANK) characters

CODEPAGES = ("gb18030", "ascii")


def _start_style(printer: Escpos, style: Style) -> None:
    # GS ! (custom_size) rather than ESC ! (double_height): GS ! scales Chinese characters too.
    if style is Style.TITLE:
        printer.set(align="center", bold=True, custom_size=True, width=1, height=2)
    elif style is Style.STRONG:
        printer.set(bold=True, custom_size=True, width=1, height=2)
    elif style is Style.CENTER:
        printer.set(align="center")


def _end_style(printer: Escpos, style: Style) -> None:
    if style in (Style.TITLE, Style.STRONG):
        printer.set(align="left", bold=False, custom_size=True, width=1, height=1)
    elif style is Style.CENTER:
        printer.set(align="left")


def _print_line(printer: Escpos, line: Line) -> None:
    if line.text.isascii():
        printer.text(line.text + "\n")
        return
    # errors="replace": GB18030 covers all of Unicode but lone surrogates; never raise mid-slip.
    encoded = line.text.encode("gb18030", errors="replace")
    printer._raw(FS_CHINESE_ON + encoded + b"\n" + FS_CHINESE_OFF)


def print_lines(printer: Escpos, lines: Iterable[Line]) -> None:
    """Print laid-out ``lines`` with their styles; Chinese through the Chinese character mode.

    Shared by every receipt (card slip, sale receipt) so they print text the same way.
    """
    for line in lines:
        _start_style(printer, line.style)
        _print_line(printer, line)
        _end_style(printer, line.style)


def check_codepage(codepage: str) -> None:
    """Raise ``ValueError`` unless ``codepage`` is one of :data:`CODEPAGES`."""
    if codepage not in CODEPAGES:
        raise ValueError(f"codepage must be one of {CODEPAGES}, got {codepage!r}")


def render_escpos(
    receipt: Receipt, printer: Escpos, width: int = 32, codepage: str = "gb18030"
) -> None:
    """Print ``receipt`` on ``printer``: initialise, styled lines, feed and cut.

    ``codepage="gb18030"`` prints Chinese through the printer's Chinese character mode;
    ``codepage="ascii"`` is for printers without a Chinese font: only the English half of each
    label is printed and no byte >= 0x80 is ever sent. ``width`` is the paper width in
    characters (32 for 58 mm paper, 48 for 80 mm).
    """
    check_codepage(codepage)
    printer.hw("INIT")
    print_lines(printer, receipt_lines(receipt, width, ascii_only=codepage == "ascii"))
    printer.cut()


def receipt_bytes(receipt: Receipt, width: int = 32, codepage: str = "gb18030") -> bytes:
    """The exact bytes ``render_escpos`` sends for ``receipt`` (for golden tests and previews)."""
    dummy = Dummy()
    render_escpos(receipt, dummy, width=width, codepage=codepage)
    data: bytes = dummy.output
    return data
