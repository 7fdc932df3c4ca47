"""The terminal's database, as the engine uses it: counters, the journal, armed and pending
reversals, batches (``smartpos/terminal/tables.py`` has the tables).

Every method is one short transaction. The rule the engine builds on lives here: a request
that moves money is journaled *with its reversal armed* in one commit before it is sent
(:meth:`Journal.open_request`), and its outcome is recorded *and the reversal disarmed* in
one commit (:meth:`Journal.finish`) — so a crash at any point leaves either nothing or an
armed reversal, never a sale the terminal forgot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, select, update
from sqlalchemy.exc import IntegrityError

from smartpos.protocol.codes import REVERSAL_NO_RESPONSE
from smartpos.protocol.messages import SettlementTotals
from smartpos.terminal.tables import (
    chip_counters,
    journal,
    reversals,
    settlements,
    terminal_config,
)

__all__ = ["STAN_MAX", "DuplicateOrder", "Journal"]

STAN_MAX = 999_999


def _now() -> datetime:
    return datetime.now(UTC)


def _settleable(batch_no: str) -> ColumnElement[bool]:
    """The batch's approved sales and refunds: what its totals count and its upload sends
    (one clause, so the two cannot differ)."""
    return and_(
        journal.c.batch_no == batch_no,
        journal.c.kind.in_(("sale", "refund")),
        journal.c.status == "approved",
    )


class DuplicateOrder(Exception):
    """Another request already holds this order reference (a concurrent call made it)."""


class Journal:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- configuration and counters ----------------------------------------------------------

    @staticmethod
    def config(conn: Connection) -> Any:
        return conn.execute(select(terminal_config).where(terminal_config.c.id == 1)).one()

    def batch_no(self) -> str:
        with self.engine.connect() as conn:
            return f"{self.config(conn).batch_no:06d}"

    def next_stan(self, conn: Connection) -> str:
        stan = self.config(conn).stan % STAN_MAX + 1
        conn.execute(update(terminal_config).where(terminal_config.c.id == 1).values(stan=stan))
        return f"{stan:06d}"

    def take_stan(self) -> str:
        with self.engine.begin() as conn:
            return self.next_stan(conn)

    def next_invoice(self, conn: Connection) -> str:
        inv = self.config(conn).invoice_no % STAN_MAX + 1
        conn.execute(
            update(terminal_config).where(terminal_config.c.id == 1).values(invoice_no=inv)
        )
        return f"{inv:06d}"

    def move_counters(self, **values: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(terminal_config).where(terminal_config.c.id == 1).values(**values))

    def store_working_keys(self, sealed_tpk: bytes, sealed_tak: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(terminal_config)
                .where(terminal_config.c.id == 1)
                .values(sealed_tpk=sealed_tpk, sealed_tak=sealed_tak, signed_on_at=_now())
            )

    # -- the journal -------------------------------------------------------------------------

    @staticmethod
    def batch_has_transactions(conn: Connection, batch_no: str) -> bool:
        """Whether the batch holds anything to settle: an approved (or since voided) sale,
        refund or void not settled yet."""
        return (
            conn.execute(
                select(journal.c.id)
                .where(
                    and_(
                        journal.c.batch_no == batch_no,
                        journal.c.status.in_(("approved", "voided")),
                        journal.c.settled.is_(False),
                    )
                )
                .limit(1)
            ).first()
            is not None
        )

    def find_sale(
        self, *, stan: str | None = None, invoice_no: str | None = None, rrn: str | None = None
    ) -> Any:
        """The latest sale with this trace, invoice or reference number (None: no such)."""
        if stan is not None:
            where = journal.c.stan == stan
        elif invoice_no is not None:
            where = journal.c.invoice_no == invoice_no
        else:
            where = journal.c.rrn == rrn
        with self.engine.connect() as conn:
            return conn.execute(
                select(journal)
                .where(and_(where, journal.c.kind == "sale"))
                .order_by(journal.c.id.desc())
            ).first()

    def by_order_ref(self, order_ref: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(journal).where(journal.c.order_ref == order_ref)).first()

    def open_request(
        self, conn: Connection, entry: dict[str, Any], reversal: dict[str, Any]
    ) -> int:
        """Journal a money-moving request and arm its reversal (in the caller's
        transaction, committed before the request is sent). Raises DuplicateOrder when the
        order reference is already taken."""
        now = _now()
        try:
            jid = int(
                conn.execute(
                    journal.insert().values(
                        **entry,
                        status="pending",
                        refunded_minor=0,
                        settled=False,
                        created_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
        except IntegrityError:
            if entry.get("order_ref") is None:
                raise
            raise DuplicateOrder(entry["order_ref"]) from None
        conn.execute(
            reversals.insert().values(
                journal_id=jid,
                status="armed",
                reason=REVERSAL_NO_RESPONSE,
                attempts=0,
                created_at=now,
                updated_at=now,
                **reversal,
            )
        )
        return jid

    def finish(
        self,
        jid: int,
        status: str,
        rc: str,
        message: str,
        *,
        auth_code: str = "",
        rrn: str = "",
        original: Any = None,
        kind: str = "",
        amount_minor: int = 0,
        tc: tuple[str, bytes] | None = None,
    ) -> None:
        """Record a trusted answer and disarm the reversal, in one commit; an approved void
        marks its sale voided, an approved refund adds to its sale's refunded amount."""
        extra: dict[str, Any] = {}
        if tc is not None:  # (TC data as hex TLV, sealed PAN) for the TC advice
            extra = {"tc": tc[0], "tc_state": "pending", "tc_pan_sealed": tc[1]}
        with self.engine.begin() as conn:
            conn.execute(
                update(journal)
                .where(journal.c.id == jid)
                .values(
                    status=status,
                    response_code=rc or None,
                    message=message,
                    auth_code=auth_code or None,
                    rrn=rrn or None,
                    updated_at=_now(),
                    **extra,
                )
            )
            conn.execute(
                update(reversals)
                .where(reversals.c.journal_id == jid)
                .values(status="done", updated_at=_now())
            )
            if status == "approved" and original is not None:
                if kind == "void":
                    conn.execute(
                        update(journal)
                        .where(journal.c.id == original.id)
                        .values(status="voided", updated_at=_now())
                    )
                elif kind == "refund":
                    conn.execute(
                        update(journal)
                        .where(journal.c.id == original.id)
                        .values(
                            refunded_minor=journal.c.refunded_minor + amount_minor,
                            updated_at=_now(),
                        )
                    )

    def store_result(self, jid: int, result: dict[str, Any]) -> None:
        """Keep what the caller was told (masked PAN only), so the same order reference
        gets the same answer without a second request."""
        with self.engine.begin() as conn:
            conn.execute(
                update(journal).where(journal.c.id == jid).values(result=json.dumps(result))
            )

    @staticmethod
    def stored_result(row: Any) -> dict[str, Any] | None:
        return None if row.result is None else dict(json.loads(row.result))

    def status(self, jid: int) -> str:
        with self.engine.connect() as conn:
            return str(conn.execute(select(journal.c.status).where(journal.c.id == jid)).scalar())

    # -- reversals ---------------------------------------------------------------------------

    def make_pending(self, jid: int, reason: str, error: str) -> None:
        """No trusted answer: the request may have reached the host; reverse it."""
        with self.engine.begin() as conn:
            conn.execute(
                update(journal)
                .where(journal.c.id == jid)
                .values(status="reversal_pending", message=error, updated_at=_now())
            )
            conn.execute(
                update(reversals)
                .where(reversals.c.journal_id == jid)
                .values(status="pending", reason=reason, last_error=error, updated_at=_now())
            )

    def recover(self) -> int:
        """After a crash: every request still armed may have reached the host. Make its
        reversal pending. Returns how many."""
        with self.engine.begin() as conn:
            armed = (
                conn.execute(select(reversals.c.journal_id).where(reversals.c.status == "armed"))
                .scalars()
                .all()
            )
            for jid in armed:
                conn.execute(
                    update(reversals)
                    .where(reversals.c.journal_id == jid)
                    .values(status="pending", reason=REVERSAL_NO_RESPONSE, updated_at=_now())
                )
                conn.execute(
                    update(journal)
                    .where(journal.c.id == jid)
                    .values(
                        status="reversal_pending",
                        message="interrupted; reversal pending",
                        updated_at=_now(),
                    )
                )
        return len(armed)

    def pending_reversals(self) -> Sequence[Any]:
        """Pending reversals with their journal rows, oldest first."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(reversals, journal)
                .join(journal, journal.c.id == reversals.c.journal_id)
                .where(reversals.c.status == "pending")
                .order_by(reversals.c.id)
            ).all()

    def count_attempt(self, journal_id: int) -> int:
        """Count one more attempt at a reversal; returns how many were made before."""
        with self.engine.begin() as conn:
            attempts = int(
                conn.execute(
                    select(reversals.c.attempts).where(reversals.c.journal_id == journal_id)
                ).scalar_one()
            )
            conn.execute(
                update(reversals)
                .where(reversals.c.journal_id == journal_id)
                .values(attempts=attempts + 1, updated_at=_now())
            )
        return attempts

    def note_reversal_error(self, journal_id: int, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(reversals)
                .where(reversals.c.journal_id == journal_id)
                .values(last_error=error)
            )

    def reversed(self, journal_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(reversals)
                .where(reversals.c.journal_id == journal_id)
                .values(status="done", updated_at=_now())
            )
            conn.execute(
                update(journal)
                .where(journal.c.id == journal_id)
                .values(status="reversed", updated_at=_now())
            )

    # -- simulated chip counters of earlier versions ------------------------------------------

    def chip_counters(self) -> dict[str, int]:
        """The simulated cards' counters an earlier version kept here, by PAN token."""
        with self.engine.connect() as conn:
            return {r.pan_token: int(r.atc) for r in conn.execute(select(chip_counters))}

    def forget_chip_counters(self, carried: dict[str, int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(chip_counters.delete().where(chip_counters.c.pan_token.in_(carried)))

    # -- batches -----------------------------------------------------------------------------

    @staticmethod
    def totals(conn: Connection, batch_no: str) -> SettlementTotals:
        rows = conn.execute(
            select(journal.c.brand, journal.c.kind, journal.c.amount_minor).where(
                _settleable(batch_no)
            )
        )
        return SettlementTotals.of(
            (row.brand == "unionpay", row.kind == "refund", row.amount_minor) for row in rows
        )

    def settleable(self, batch_no: str) -> Sequence[Any]:
        """The batch's approved sales and refunds (what a batch upload sends)."""
        with self.engine.connect() as conn:
            return conn.execute(select(journal).where(_settleable(batch_no))).all()

    def tc_pending(self, batch_no: str) -> Sequence[Any]:
        with self.engine.connect() as conn:
            return conn.execute(
                select(journal).where(
                    and_(
                        journal.c.batch_no == batch_no,
                        journal.c.tc_state == "pending",
                        journal.c.status == "approved",
                    )
                )
            ).all()

    def tc_answered(self, jid: int, state: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(journal)
                .where(journal.c.id == jid)
                .values(tc_state=state, tc_pan_sealed=None, updated_at=_now())
            )

    def close_batch(
        self,
        batch_no: str,
        label: str,
        ours: SettlementTotals,
        host_totals: str | None,
        uploaded: int,
    ) -> None:
        """Mark the batch settled, record how, and open the next one — in one commit."""
        with self.engine.begin() as conn:
            conn.execute(
                update(journal)
                .where(journal.c.batch_no == batch_no)
                .values(settled=True, tc_pan_sealed=None)  # no PAN kept past the batch
            )
            conn.execute(  # TCs not delivered by now (voided sales, a link down) are dropped
                update(journal)
                .where(and_(journal.c.batch_no == batch_no, journal.c.tc_state == "pending"))
                .values(tc_state="dropped")
            )
            conn.execute(
                settlements.insert().values(
                    batch_no=batch_no,
                    result=label,
                    totals=ours.encode(),
                    host_totals=host_totals,
                    uploaded=uploaded,
                    created_at=_now(),
                )
            )
            cfg = self.config(conn)
            if f"{cfg.batch_no:06d}" == batch_no:
                conn.execute(
                    update(terminal_config)
                    .where(terminal_config.c.id == 1)
                    .values(batch_no=cfg.batch_no % STAN_MAX + 1)
                )
