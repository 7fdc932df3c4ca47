"""Turn a terminal result into merchant and customer receipts and print them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from smartpos.cards import Brand
from smartpos.config import Settings
from smartpos.money import Money
from smartpos.receipts.model import Copy, Receipt, TxnKind
from smartpos.terminal.engine import Terminal, TxnResult

_KINDS = {"sale": TxnKind.SALE, "void": TxnKind.VOID, "refund": TxnKind.REFUND}


def receipts_for(
    result: TxnResult,
    *,
    merchant_name: str,
    tid: str,
    mid: str,
    timezone: str = "Asia/Shanghai",
    pin_verified: bool = False,
    when: datetime | None = None,
    reference: str = "",
) -> list[Receipt]:
    """Merchant copy then customer copy of an approved sale, void or refund."""
    brand = Brand(result.brand) if result.brand else Brand.UNKNOWN
    stamp = when or datetime.now(ZoneInfo(timezone))
    return [
        Receipt(
            merchant_name=merchant_name,
            mid=mid,
            tid=tid,
            operator="01",
            kind=_KINDS[result.kind],
            brand_label=f"{brand.label_zh} {brand.label_en}",
            pan_masked=result.pan_masked,
            entry_mode=result.entry_mode or "manual",
            batch_no=result.batch_no,
            stan=result.stan,
            invoice_no=result.invoice_no,
            rrn=result.rrn,
            auth_code=result.auth_code,
            when=stamp,
            amount=Money.of(result.amount_minor, result.currency),
            copy=copy,
            pin_verified=pin_verified,
            reference=reference,
            icc=tuple(result.icc.items()),
            app_label=result.app_label,
        )
        for copy in (Copy.MERCHANT, Copy.CUSTOMER)
    ]


def slips_for(
    settings: Settings, result: TxnResult, identity: tuple[str, str, str], *, reference: str = ""
) -> list[Receipt]:
    """The merchant and customer slips of ``result`` for the terminal ``identity`` (TID,
    MID, merchant name), in the store's zone."""
    tid, mid, merchant_name = identity
    return receipts_for(
        result,
        merchant_name=merchant_name,
        tid=tid,
        mid=mid,
        timezone=settings.timezone,
        pin_verified=result.pin_verified,
        reference=reference,
    )


def print_result(settings: Settings, result: TxnResult, terminal: Terminal | None = None) -> None:
    """Print the slips of ``result``. The merchant's name and the terminal's identity come
    from ``terminal``, else from the terminal's database — read only: the terminal may be
    held by another process (the demo serving this command over its socket)."""
    from smartpos.devices.printer import print_receipts
    from smartpos.terminal.setup import read_identity

    if terminal is not None:
        identity = (terminal.tid, terminal.mid, terminal.merchant_name)
    else:
        identity = read_identity(settings)
    print_receipts(settings, slips_for(settings, result, identity))
