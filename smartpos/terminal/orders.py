"""Order references (idempotency keys): what a money-moving call already made of one.
The same reference again gets the stored result (``repeated``) and nothing is sent; the
reference for another kind of request or amount is refused (``key_reused``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smartpos.money import Money
from smartpos.terminal.errors import Refusal, TerminalError
from smartpos.terminal.journal import Journal
from smartpos.terminal.results import Kind, Outcome, TxnResult

if TYPE_CHECKING:
    from smartpos.terminal.engine import Terminal


def repeated(t: Terminal, order_ref: str, kind: str, amount_minor: int | None) -> TxnResult | None:
    """The result stored for ``order_ref`` (None: the reference is new). Refused when
    the reference was used for another kind of request or another amount."""
    row = t.journal.by_order_ref(order_ref)
    if row is None:
        return None
    if row.kind != kind or amount_minor not in (None, row.amount_minor):
        was = f"{row.kind} of {Money.of(row.amount_minor, row.currency).format()}"
        raise TerminalError(Refusal.KEY_REUSED, key=order_ref, was=was)
    stored = Journal.stored_result(row)
    if stored is None:  # interrupted before the result was kept: say what the row says
        stored = t._result_of_row(row)
    result = TxnResult.from_dict(stored)
    if result.reversal == "queued" and row.status == "reversed":
        result.reversal = "sent"
        result.message = result.message.replace(
            "reversal queued, it is sent before the next transaction",
            "the transaction was reversed",
        )
    result.repeated = True
    return result


def result_of_row(t: Terminal, row: Any) -> dict[str, Any]:
    outcome = {"approved": "approved", "voided": "approved", "declined": "declined"}
    result = TxnResult(
        Outcome(outcome.get(row.status, "error")),
        row.response_code or "",
        row.message or "",
        Kind(row.kind),
        row.amount_minor,
        row.currency,
        row.stan,
        row.invoice_no,
        row.batch_no,
        auth_code=row.auth_code or "",
        rrn=row.rrn or "",
        pan_masked=row.pan_masked or "",
        brand=row.brand or "",
        entry_mode=row.entry_mode or "",
        journal_id=row.id,
        pin_verified=bool(row.pin_verified) and row.status in ("approved", "voided"),
        order_ref=row.order_ref,
    )
    if row.status in ("reversed", "reversal_pending"):
        result.reversal = "sent" if row.status == "reversed" else "queued"
    return result.to_dict()
