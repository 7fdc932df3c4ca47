"""End of day on the terminal: TC advices, the settlement request (0500), the batch upload
(0320) when the totals disagree, and closing the batch (protocol.md §6.5, §8.10–§8.11).

A batch with nothing in it is not settled (refused, nothing changes); a batch the host has
already settled (77) is closed as ``already_settled``, never reported as balanced; a batch
stays open whenever the host has not said it closed it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smartpos.protocol.codec import Fields, MessageError
from smartpos.protocol.codes import describe
from smartpos.protocol.messages import (
    F60,
    NET_BATCH_UPLOAD,
    NET_BATCH_UPLOAD_END,
    NET_SETTLE,
    NET_TC_ADVICE,
    TYPE_NETWORK,
    TYPE_PURCHASE,
    TYPE_REFUND,
    SettlementTotals,
    SettleResult,
)
from smartpos.terminal.chip import CHIP_PSN
from smartpos.terminal.errors import Refusal, TerminalError
from smartpos.terminal.link import LinkError
from smartpos.terminal.results import SettleOutcome, SettleReport

if TYPE_CHECKING:
    from smartpos.terminal.engine import Terminal

__all__ = ["TC_PAN_CONTEXT", "settle"]

OPERATOR = "01 "
TC_PAN_CONTEXT = b"tc-advice-pan"  # vault context of a PAN kept sealed for its TC advice


async def settle(t: Terminal) -> SettleReport:
    """Flush reversals, send the TC advices and the totals; batch-upload when they
    disagree; close the batch and open the next."""
    await t.require_no_pending_reversal()
    batch_no = t.batch_no()
    with t.engine.connect() as conn:
        if not t.journal.batch_has_transactions(conn, batch_no):
            raise TerminalError(Refusal.NOTHING_TO_SETTLE, batch_no=batch_no)
    tc_advices = await _send_tc_advices(t, batch_no)
    with t.engine.begin() as conn:
        ours = t.journal.totals(conn, batch_no)
        stan = t.journal.next_stan(conn)
    req = {
        **t.base("0500", stan, t.clock()),
        "48": ours.encode(),
        "49": t.ccy(),
        "60": F60(TYPE_NETWORK, batch_no, NET_SETTLE).encode(),
        "63": OPERATOR,
    }
    try:
        resp = await t.ask(req, maced=True)
    except (LinkError, MessageError) as exc:
        raise TerminalError(
            Refusal.SETTLEMENT_FAILED, reason=f"settlement failed: {exc}; nothing closed"
        ) from None
    rc = resp.get("39", "")
    uploaded, refused = 0, 0
    host_totals = resp.get("48")
    if rc == "77":
        label = SettleOutcome.ALREADY_SETTLED
    elif rc != "00" or not host_totals:
        raise TerminalError(Refusal.SETTLEMENT_REFUSED, rc=rc, text=describe(rc).en)
    else:
        label = SettleOutcome.BALANCED
        first = _settle_result(host_totals)
        if first not in (SettleResult.BALANCED, SettleResult.NOT_BALANCED):
            # 3 (error), or not a result at all: the host has not closed the batch.
            raise TerminalError(
                Refusal.SETTLEMENT_FAILED,
                reason=f"the host could not settle batch {batch_no} (result {first or 'missing'})",
            )
        if first == SettleResult.NOT_BALANCED:
            uploaded, host_totals, refused = await _batch_upload(t, batch_no)
            result = _settle_result(host_totals) if host_totals else None
            if result not in (SettleResult.BALANCED, SettleResult.NOT_BALANCED):
                raise TerminalError(Refusal.SETTLEMENT_FAILED, reason="batch upload failed")
            # uploaded: totals agreed after the upload; not_balanced: the host did not know
            # some approvals this terminal holds (settled on the host's records).
            label = (
                SettleOutcome.UPLOADED
                if result == SettleResult.BALANCED
                else SettleOutcome.NOT_BALANCED
            )
    t.journal.close_batch(batch_no, str(label), ours, host_totals, uploaded)
    return SettleReport(
        batch_no=batch_no,
        result=label,
        host_totals_agree=_agree(ours, host_totals),
        uploaded=uploaded,
        upload_refused=refused,
        tc_advices=tc_advices,
        sales_count=ours.domestic.debit_count + ours.foreign.debit_count,
        sales_minor=ours.domestic.debit_amount_minor + ours.foreign.debit_amount_minor,
        refunds_count=ours.domestic.credit_count + ours.foreign.credit_count,
        refunds_minor=ours.domestic.credit_amount_minor + ours.foreign.credit_amount_minor,
        next_batch_no=t.batch_no(),
    )


async def _send_tc_advices(t: Terminal, batch_no: str) -> dict[str, int]:
    """Send the host the TC of each approved chip sale of the batch not sent yet (0320,
    60.3 = 203; protocol.md §8.11). An answer settles the advice either way (00 sent, else
    refused) and drops its sealed PAN; a link failure leaves the rest pending for the next
    attempt — the settlement goes on regardless (no money moves here)."""
    counts = {"sent": 0, "refused": 0, "pending": 0}
    rows = t.journal.tc_pending(batch_no)
    for n, row in enumerate(rows):
        stan = t.journal.take_stan()
        req: Fields = {
            **t.base("0320", stan, t.clock()),
            "2": t.vault.unseal(row.tc_pan_sealed, TC_PAN_CONTEXT).decode(),
            "4": f"{row.amount_minor:012d}",
            "23": f"0{CHIP_PSN}",
            "37": row.rrn or "",
            "55": row.tc,
            "60": F60(TYPE_PURCHASE, batch_no, NET_TC_ADVICE).encode(),
        }
        try:
            answer = await t.ask(req, maced=True)
        except (LinkError, MessageError):
            counts["pending"] = len(rows) - n
            break
        state = "sent" if answer.get("39") == "00" else "refused"
        counts[state] += 1
        t.journal.tc_answered(row.id, state)
    return counts


async def _batch_upload(t: Terminal, batch_no: str) -> tuple[int, str | None, int]:
    """Send every approved sale/refund of the batch (0320), then the closing 0320 with the
    count. Returns (uploaded, the host's final field 48 or None on failure, refused)."""
    refused = 0
    rows = t.journal.settleable(batch_no)
    for row in rows:
        type_code = TYPE_PURCHASE if row.kind == "sale" else TYPE_REFUND
        req: Fields = {
            "t": "0320",
            "4": f"{row.amount_minor:012d}",
            "11": row.stan,
            "13": row.date_mmdd,
            "37": row.rrn or "",
            "41": t.tid,
            "42": t.mid,
            "60": F60(type_code, batch_no, NET_BATCH_UPLOAD).encode(),
        }
        try:
            answer = await t.ask(req, maced=True)
        except (LinkError, MessageError):
            return len(rows), None, refused
        if answer.get("39") != "00":
            refused += 1
    stan = t.journal.take_stan()
    end = {
        **t.base("0320", stan, t.clock()),
        "48": f"{len(rows):04d}",
        "60": F60(TYPE_NETWORK, batch_no, NET_BATCH_UPLOAD_END).encode(),
    }
    try:
        resp = await t.ask(end, maced=True)
    except (LinkError, MessageError):
        return len(rows), None, refused
    return len(rows), resp.get("48"), refused


def _settle_result(host_totals: str) -> SettleResult | None:
    """The result digit of the host's field 48 (None if it is not valid totals)."""
    try:
        return SettlementTotals.decode(host_totals)[1]
    except MessageError:
        return None


def _agree(ours: SettlementTotals, host_totals: str | None) -> bool | None:
    if not host_totals:
        return None
    try:
        return SettlementTotals.decode(host_totals)[0] == ours
    except MessageError:
        return False
