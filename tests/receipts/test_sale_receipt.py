"""The sale receipt (收银小票): golden bytes, widths, signs, the ASCII code page, PAN, QR."""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from smartpos.config import Settings
from smartpos.devices.printer import SimulatedPrinter, print_jobs
from smartpos.receipts.escpos import FS_CHINESE_OFF, FS_CHINESE_ON
from smartpos.receipts.sale import (
    SaleLine,
    SalePayment,
    SaleReceipt,
    render_sale_text,
    sale_receipt_bytes,
    sale_receipt_lines,
)
from smartpos.receipts.text import display_width
from tests.receipts.test_model import FULL_PAN, MASKED_PAN, PAN_MIDDLE, SHANGHAI

GOLDEN = Path(__file__).parent / "golden"
CHINESE_SEGMENT = re.compile(re.escape(FS_CHINESE_ON) + b"(.*?)" + re.escape(FS_CHINESE_OFF), re.S)
GS_K = b"\x1d(k"  # GS ( k: the printer's own 2D-code commands
LONG_NAME = "康师傅红烧牛肉面超级加量装特别版大桶珍品系列礼盒装"
CARD = SalePayment("card", 2150, pan_masked=MASKED_PAN, auth_code="A1B2C3", rrn="240501000012")


def make_sale(**changes: Any) -> SaleReceipt:
    """¥21.50 at 示例便利店: water ×2, a cola, three noodles with ¥1.50 off, ¥1.00 more off
    the order, paid by card; override any field."""
    base = SaleReceipt(
        store_name="示例便利店",
        store_address="上海市浦东新区世纪大道100号",
        tid="10000001",
        mid="898310048161001",
        receipt_no="20240501-0007",
        cashier="01",
        when=datetime(2024, 5, 1, 12, 34, 56, tzinfo=SHANGHAI),
        lang="zh_CN",
        lines=(
            SaleLine("农夫山泉 550ml", 2, 200, 0, 400),
            SaleLine("可口可乐", 1, 350, 0, 350),
            SaleLine("康师傅红烧牛肉面", 3, 550, 150, 1500),
        ),
        subtotal_minor=2400,
        discount_minor=250,
        total_minor=2150,
        payments=(CARD,),
    )
    return dataclasses.replace(base, **changes)


CASH = SalePayment("cash", 2150, tendered_minor=5000, change_minor=2850)
EN_LINES = (
    SaleLine("Mineral water 550ml", 2, 200, 0, 400),
    SaleLine("Cola", 1, 350, 0, 350),
    SaleLine("Instant noodles, beef", 3, 550, 150, 1500),
)

GOLDEN_CASES: dict[str, tuple[SaleReceipt, int, str]] = {
    "sale_zh_cash_gb18030.bin": (make_sale(payments=(CASH,)), 32, "gb18030"),
    "sale_en_card_qr_80mm.bin": (
        make_sale(
            lang="en",
            store_name="Demo Mart",
            store_address="100 Century Ave, Shanghai",
            lines=EN_LINES,
            invoice_qr="https://fapiao.example.cn/i?r=20240501-0007",
            footer="Returns within 7 days with this receipt",
        ),
        48,
        "gb18030",
    ),
}


def regenerate_golden() -> None:
    """Rewrite every golden file from the current renderer (review the diff before committing)."""
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, (receipt, width, codepage) in GOLDEN_CASES.items():
        (GOLDEN / name).write_bytes(sale_receipt_bytes(receipt, width=width, codepage=codepage))


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_bytes(name: str) -> None:
    if os.environ.get("SMARTPOS_REGEN_GOLDEN") == "1":
        regenerate_golden()
    receipt, width, codepage = GOLDEN_CASES[name]
    assert (
        sale_receipt_bytes(receipt, width=width, codepage=codepage) == (GOLDEN / name).read_bytes()
    )


def test_chinese_labels_are_gb18030_in_chinese_mode() -> None:
    data = sale_receipt_bytes(make_sale(payments=(CASH,)))
    # Hand-checked against the GB2312 table: 合 BACF 计 BCC6, 现 CFD6 金 BDF0, ￥ A3A4.
    assert "合计".encode("gb18030") == b"\xba\xcf\xbc\xc6"
    assert "现金".encode("gb18030") == b"\xcf\xd6\xbd\xf0"
    segments = CHINESE_SEGMENT.findall(data)
    assert any(
        s.startswith(b"\xba\xcf\xbc\xc6 ") and s.endswith(b"\xa3\xa421.50\n") for s in segments
    )
    assert any(s.startswith(b"\xcf\xd6\xbd\xf0 ") for s in segments)
    for label in ("收银小票", "单号", "收银员", "时间", "数量", "单价", "小计", "优惠", "实收"):
        assert any(label.encode("gb18030") in s for s in segments), label
    assert "谢谢惠顾".encode("gb18030") in data
    outside = CHINESE_SEGMENT.sub(b"", data)
    assert max(outside) < 0x80
    assert "合计".encode() not in data  # never UTF-8
    assert data.startswith(b"\x1b@") and data.endswith(b"\x1bd\x06\x1dV\x00")  # feed, cut


def test_one_language_only() -> None:
    zh = render_sale_text(make_sale())
    en = render_sale_text(make_sale(lang="en"))
    assert "Total" not in zh and "合计" in zh
    assert "合计" not in en
    for label in ("Sales receipt", "Receipt no.", "Cashier", "Time", "Qty x Price", "Subtotal"):
        assert label in en
    assert "Discount" in en and "Card" in en and "Thank you" in en


def test_total_is_strong_and_title_centred() -> None:
    lines = sale_receipt_lines(make_sale())
    assert lines[0].text == "收银小票" and lines[0].style == "title"
    (total,) = [line for line in lines if line.text.startswith("合计")]
    assert total.style == "strong" and total.text.endswith("￥21.50")


@pytest.mark.parametrize("width", [32, 48])
@pytest.mark.parametrize("ascii_only", [False, True])
def test_no_line_wider_than_the_paper(width: int, ascii_only: bool) -> None:
    full_width = "可乐" * (width // 4)
    receipt = make_sale(
        store_name=LONG_NAME,
        store_address=LONG_NAME * 2,
        lines=(
            SaleLine(LONG_NAME, 9999, 99_999, 0, 999_890_001),
            SaleLine(LONG_NAME + " 550ml×24", 1, 100, 50, 50),
            SaleLine(full_width, 1, 300, 0, 300),  # no room left for the amount
        ),
        subtotal_minor=999_890_401,
        discount_minor=50,
        total_minor=999_890_351,
        payments=(dataclasses.replace(CARD, amount_minor=999_890_351),),
        footer="感谢您的光临,本店支持七天无理由退货,请保留好小票" * 2,
        invoice_qr="https://fapiao.example.cn/i",
        kind="refund",
    )
    lines = sale_receipt_lines(receipt, width, ascii_only=ascii_only)
    for line in lines:
        assert display_width(line.text) <= width, line
    texts = [line.text for line in lines]
    if not ascii_only:
        assert LONG_NAME[: width // 2] in texts  # the long name on a line of its own
        assert full_width in texts  # name alone, amount on the next line
        assert texts[texts.index(full_width) + 1].endswith("-￥3.00")
        assert any(t.endswith("-￥9,998,900.01") for t in texts)
        assert any("9999 x ￥999.99" in t for t in texts)


@pytest.mark.parametrize("kind", ["refund", "void"])
def test_refund_and_void_print_negative_totals(kind: str) -> None:
    text = render_sale_text(make_sale(kind=kind))
    rows = text.splitlines()
    title = {"refund": "退货/退款", "void": "撤销"}[kind]
    assert rows[0].strip() == title
    total = next(r for r in rows if r.startswith("合计"))
    assert total.endswith("-￥21.50")
    assert next(r for r in rows if r.startswith("小计")).endswith("-￥24.00")
    assert next(r for r in rows if r.startswith("银行卡")).endswith("-￥21.50")
    assert "  3 x ￥5.50" in text  # the unit price keeps its sign
    en = render_sale_text(make_sale(kind=kind, lang="en"))
    assert en.splitlines()[0].strip() == kind.capitalize()
    assert "-21.50" in sale_receipt_bytes(make_sale(kind=kind), codepage="ascii").decode()


def test_ascii_codepage_never_sends_a_high_byte() -> None:
    receipt = make_sale(
        payments=(CASH,),
        footer="欢迎再次光临!",
        invoice_qr="https://fapiao.example.cn/i?r=1",
        reprint=True,
    )
    for width in (32, 48):
        data = sale_receipt_bytes(receipt, width=width, codepage="ascii")
        assert max(data) < 0x80
        assert FS_CHINESE_ON not in data
        for english in (b"Sales receipt", b"Total", b"21.50", b"Change", b"28.50", b"REPRINT"):
            assert english in data, english
        assert b"550ml" in data and b"#2" in data  # names lost to ASCII still numbered
        assert b"?" not in data.replace(b"/i?r=1", b"")  # stripped, not replaced
        assert b"\n!\n" not in data  # a footer of bare punctuation is left out


def test_full_pan_refused_and_never_printed() -> None:
    with pytest.raises(ValueError, match="first 6 and last 4") as refused:
        SalePayment("card", 2150, pan_masked=FULL_PAN)
    assert FULL_PAN not in str(refused.value)
    with pytest.raises(ValueError, match="card number"):
        SalePayment("cash", 2150, pan_masked=MASKED_PAN)
    data = sale_receipt_bytes(make_sale())
    assert MASKED_PAN.encode() in data
    assert PAN_MIDDLE.encode() not in data


def test_cash_tendered_and_change_shown() -> None:
    text = render_sale_text(make_sale(payments=(CASH,)))
    rows = text.splitlines()
    assert next(r for r in rows if r.startswith("现金")).endswith("￥21.50")
    assert next(r for r in rows if r.startswith("  实收")).endswith("￥50.00")
    assert next(r for r in rows if r.startswith("  找零")).endswith("￥28.50")
    en = render_sale_text(make_sale(payments=(CASH,), lang="en"))
    assert "  Tendered" in en and "  Change" in en
    with pytest.raises(ValueError, match="change"):
        SalePayment("cash", 2150, tendered_minor=5000, change_minor=2800)
    with pytest.raises(ValueError, match="less than"):
        SalePayment("cash", 2150, tendered_minor=2000)
    with pytest.raises(ValueError, match="tendered"):
        make_sale(kind="refund", payments=(CASH,))


def test_reprint_marker() -> None:
    assert "重打印" not in render_sale_text(make_sale())
    lines = sale_receipt_lines(make_sale(reprint=True))
    assert any(line.text == "重打印" and line.style == "center" for line in lines)
    assert "REPRINT" in render_sale_text(make_sale(reprint=True, lang="en"))


def test_invoice_qr_is_printed_natively_with_a_caption() -> None:
    payload = "https://fapiao.example.cn/i?r=20240501-0007"
    assert GS_K not in sale_receipt_bytes(make_sale())
    for codepage in ("gb18030", "ascii"):
        data = sale_receipt_bytes(make_sale(invoice_qr=payload), codepage=codepage)
        store = GS_K + bytes([len(payload) + 3, 0]) + b"1P0" + payload.encode()
        assert store in data  # GS ( k fn 80: store the data
        assert GS_K + b"\x03\x001Q0" in data  # GS ( k fn 81: print it
        assert data.index(store) < data.index(b"\x1dV")  # before the cut
    zh = sale_receipt_bytes(make_sale(invoice_qr=payload))
    assert FS_CHINESE_ON + "扫码开票".encode("gb18030") in zh
    assert b"[QR:" not in zh  # the placeholder is for the screen only
    assert render_sale_text(make_sale(invoice_qr=payload)).splitlines()[-1].strip() == (
        "[QR: 扫码开票]"
    )
    assert render_sale_text(make_sale(invoice_qr=payload, lang="en")).endswith(
        "[QR: scan for e-fapiao]\n"
    )
    with pytest.raises(ValueError, match="ASCII"):
        make_sale(invoice_qr="https://发票.example.cn/")
    with pytest.raises(ValueError, match="ASCII"):
        make_sale(invoice_qr="x" * 501)


@pytest.mark.parametrize("width", [32, 48])
def test_text_preview_equals_the_lines(width: int) -> None:
    receipt = make_sale(invoice_qr="https://fapiao.example.cn/i", reprint=True)
    lines = sale_receipt_lines(receipt, width)
    rows = render_sale_text(receipt, width).splitlines()
    assert [row.strip() for row in rows] == [line.text.strip() for line in lines]
    for row, line in zip(rows, lines, strict=True):
        if line.style in ("center", "title"):
            assert row.endswith(line.text) and row == row.rstrip()
        else:
            assert row == line.text


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"subtotal_minor": 2300, "total_minor": 2050}, "subtotal"),
        ({"total_minor": 2100}, "total"),
        ({"discount_minor": 100, "total_minor": 2300}, "discount"),
        ({"payments": (dataclasses.replace(CARD, amount_minor=2000),)}, "payments"),
        ({"when": datetime(2024, 5, 1, 12, 34, 56)}, "timezone"),
        ({"lang": "fr"}, "lang"),
        ({"kind": "exchange"}, "kind"),
        ({"lines": ()}, "lines"),
    ],
)
def test_receipts_that_do_not_add_up_are_refused(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        make_sale(**changes)


def test_line_arithmetic_is_checked() -> None:
    with pytest.raises(ValueError, match="total"):
        SaleLine("可乐", 2, 350, 0, 650)
    with pytest.raises(ValueError, match="exceed"):
        SaleLine("可乐", 1, 350, 400, 0)
    with pytest.raises(ValueError, match="qty"):
        SaleLine("可乐", 0, 350, 0, 0)


def test_narrow_paper_and_unknown_codepage_refused() -> None:
    with pytest.raises(ValueError, match="narrow"):
        sale_receipt_lines(make_sale(), width=20)
    with pytest.raises(ValueError, match="codepage"):
        sale_receipt_bytes(make_sale(), codepage="utf-8")


def test_print_jobs_sends_sale_receipts(tmp_path: Path) -> None:
    out = tmp_path / "printer.out"
    settings = Settings(home=tmp_path / "home", printer="file", printer_path=out)
    job = sale_receipt_bytes(make_sale(), width=settings.printer_width_chars)
    print_jobs(settings, [job, job])
    assert out.read_bytes() == job + job
    print_jobs(settings, [])
    assert out.read_bytes() == job + job
    simulated = SimulatedPrinter()
    simulated.print_jobs([job])
    assert simulated.output == job and simulated.printed == []
