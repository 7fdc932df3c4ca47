"""ESC/POS bytes: golden files, Chinese through FS & … FS ., ASCII-only printers, no PAN."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from escpos.printer import Dummy

from smartpos.receipts.escpos import FS_CHINESE_OFF, FS_CHINESE_ON, receipt_bytes, render_escpos
from smartpos.receipts.model import Copy, Receipt, TxnKind
from tests.receipts.test_model import FULL_PAN, PAN_MIDDLE, make_receipt

GOLDEN = Path(__file__).parent / "golden"
CHINESE_SEGMENT = re.compile(re.escape(FS_CHINESE_ON) + b"(.*?)" + re.escape(FS_CHINESE_OFF), re.S)

GOLDEN_CASES: dict[str, tuple[Receipt, str]] = {
    "sale_merchant_gb18030.bin": (make_receipt(), "gb18030"),
    "refund_customer_ascii.bin": (
        make_receipt(kind=TxnKind.REFUND, copy=Copy.CUSTOMER, reference="ORIG TRACE 000012"),
        "ascii",
    ),
}


def regenerate_golden() -> None:
    """Rewrite every golden file from the current renderer (review the diff before committing)."""
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, (receipt, codepage) in GOLDEN_CASES.items():
        (GOLDEN / name).write_bytes(receipt_bytes(receipt, codepage=codepage))


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_bytes(name: str) -> None:
    if os.environ.get("SMARTPOS_REGEN_GOLDEN") == "1":
        regenerate_golden()
    receipt, codepage = GOLDEN_CASES[name]
    assert receipt_bytes(receipt, codepage=codepage) == (GOLDEN / name).read_bytes()


def test_chinese_is_sent_as_gb18030_inside_chinese_mode() -> None:
    data = receipt_bytes(make_receipt(), codepage="gb18030")
    segments = CHINESE_SEGMENT.findall(data)
    assert any("示例便利店".encode("gb18030") in s for s in segments)
    assert any("商户存根".encode("gb18030") in s for s in segments)
    assert any("POS签购单".encode("gb18030") in s for s in segments)
    # Outside Chinese mode nothing but single-byte ASCII and control codes may go out,
    # and Chinese mode is always cancelled again (FS & / FS . strictly alternate).
    outside = CHINESE_SEGMENT.sub(b"", data)
    assert max(outside) < 0x80
    assert FS_CHINESE_ON not in outside and FS_CHINESE_OFF not in outside
    # No UTF-8 Chinese anywhere: that is the garbling this renderer exists to avoid.
    assert "示例便利店".encode() not in data


def test_structure_init_first_cut_last_title_emphasised() -> None:
    data = receipt_bytes(make_receipt())
    assert data.startswith(b"\x1b@")  # ESC @ initialise
    assert data.endswith(b"\x1dV\x00")  # GS V full cut
    title = FS_CHINESE_ON + "POS签购单 / POS SALES SLIP".encode("gb18030")
    before_title = data[: data.index(title)]
    assert b"\x1bE\x01" in before_title  # bold
    assert b"\x1ba\x01" in before_title  # centred
    assert b"\x1d!\x01" in before_title  # GS ! double height (scales Chinese too)
    assert b"RMB 12.34\n" in data


@pytest.mark.parametrize("codepage", ["gb18030", "ascii"])
@pytest.mark.parametrize("kind", list(TxnKind))
def test_full_pan_never_printed(codepage: str, kind: TxnKind) -> None:
    data = receipt_bytes(make_receipt(kind=kind), codepage=codepage)
    assert b"622202******4426" in data  # the masked form is there ...
    assert FULL_PAN.encode() not in data  # ... the number is not,
    assert PAN_MIDDLE.encode() not in data  # not even its hidden middle.


def test_ascii_codepage_sends_only_ascii() -> None:
    receipt = make_receipt(reference="原交易 ORIG TRACE 000012", reprint=True)
    data = receipt_bytes(receipt, width=48, codepage="ascii")
    assert max(data) < 0x80
    assert FS_CHINESE_ON not in data
    for english in (
        b"POS SALES SLIP",
        b"MERCHANT COPY",
        b"MERCHANT NAME:",
        b"UnionPay",
        b"SALE",
        b"REPRINT",
        b"ORIG TRACE 000012",
        b"CARDHOLDER SIGNATURE:",
    ):
        assert english in data, english
    assert b"?" not in data  # stripped, not replaced with garbage


def test_render_escpos_drives_the_given_printer() -> None:
    printer = Dummy()
    render_escpos(make_receipt(), printer, width=48)
    assert printer.output == receipt_bytes(make_receipt(), width=48)
    assert printer.output != receipt_bytes(make_receipt(), width=32)


def test_unknown_codepage_is_refused() -> None:
    with pytest.raises(ValueError, match="codepage"):
        receipt_bytes(make_receipt(), codepage="utf-8")
