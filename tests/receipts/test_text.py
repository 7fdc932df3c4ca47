"""Plain-text rendering: what a cashier or customer reads, at the widths printers have."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smartpos.money import Money
from smartpos.receipts.model import Copy, TxnKind
from smartpos.receipts.text import display_width, render_text, wrap
from tests.receipts.test_model import FULL_PAN, PAN_MIDDLE, make_receipt

GOLDEN = Path(__file__).parent / "golden"
SIGNATURE = "持卡人签名(CARDHOLDER"
PIN_NOTICE = "PIN VERIFIED - NO SIGNATURE REQUIRED"

VARIANTS = {
    "sale": make_receipt(),
    "void-reprint": make_receipt(
        kind=TxnKind.VOID, reference="ORIG TRACE 000012", reprint=True, pin_verified=True
    ),
    "long-names": make_receipt(
        merchant_name="示例便利店上海市黄浦区南京东路第一百二十三号分店（24小时营业）",
        brand_label="银联 UnionPay International Debit Card",
        acquirer="Shanghai Example Acquiring Bank Co., Ltd. sandbox",
        reference="ORIG TRACE 000012 ORIG DATE 2024/04/30 ORIG REFER 240430000099",
        amount=Money.of(123_456_789_012),
    ),
    "customer-usd": make_receipt(copy=Copy.CUSTOMER, amount=Money.of(500, "USD")),
    "chip": make_receipt(
        entry_mode="chip",
        app_label="UnionPay Debit",
        icc=(
            ("AID", "A000000333010101"),
            ("ARQC", "1A2B3C4D5E6F7081"),
            ("ATC", "0007"),
            ("TVR", "0000000000"),
            ("TC", "8877665544332211"),
        ),
    ),
}


@pytest.mark.parametrize("width", [24, 32, 42, 48, 64])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_line_fits_the_paper(name: str, width: int) -> None:
    text = render_text(VARIANTS[name], width)
    assert text.endswith("\n")
    for line in text.splitlines():
        assert display_width(line) <= width, line
        assert line == line.rstrip()


def test_long_values_are_wrapped_not_cut() -> None:
    text = render_text(VARIANTS["long-names"], 24)
    joined = "".join(text.split())
    assert "示例便利店上海市黄浦区南京东路第一百二十三号分店（24小时营业）" in joined
    assert "ORIGREFER240430000099" in joined
    assert "RMB1,234,567,890.12" in joined


def test_display_width_counts_cjk_as_two() -> None:
    assert display_width("示例 AB") == 7
    assert display_width("（）") == 4
    assert wrap("本人确认以上交易", 6) == ["本人确", "认以上", "交易"]
    assert wrap("ABCDEFGHIJ", 4) == ["ABCD", "EFGH", "IJ"]


def test_sale_shows_the_fields_a_cashier_checks() -> None:
    text = render_text(make_receipt(), 32)
    lines = text.splitlines()
    assert lines[0].strip() == "POS签购单 / POS SALES SLIP"
    assert lines[1].strip() == "商户存根 MERCHANT COPY"
    assert "示例便利店" in lines
    assert "622202******4426 /I" in lines
    assert "2024/05/01 12:34:56" in lines
    assert "RMB 12.34" in lines
    assert "-12.34" not in text
    assert "消费 SALE" in text
    assert "REPRINT" not in text
    assert FULL_PAN not in text and PAN_MIDDLE not in text


@pytest.mark.parametrize("kind", [TxnKind.VOID, TxnKind.REFUND])
def test_void_and_refund_amounts_are_negative(kind: TxnKind) -> None:
    text = render_text(make_receipt(kind=kind), 32)
    assert "RMB -12.34" in text.splitlines()
    assert f"{kind.label_zh} {kind.label_en}" in text


@pytest.mark.parametrize(
    ("entry_mode", "marker"),
    [("swipe", "S"), ("contactless", "C"), ("manual", "M"), ("fallback", "F"), ("chip", "I")],
)
def test_entry_mode_marker(entry_mode: str, marker: str) -> None:
    assert f"622202******4426 /{marker}" in render_text(make_receipt(entry_mode=entry_mode))


def test_signature_only_on_unverified_merchant_copy() -> None:
    signed = render_text(make_receipt(pin_verified=False))
    assert SIGNATURE in signed and PIN_NOTICE not in signed
    assert "本人确认以上交易" in signed

    pin = render_text(make_receipt(pin_verified=True))
    assert SIGNATURE not in pin and "SIGNATURE):" not in pin
    assert "密码验证 免签名" in pin
    assert PIN_NOTICE in " ".join(pin.split())  # wrapped at 32 columns

    for pin_verified in (False, True):
        customer = render_text(make_receipt(copy=Copy.CUSTOMER, pin_verified=pin_verified))
        assert "持卡人存根 CARDHOLDER COPY" in customer
        assert "SIGNATURE" not in customer


def test_no_pin_tap_needs_no_signature_but_its_void_does() -> None:
    tap = render_text(make_receipt(entry_mode="contactless", pin_verified=False))
    assert SIGNATURE not in tap and PIN_NOTICE not in tap
    assert "小额免密免签 NO PIN, NO SIGNATURE REQUIRED" in " ".join(tap.split())
    assert "622202******4426 /C" in tap
    with_pin = render_text(make_receipt(entry_mode="contactless", pin_verified=True))
    assert PIN_NOTICE in " ".join(with_pin.split()) and "免密" not in with_pin
    void = render_text(make_receipt(entry_mode="contactless", kind=TxnKind.VOID))
    assert SIGNATURE in void and "免密" not in void


def test_balance_inquiry_prints_balance_without_signature() -> None:
    text = render_text(make_receipt(kind=TxnKind.BALANCE, amount=Money.of(98_765)))
    assert "余额(BALANCE):" in text and "RMB 987.65" in text
    assert "SIGNATURE" not in text


def test_reference_and_reprint() -> None:
    text = render_text(VARIANTS["void-reprint"], 32)
    assert "重打印 REPRINT" in text
    assert "ORIG TRACE 000012" in text
    assert "备注(REFERENCE):" in text
    assert "备注" not in render_text(make_receipt())


def test_golden_text() -> None:
    """The sale slip as a person reviews it; regenerate with SMARTPOS_REGEN_GOLDEN=1."""
    path = GOLDEN / "sale_merchant_32.txt"
    text = render_text(make_receipt(), 32)
    if os.environ.get("SMARTPOS_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_chip_slip_shows_the_cryptogram_counter_and_tvr() -> None:
    text = render_text(VARIANTS["chip"], 32)
    assert " /I" in text  # read by the chip
    assert "ARQC" in text and "1A2B3C4D5E6F7081" in text
    assert "0007" in text and "0000000000" in text
    assert "交易证书(TC):" in text and "8877665544332211" in text
    assert "A000000333010101" in text and "UnionPay Debit" in text
    assert text.index("应用标签(APP LABEL)") < text.index("应用标识(AID)") < text.index("ARQC")
    assert "ARQC" not in render_text(make_receipt())


@pytest.mark.parametrize("icc", [(("PIN", "1234"),), (("ARQC", "xyz"),), (("ATC", ""),)])
def test_chip_data_must_be_known_hex(icc: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(ValueError, match="chip data"):
        make_receipt(icc=icc)
