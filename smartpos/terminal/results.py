"""What the terminal reports back: a transaction's result and a settlement's report.

Both are plain data with enums for what callers branch on; ``to_dict`` gives the JSON shape
the command line prints (docs/cli.md) and the journal stores for a repeated order reference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Kind", "Outcome", "SettleOutcome", "SettleReport", "TxnResult"]


class Outcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"  # no trusted answer: nothing charged, or reversed / reversal queued


class Kind(StrEnum):
    SALE = "sale"
    VOID = "void"
    REFUND = "refund"
    BALANCE = "balance"
    SIGN_ON = "sign_on"
    ECHO = "echo"


class SettleOutcome(StrEnum):
    BALANCED = "balanced"  # the host's totals equalled ours
    UPLOADED = "uploaded"  # they did after the batch upload
    NOT_BALANCED = "not_balanced"  # settled on the host's records after the upload
    ALREADY_SETTLED = "already_settled"  # the host had closed the batch before (77)


@dataclass
class TxnResult:
    result: Outcome
    response_code: str
    message: str
    kind: Kind
    amount_minor: int = 0
    currency: str = "CNY"
    stan: str = ""
    invoice_no: str = ""
    batch_no: str = ""
    auth_code: str = ""
    rrn: str = ""
    pan_masked: str = ""
    brand: str = ""
    entry_mode: str = ""
    reversal: str | None = None  # None | "sent" | "queued"
    balance_minor: int | None = None
    journal_id: int | None = None
    pin_verified: bool = False
    icc: dict[str, str] = field(default_factory=dict)  # chip sale: AID, ARQC, ATC, TVR, TC (hex)
    app_label: str = ""  # chip sale: the card application's label
    # The caller's idempotency key (an order reference) and whether this result is the one
    # stored for it by an earlier call (nothing was sent this time).
    order_ref: str | None = None
    repeated: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["result"], out["kind"] = str(self.result), str(self.kind)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TxnResult:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["result"], known["kind"] = Outcome(known["result"]), Kind(known["kind"])
        return cls(**known)


@dataclass(frozen=True)
class SettleReport:
    batch_no: str
    result: SettleOutcome
    # Whether the host's totals for the batch equal this terminal's (for already_settled: as
    # the host settled it; None when it sent none).
    host_totals_agree: bool | None
    uploaded: int
    upload_refused: int
    tc_advices: dict[str, int]
    sales_count: int
    sales_minor: int
    refunds_count: int
    refunds_minor: int
    next_batch_no: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["result"] = str(self.result)
        return out
