"""End of day at the host: the batch totals (the same count as the terminal's,
``SettlementTotals.of``), settlement (0500), the batch upload (0320) that settles on the
host's records, and TC advices."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, and_, func, select, update

from smartpos.cards import CardError
from smartpos.cards.emv import CID_TC, read_icc_data, verify_arqc
from smartpos.host import ledger
from smartpos.host.context import Context, Decline
from smartpos.host.reversal import ReversalSteps
from smartpos.host.tables import batches, requests
from smartpos.protocol.codec import MessageError
from smartpos.protocol.messages import (
    F60,
    NET_BATCH_UPLOAD_END,
    TYPE_PURCHASE,
    TYPE_REFUND,
    SettlementTotals,
    SettleResult,
    require,
)


class SettlementSteps(ReversalSteps):
    def host_totals(self, conn: Connection, tid: str, batch_no: str) -> SettlementTotals:
        rows = conn.execute(
            select(requests.c.kind, requests.c.amount_minor, requests.c.domestic).where(
                and_(
                    requests.c.tid == tid,
                    requests.c.batch_no == batch_no,
                    requests.c.status == "approved",
                    requests.c.kind.in_(("purchase", "refund")),
                )
            )
        )
        return SettlementTotals.of(
            (bool(row.domestic), row.kind == "refund", row.amount_minor) for row in rows
        )

    def _settle_batch(self, conn: Connection, tid: str, batch_no: str, result: str) -> None:
        """Capture every hold of the batch's approved purchases, at most once each."""
        self._open_batches.discard((tid, batch_no))
        rows = conn.execute(
            select(requests.c.id, requests.c.transfer_id).where(
                and_(
                    requests.c.tid == tid,
                    requests.c.batch_no == batch_no,
                    requests.c.kind == "purchase",
                    requests.c.status == "approved",
                    requests.c.settled.is_(False),
                )
            )
        )
        for row in rows:
            if row.transfer_id and ledger.pending_open(conn, row.transfer_id):
                ledger.post_pending(conn, f"{row.transfer_id}:capture", row.transfer_id)
        conn.execute(
            update(requests)
            .where(and_(requests.c.tid == tid, requests.c.batch_no == batch_no))
            .values(settled=True)
        )
        values = {"status": "settled", "result": result, "settled_at": datetime.now(UTC)}
        exists = conn.execute(
            select(batches.c.status).where(
                and_(batches.c.tid == tid, batches.c.batch_no == batch_no)
            )
        ).first()
        if exists is None:
            conn.execute(batches.insert().values(tid=tid, batch_no=batch_no, **values))
        else:
            conn.execute(
                update(batches)
                .where(and_(batches.c.tid == tid, batches.c.batch_no == batch_no))
                .values(**values)
            )

    def _settlement(self, conn: Connection, ctx: Context) -> None:
        require(ctx.fields, "41", "42", "48", "60")
        batch_no = F60.decode(ctx.fields["60"]).batch_no
        terminal_totals, _ = SettlementTotals.decode(ctx.fields["48"])
        self._open_batches.discard((ctx.terminal.tid, batch_no))  # settled or uploading next
        closed = conn.execute(
            select(batches.c.status, batches.c.result).where(
                and_(batches.c.tid == ctx.terminal.tid, batches.c.batch_no == batch_no)
            )
        ).first()
        state = closed.status if closed is not None else None
        if closed is not None and state == "settled":
            # Settled before (its answer was lost, or the terminal's counters went back):
            # never again. The answer carries the totals it was settled with, so the
            # terminal can tell whether they are its own.
            settled_as = SettleResult(closed.result or SettleResult.BALANCED)
            ours = self.host_totals(conn, ctx.terminal.tid, batch_no)
            ctx.response["48"] = ours.encode(settled_as, saturate=True)
            raise Decline("77", "batch already settled")
        ours = self.host_totals(conn, ctx.terminal.tid, batch_no)
        if ours == terminal_totals:
            self._settle_batch(conn, ctx.terminal.tid, batch_no, SettleResult.BALANCED)
            result = SettleResult.BALANCED
        else:
            result = SettleResult.NOT_BALANCED
            if state is None:
                conn.execute(
                    batches.insert().values(
                        tid=ctx.terminal.tid, batch_no=batch_no, status="uploading"
                    )
                )
            else:
                conn.execute(
                    update(batches)
                    .where(and_(batches.c.tid == ctx.terminal.tid, batches.c.batch_no == batch_no))
                    .values(status="uploading")
                )
            conn.execute(
                update(requests)
                .where(and_(requests.c.tid == ctx.terminal.tid, requests.c.batch_no == batch_no))
                .values(uploaded=False)
            )
        ctx.response["48"] = ours.encode(result, saturate=True)
        ctx.status, ctx.response_code = "approved", "00"

    def _batch_upload(self, conn: Connection, ctx: Context) -> None:
        require(ctx.fields, "41", "42", "60")
        f60 = F60.decode(ctx.fields["60"])
        tid, batch_no = ctx.terminal.tid, f60.batch_no
        state = conn.execute(
            select(batches.c.status).where(
                and_(batches.c.tid == tid, batches.c.batch_no == batch_no)
            )
        ).scalar()
        if state != "uploading":
            raise Decline("12", "no batch upload in progress")
        if f60.net_code != NET_BATCH_UPLOAD_END:
            require(ctx.fields, "4", "37")
            kind = {TYPE_PURCHASE: "purchase", TYPE_REFUND: "refund"}.get(f60.type_code)
            row = self._find_original(conn, tid=tid, batch_no=batch_no, rrn=ctx.fields["37"])
            if (
                kind is None
                or row is None
                or row.kind != kind
                or row.amount_minor != int(ctx.fields["4"])
                # A purchase the host declined, or voided or reversed since, is not one the
                # terminal may claim: confirming it would report the batch balanced while
                # the terminal counts money the host never captures.
                or row.status != "approved"
            ):
                raise Decline("25", "uploaded transaction unknown to the host")
            conn.execute(update(requests).where(requests.c.id == row.id).values(uploaded=True))
            ctx.status, ctx.response_code = "approved", "00"
            return
        # Upload end: what the terminal does not hold as approved never happened for it.
        require(ctx.fields, "48")
        if not ctx.fields["48"].isdigit() or len(ctx.fields["48"]) > 6:
            raise MessageError("48 must hold the uploaded count", "48")
        stale = conn.execute(
            select(requests).where(
                and_(
                    requests.c.tid == tid,
                    requests.c.batch_no == batch_no,
                    requests.c.status == "approved",
                    requests.c.uploaded.is_(False),
                    requests.c.kind.in_(("purchase", "refund")),
                )
            )
        ).all()
        for row in stale:
            rid = f"{tid}:upload:{batch_no}:{row.id}:undo"
            if row.kind == "purchase":
                self._undo_purchase(conn, ctx, row, rid)
            else:
                self._undo_refund(conn, ctx, row, rid)
            conn.execute(update(requests).where(requests.c.id == row.id).values(status="reversed"))
        # The terminal says how many it uploaded; fewer confirmed means it holds approvals the
        # host never gave. The batch settles on the host's records either way; result 2 tells
        # the terminal (and the merchant) that its count was wrong.
        claimed = int(ctx.fields["48"])
        confirmed = conn.execute(
            select(func.count())
            .select_from(requests)
            .where(
                and_(
                    requests.c.tid == tid,
                    requests.c.batch_no == batch_no,
                    requests.c.uploaded.is_(True),
                    requests.c.kind.in_(("purchase", "refund")),
                )
            )
        ).scalar_one()
        result = SettleResult.BALANCED if claimed == confirmed else SettleResult.NOT_BALANCED
        totals = self.host_totals(conn, tid, batch_no)
        self._settle_batch(conn, tid, batch_no, result)
        ctx.response["48"] = totals.encode(result, saturate=True)
        ctx.status, ctx.response_code = "approved", "00"

    def _tc_advice(self, conn: Connection, ctx: Context) -> None:
        """The card's transaction certificate for an approved chip sale (protocol.md §8.11):
        kept on the sale once it verifies as that card's, for that amount and counter."""
        f = ctx.fields
        require(f, "2", "4", "37", "41", "42", "55", "60")
        read = self._card_read(ctx)
        if read.error is not None or read.pan is None:
            raise Decline("14", read.error or "no card number")
        original = self._find_original(conn, tid=ctx.terminal.tid, rrn=f["37"], kind="purchase")
        if original is None or original.status != "approved" or original.atc is None:
            raise Decline("25", "no approved chip sale with this reference")
        if read.token != original.pan_token:
            raise Decline("14", "card differs from the sale's")
        try:
            data = read_icc_data(f["55"])
        except CardError as exc:
            raise Decline("30", str(exc)) from None
        psn = f.get("23", "000")[-2:]
        if data.tags["9F27"] != CID_TC:
            raise Decline("05", "not a transaction certificate")
        if (data.amount_minor, data.atc) != (original.amount_minor, original.atc):
            raise Decline("05", "TC is for another amount or counter than the sale's")
        if not verify_arqc(data, read.pan, psn):
            raise Decline("05", "TC does not verify")
        if original.tc is not None and original.tc != f["55"]:
            raise Decline("05", "the sale already has another TC")
        conn.execute(update(requests).where(requests.c.id == original.id).values(tc=f["55"]))
        ctx.pan, ctx.original = read.pan, original
        ctx.status, ctx.response_code = "approved", "00"
