"""Reversals (0400/0401, protocol.md §9.3): find the request a reversal names, and undo
what it did — a purchase's hold (net of refunds), a void (the hold back, or posted after
settlement), a refund — at most once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, select, update

from smartpos.host import ledger
from smartpos.host.context import Context, Decline, Unrecorded
from smartpos.host.steps import Steps, _reverses
from smartpos.host.tables import requests
from smartpos.protocol.messages import (
    require,
)


class ReversalSteps(Steps):
    def _reject_if_reversed(self, conn: Connection, ctx: Context) -> None:
        """A reversal that arrived before its original leaves a tombstone: the late original
        must never post."""
        if "0400" in ctx.siblings:
            raise Decline("12", "already reversed by the terminal")

    def _reversal(self, conn: Connection, ctx: Context) -> None:
        require(ctx.fields, "3", "4", "41", "42", "60")
        tid, _, stan, mmdd = self._identity(ctx)
        original = conn.execute(
            select(requests).where(
                and_(
                    requests.c.tid == tid,
                    requests.c.stan == stan,
                    requests.c.date_mmdd == mmdd,
                    requests.c.msg_class.in_(("0200", "0220")),
                    requests.c.kind.in_(("purchase", "void", "refund")),
                )
            )
        ).first()
        if original is not None and not _reverses(ctx.fields, original):
            # The terminal's own request never took this identity (it was answered 94, or
            # 12 after a reversal): there is nothing of it to undo, and the request that
            # holds the identity is not this reversal's business.
            raise Unrecorded("25", "the request held under this trace is another one")
        ctx.status, ctx.response_code = "approved", "00"
        if original is None or original.response_code != "00" or original.status == "reversed":
            return  # nothing was posted (or it is already undone): acknowledge, remember
        ctx.original = original
        rid = self._transfer_id(ctx, "reversal")
        if original.kind == "purchase":
            self._undo_purchase(conn, ctx, original, rid)
        elif original.kind == "void":
            self._undo_void(conn, ctx, original, rid)
        elif original.kind == "refund":
            self._undo_refund(conn, ctx, original, rid)
        conn.execute(update(requests).where(requests.c.id == original.id).values(status="reversed"))

    def _undo_void(self, conn: Connection, ctx: Context, void: Any, transfer_id: str) -> None:
        """Take an approved void back: the sale stands again and the card pays it — held
        again while its batch is open, posted at once when the batch has settled (no
        settlement will capture a hold in it any more). A sale reversed since its void
        stays undone."""
        purchase = self._find_original(conn, id=void.original_id)
        if purchase.status != "voided":
            return
        card = self._card_account(conn, purchase.pan_token)
        merchant = self._merchant_account(conn, ctx)
        if purchase.settled:
            charge_id = transfer_id + ":charge"
            ledger.transfer(
                conn, charge_id, card, merchant, purchase.amount_minor, "purchase", force=True
            )
        else:
            charge_id = transfer_id + ":rehold"
            ledger.hold(
                conn, charge_id, card, merchant, purchase.amount_minor, "purchase", force=True
            )
        conn.execute(
            update(requests)
            .where(requests.c.id == purchase.id)
            .values(status="approved", transfer_id=charge_id)
        )

    def _undo_refund(self, conn: Connection, ctx: Context, refund: Any, transfer_id: str) -> None:
        """Take an approved refund back: card → merchant, and the purchase may be refunded
        again by that amount. When the purchase itself was reversed since, its reversal
        took its refunds back already: nothing moves."""
        purchase = self._find_original(conn, id=refund.original_id)
        if purchase.status == "reversed":
            return
        ledger.transfer(
            conn,
            transfer_id,
            self._card_account(conn, purchase.pan_token),
            self._merchant_account(conn, ctx),
            refund.amount_minor,
            "reversal",
            force=True,
        )
        conn.execute(
            update(requests)
            .where(requests.c.id == purchase.id)
            .values(refunded_minor=requests.c.refunded_minor - refund.amount_minor)
        )

    def _undo_purchase(
        self, conn: Connection, ctx: Context, purchase: Any, transfer_id: str
    ) -> None:
        """Take an approved sale back, with what was refunded of it: the card ends where it
        was before the sale, the merchant likewise, whether the sale was still held or
        already captured."""
        if purchase.status == "voided":
            return
        refunded = int(purchase.refunded_minor)
        if ledger.pending_open(conn, purchase.transfer_id):
            ledger.void_pending(conn, transfer_id, purchase.transfer_id)
            if refunded:  # the refunds of a sale that never stood go back to the merchant
                ledger.transfer(
                    conn,
                    transfer_id + ":refunds",
                    self._card_account(conn, purchase.pan_token),
                    self._merchant_account(conn, ctx),
                    refunded,
                    "reversal",
                    force=True,
                )
            return
        # Already captured at settlement (or charged by a void's reversal): a compensating
        # transfer of what the card has not had back by refunds.
        t = ledger.get_transfer(conn, purchase.transfer_id)
        assert t is not None
        if t.amount_minor - refunded > 0:
            ledger.transfer(
                conn,
                transfer_id,
                t.credit_account_id,
                t.debit_account_id,
                t.amount_minor - refunded,
                "reversal",
                force=True,
            )
