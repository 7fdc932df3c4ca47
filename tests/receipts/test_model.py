"""Receipt model: the masked-PAN guard and the printed sign of amounts."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from smartpos.money import Money
from smartpos.receipts.model import Copy, Receipt, TxnKind

# A known card number: the tests assert its full form and its hidden middle never print.
FULL_PAN = "6222027359184426"
PAN_MIDDLE = FULL_PAN[6:-4]  # "735918"
MASKED_PAN = FULL_PAN[:6] + "*" * len(PAN_MIDDLE) + FULL_PAN[-4:]

SHANGHAI = timezone(timedelta(hours=8))


def make_receipt(**changes: Any) -> Receipt:
    """A merchant copy of a CNY 12.34 chip sale at 示例便利店; override any field."""
    base = Receipt(
        merchant_name="示例便利店",
        mid="898310048161001",
        tid="10000001",
        operator="01",
        kind=TxnKind.SALE,
        brand_label="银联 UnionPay",
        pan_masked=MASKED_PAN,
        entry_mode="chip",
        batch_no="000001",
        stan="000012",
        invoice_no="000012",
        rrn="240501000012",
        auth_code="A1B2C3",
        when=datetime(2024, 5, 1, 12, 34, 56, tzinfo=SHANGHAI),
        amount=Money.of(1234, "CNY"),
        copy=Copy.MERCHANT,
        pin_verified=False,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    "pan_masked",
    [
        MASKED_PAN,
        "6222 02** **** 4426",
        "************4426",
        "622202XXXXXX4426",
        "622202*********4426",  # 19-digit PAN
    ],
)
def test_masked_pans_are_accepted(pan_masked: str) -> None:
    assert make_receipt(pan_masked=pan_masked).pan_masked == pan_masked


@pytest.mark.parametrize(
    "pan_masked",
    [
        FULL_PAN,
        "6222 0273 5918 4426",
        "6222027*****4426",  # 7 leading digits
        "622202*****84426",  # 5 trailing digits
        "622202**59**4426",  # middle digits showing
        "",
    ],
)
def test_unmasked_pan_is_refused(pan_masked: str) -> None:
    with pytest.raises(ValueError, match="first 6 and last 4") as info:
        make_receipt(pan_masked=pan_masked)
    # The error itself must not leak the number either.
    assert PAN_MIDDLE not in str(info.value)


def test_naive_time_and_unknown_entry_mode_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_receipt(when=datetime(2024, 5, 1, 12, 0, 0))
    with pytest.raises(ValueError, match="entry_mode"):
        make_receipt(entry_mode="barcode")


@pytest.mark.parametrize(
    ("kind", "minor"),
    [(TxnKind.SALE, 1234), (TxnKind.VOID, -1234), (TxnKind.REFUND, -1234)],
)
def test_signed_amount_follows_kind_whatever_sign_is_given(kind: TxnKind, minor: int) -> None:
    for given in (1234, -1234):
        receipt = make_receipt(kind=kind, amount=Money.of(given))
        assert receipt.signed_amount == Money.of(minor)


def test_labels() -> None:
    assert [(k.label_zh, k.label_en) for k in TxnKind] == [
        ("消费", "SALE"),
        ("消费撤销", "VOID"),
        ("退货", "REFUND"),
        ("余额查询", "BALANCE"),
    ]
    assert Copy("merchant") is Copy.MERCHANT
