"""The receipt (签购单) for a card transaction, as data.

Pure domain: no printer or file I/O here. A ``Receipt`` holds exactly what is printed and
nothing more — in particular only a masked card number, which ``__post_init__`` enforces,
because a receipt is handed to people and kept in drawers (PCI DSS 3.4: first 6 / last 4 at most).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from smartpos.money import Money


class Copy(StrEnum):
    """Which copy of the slip: the merchant keeps one (signed), the cardholder takes the other."""

    MERCHANT = "merchant"
    CUSTOMER = "customer"

    @property
    def label_zh(self) -> str:
        return _COPY_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _COPY_LABELS[self][1]


_COPY_LABELS: dict[Copy, tuple[str, str]] = {
    Copy.MERCHANT: ("商户存根", "MERCHANT COPY"),
    Copy.CUSTOMER: ("持卡人存根", "CARDHOLDER COPY"),
}


class TxnKind(StrEnum):
    """The transaction a receipt is for, with its printed name (CUP wording)."""

    SALE = "sale"
    VOID = "void"
    REFUND = "refund"
    BALANCE = "balance"

    @property
    def label_zh(self) -> str:
        return _KIND_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _KIND_LABELS[self][1]

    @property
    def is_credit(self) -> bool:
        """True when money goes back to the card; CUP slips print such amounts negative."""
        return self in (TxnKind.VOID, TxnKind.REFUND)


_KIND_LABELS: dict[TxnKind, tuple[str, str]] = {
    TxnKind.SALE: ("消费", "SALE"),
    TxnKind.VOID: ("消费撤销", "VOID"),
    TxnKind.REFUND: ("退货", "REFUND"),
    TxnKind.BALANCE: ("余额查询", "BALANCE"),
}

# Entry mode → the one-letter marker printed after the card number on CUP slips.
ICC_FIELDS = frozenset({"AID", "ARQC", "ATC", "TVR", "TC"})
ENTRY_MARKERS: dict[str, str] = {
    "swipe": "S",
    "chip": "I",
    "contactless": "C",
    "manual": "M",
    "fallback": "F",  # a chip card swiped because its chip could not be read
}

# Up to 6 leading digits, at least one mask character, up to 4 trailing digits — nothing else.
# Separators (space, hyphen) are ignored so "6222 02** **** 1234" is accepted as well.
MASK_CHARS = "*Xx#"
_MASKED_PAN = re.compile(rf"\d{{0,6}}[{re.escape(MASK_CHARS)}]+\d{{0,4}}")


def check_masked_pan(pan_masked: str) -> None:
    """Raise ``ValueError`` unless ``pan_masked`` shows at most the first 6 and last 4 digits."""
    compact = pan_masked.replace(" ", "").replace("-", "")
    if not _MASKED_PAN.fullmatch(compact):
        # Never echo the value: it may be a full card number.
        raise ValueError(
            "pan_masked must show at most the first 6 and last 4 digits, masked with one of "
            f"{MASK_CHARS!r} in between (got {len(compact)} characters, "
            f"{sum(c.isdigit() for c in compact)} digits)"
        )


@dataclass(frozen=True)
class Receipt:
    """Everything printed on one copy of a card transaction slip.

    ``amount`` is the transaction amount (for BALANCE: the balance). Its sign on paper comes
    from ``kind``: VOID and REFUND print negative, as CUP slips do, whatever the sign given.
    ``when`` must be timezone-aware and already in the store's zone; it is printed as is.
    """

    merchant_name: str
    mid: str
    tid: str
    operator: str
    kind: TxnKind
    brand_label: str
    pan_masked: str
    entry_mode: str
    batch_no: str
    stan: str
    invoice_no: str
    rrn: str
    auth_code: str
    when: datetime
    amount: Money
    copy: Copy
    pin_verified: bool
    reference: str = ""
    acquirer: str = "smartpos sandbox"
    reprint: bool = False
    # Chip transactions: (AID | ARQC | ATC | TVR | TC, hex value), printed in this order,
    # and the card application's label.
    icc: tuple[tuple[str, str], ...] = ()
    app_label: str = ""

    def __post_init__(self) -> None:
        check_masked_pan(self.pan_masked)
        if self.entry_mode not in ENTRY_MARKERS:
            raise ValueError(
                f"entry_mode must be one of {sorted(ENTRY_MARKERS)}, got {self.entry_mode!r}"
            )
        if self.when.tzinfo is None or self.when.utcoffset() is None:
            raise ValueError("when must be timezone-aware (in the store's zone)")
        for name, value in self.icc:
            if name not in ICC_FIELDS:
                raise ValueError(f"chip data {name!r} is not one of {sorted(ICC_FIELDS)}")
            if not (value and len(value) <= 16 and all(c in "0123456789ABCDEF" for c in value)):
                raise ValueError(f"chip data {name} must be upper-case hex, at most 8 bytes")

    @property
    def entry_marker(self) -> str:
        """``S`` swipe, ``I`` chip, ``C`` contactless, ``M`` manual, ``F`` fallback swipe."""
        return ENTRY_MARKERS[self.entry_mode]

    @property
    def signed_amount(self) -> Money:
        """The amount with the sign it is printed with (negative for VOID and REFUND)."""
        magnitude = abs(self.amount.amount_minor)
        return Money(-magnitude if self.kind.is_credit else magnitude, self.amount.currency)

    @property
    def no_cvm(self) -> bool:
        """A contactless sale without PIN: the terminal only allows one within the no-CVM
        limit (QuickPass small amount: no PIN, no signature)."""
        return (
            self.kind is TxnKind.SALE and self.entry_mode == "contactless" and not self.pin_verified
        )

    @property
    def needs_signature(self) -> bool:
        """A signature line is printed only on the merchant copy of a money-moving, non-PIN
        txn, and not for a no-CVM contactless sale."""
        money_moved = self.kind is not TxnKind.BALANCE
        return (
            self.copy is Copy.MERCHANT and not self.pin_verified and money_moved and not self.no_cvm
        )
