"""After a fuzz run: the ledger balances, and no money moved except by requests that were
approved — every transfer made during the run belongs to a request whose answer the fuzzer
saw with 39 = 00 (amount included), or to an approved settlement.

Transfer ids say which request made them (smartpos/host/processor.py): ``TID:class:MMDD:
STAN:suffix`` for a request's own transfer (hold, void, refund, reversal, and a reversal's
rehold, charge or refunds), ``<hold id>:capture`` for a settlement's capture,
``TID:upload:batch:row:undo`` for a batch upload end's undo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from smartpos.host.ledger import check
from smartpos.host.tables import transfers

Identity = tuple[str, str, str, str]  # TID, message class, MMDD, STAN


@dataclass
class Approvals:
    """What the fuzzer saw the host approve."""

    requests: dict[Identity, str] = field(default_factory=dict)  # identity → amount (n12)
    settled_tids: set[str] = field(default_factory=set)  # an approved 0500 or 0320 end

    def record(self, answer: dict[str, str]) -> None:
        """Note an answer; only approvals count."""
        mti = answer.get("t", "")
        if answer.get("39") != "00" or len(mti) != 4 or not mti.isdigit() or mti[2] not in "13":
            return
        request_class = mti[:2] + str(int(mti[2]) - 1) + "0"
        tid = answer.get("41", "")
        if request_class in ("0500", "0320") and "48" in answer:
            self.settled_tids.add(tid)
        key = (tid, request_class, answer.get("13", ""), answer.get("11", ""))
        self.requests[key] = answer.get("4", "")


@dataclass
class AuditResult:
    balanced: bool
    ledger_problems: list[str]
    new_transfers: int
    unattributed: list[str]  # transfers no approved request accounts for


def transfer_ids(conn: Connection) -> set[str]:
    return {row.id for row in conn.execute(select(transfers.c.id))}


def audit(conn: Connection, before: set[str], approvals: Approvals) -> AuditResult:
    report = check(conn)
    rows = {row.id: row for row in conn.execute(select(transfers)) if row.id not in before}
    made = set(rows)
    unattributed = []
    for tid_, row in sorted(rows.items()):
        problem = attribute(tid_, row.amount_minor, before, made, approvals)
        if problem:
            unattributed.append(f"{tid_}: {problem}")
    return AuditResult(report.balanced, list(report.problems), len(rows), unattributed)


def attribute(
    transfer_id: str, amount: int, before: set[str], made: set[str], approvals: Approvals
) -> str | None:
    """Why transfer ``transfer_id`` (of ``amount``) is not accounted for by an approved
    request, or None if it is."""
    parts = transfer_id.split(":")
    if transfer_id.endswith(":capture"):
        hold = transfer_id.removesuffix(":capture")
        if hold not in before and hold not in made:
            return "capture of an unknown hold"
        return None if parts[0] in approvals.settled_tids else "capture without settlement"
    if len(parts) >= 2 and parts[1] == "upload":
        return None if parts[0] in approvals.settled_tids else "upload undo without upload"
    if len(parts) < 5:
        return "id of no known shape"
    tid, request_class, mmdd, stan, suffix = parts[0], parts[1], parts[2], parts[3], parts[4]
    approved_amount = approvals.requests.get((tid, request_class, mmdd, stan))
    if approved_amount is None:
        return "made by a request not seen approved"
    if suffix in ("hold", "refund") and approved_amount and int(approved_amount) != amount:
        return f"amount {amount} differs from the approved request's {approved_amount}"
    return None
