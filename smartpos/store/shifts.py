"""Shifts (交班): a cashier's drawer from opening float to counted close, with paid-in and
paid-out, and the shift report.

The report is sums over the payments ledger (``payments``: each sale, void and refund once,
with the shift that took it) and the shift's cash moves; nothing is kept twice. A void is
its own row that cancels its sale, so a voided sale counts once among the sales and once
among the voids, and nets to nothing::

    expected cash = float + cash sales − cash refunds − cash voids + cash in − cash out

A closed shift takes no more sales, voids, refunds or cash moves, so its report never
changes after the close.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from smartpos.money import MAX_AMOUNT_MINOR
from smartpos.store.errors import StoreError, StoreRefusal
from smartpos.store.order_tables import payments, shift_cash_moves, shifts
from smartpos.store.orders import Clock, lock_open_shift, utc

__all__ = ["REASON_MAX_CHARS", "MethodTotals", "Shift", "ShiftReport", "Shifts"]

REASON_MAX_CHARS = 200
METHODS = ("card", "cash", "qr")


@dataclass(frozen=True)
class Shift:
    id: int
    staff_id: int
    status: str  # open | closed
    float_minor: int
    opened_at: datetime
    closed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["opened_at"] = self.opened_at.isoformat()
        out["closed_at"] = self.closed_at.isoformat() if self.closed_at else None
        return out


@dataclass(frozen=True)
class MethodTotals:
    sales_count: int = 0
    sales_minor: int = 0
    refunds_count: int = 0
    refunds_minor: int = 0
    voids_count: int = 0
    voids_minor: int = 0

    @property
    def net_minor(self) -> int:
        """What the method took in this shift: sales less voids and refunds."""
        return self.sales_minor - self.voids_minor - self.refunds_minor

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "net_minor": self.net_minor}


@dataclass(frozen=True)
class ShiftReport:
    shift_id: int
    staff_id: int
    status: str
    opened_at: datetime
    closed_at: datetime | None
    float_minor: int
    by_method: dict[str, MethodTotals]  # card, cash, qr: always all three
    totals: MethodTotals
    cash_in_minor: int
    cash_out_minor: int
    expected_minor: int  # the cash the drawer should hold
    counted_minor: int | None  # None while open
    difference_minor: int | None  # counted − expected (negative: cash missing)
    reason: str | None
    cash_moves: tuple[dict[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "shift_id": self.shift_id,
            "staff_id": self.staff_id,
            "status": self.status,
            "opened_at": self.opened_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "float_minor": self.float_minor,
            "by_method": {m: t.to_dict() for m, t in self.by_method.items()},
            "totals": self.totals.to_dict(),
            "cash_in_minor": self.cash_in_minor,
            "cash_out_minor": self.cash_out_minor,
            "expected_minor": self.expected_minor,
            "counted_minor": self.counted_minor,
            "difference_minor": self.difference_minor,
            "reason": self.reason,
            "cash_moves": list(self.cash_moves),
        }


def _check_amount(amount_minor: int, low: int) -> None:
    if (
        isinstance(amount_minor, bool)
        or not isinstance(amount_minor, int)
        or not low <= amount_minor <= MAX_AMOUNT_MINOR
    ):
        raise StoreError(StoreRefusal.BAD_AMOUNT, amount=amount_minor, high=MAX_AMOUNT_MINOR)


def _reason(reason: str | None, why: str) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise StoreError(StoreRefusal.REASON_REQUIRED, why=why)
    if len(text) > REASON_MAX_CHARS:
        raise StoreError(StoreRefusal.BAD_NOTE, high=REASON_MAX_CHARS)
    return text


def _shift_of(row: Any) -> Shift:
    opened = utc(row.opened_at)
    assert opened is not None
    return Shift(
        id=row.id,
        staff_id=row.staff_id,
        status=row.status,
        float_minor=row.float_minor,
        opened_at=opened,
        closed_at=utc(row.closed_at),
    )


class Shifts:
    """Open, run and close cashiers' shifts; their reports."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        from smartpos.store.orders import Orders

        self.engine = engine
        self._orders = Orders(engine, clock) if clock is not None else Orders(engine)

    def _now(self) -> datetime:
        return self._orders._now()

    def open(self, staff_id: int, float_minor: int) -> Shift:
        """Open ``staff_id``'s shift with ``float_minor`` in the drawer. One open shift per
        cashier: opening again with the same float returns the open shift (a double
        click); with another float it is refused (SHIFT_ALREADY_OPEN) — close it first."""
        _check_amount(float_minor, low=0)
        try:
            with self.engine.begin() as conn:
                found = conn.execute(
                    select(shifts).where(shifts.c.open_staff_id == staff_id)
                ).first()
                if found is None:
                    conn.execute(
                        insert(shifts).values(
                            staff_id=staff_id,
                            open_staff_id=staff_id,
                            status="open",
                            float_minor=float_minor,
                            opened_at=self._now(),
                        )
                    )
        except IntegrityError:
            pass  # the same cashier's shift opened by a concurrent request: that one stands
        shift = self.current(staff_id)
        assert shift is not None
        if shift.float_minor != float_minor:
            raise StoreError(
                StoreRefusal.SHIFT_ALREADY_OPEN, shift_id=shift.id, float_minor=shift.float_minor
            )
        return shift

    def current(self, staff_id: int) -> Shift | None:
        """``staff_id``'s open shift, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(select(shifts).where(shifts.c.open_staff_id == staff_id)).first()
        return None if row is None else _shift_of(row)

    def get(self, shift_id: int) -> Shift:
        """The shift (StoreError NO_SUCH_SHIFT if there is none)."""
        with self.engine.connect() as conn:
            return self._read(conn, shift_id)

    def cash_in(self, shift_id: int, amount_minor: int, reason: str) -> ShiftReport:
        """Record cash put into the open shift's drawer (not a sale), with why."""
        return self._cash_move(shift_id, "in", amount_minor, reason)

    def cash_out(self, shift_id: int, amount_minor: int, reason: str) -> ShiftReport:
        """Record cash taken out of the open shift's drawer (not a refund), with why."""
        return self._cash_move(shift_id, "out", amount_minor, reason)

    def close(self, shift_id: int, counted_minor: int, reason: str | None = None) -> ShiftReport:
        """Close the shift on the cash counted in the drawer: the expected cash, the
        difference (counted − expected) and the reason are recorded. A difference other
        than zero needs a reason; a payment of the shift still waiting for its result
        blocks the close. Closing a closed shift again with the same count returns its
        report; nothing changes on a refusal."""
        _check_amount(counted_minor, low=0)
        now = self._now()
        with self.engine.begin() as conn:
            shift = self._read(conn, shift_id)
            if shift.status == "closed":
                report = self._report(conn, shift_id)
                if report.counted_minor == counted_minor:
                    return report
                raise StoreError(StoreRefusal.SHIFT_CLOSED, shift_id=shift_id)
            lock_open_shift(conn, shift_id)
            pending = conn.execute(
                select(func.count()).where(
                    payments.c.shift_id == shift_id, payments.c.status == "pending"
                )
            ).scalar_one()
            if pending:
                raise StoreError(StoreRefusal.SHIFT_HAS_PENDING, count=pending)
            expected = self._report(conn, shift_id).expected_minor
            difference = counted_minor - expected
            why = None
            if difference != 0:
                why = _reason(reason, f"the count differs from the expected {expected}")
            elif reason is not None and reason.strip():
                why = _reason(reason, "")
            conn.execute(
                update(shifts)
                .where(shifts.c.id == shift_id)
                .values(
                    status="closed",
                    open_staff_id=None,
                    closed_at=now,
                    counted_minor=counted_minor,
                    expected_minor=expected,
                    difference_minor=difference,
                    reason=why,
                )
            )
            return self._report(conn, shift_id)

    def report(self, shift_id: int) -> ShiftReport:
        """The shift's report: per method the count and amount of sales, voids and refunds
        it took; totals; float, cash in and out, expected cash and — once closed — counted
        cash, difference and reason. An open shift's report is as of now."""
        with self.engine.connect() as conn:
            return self._report(conn, shift_id)

    def _read(self, conn: Connection, shift_id: int) -> Shift:
        row = conn.execute(select(shifts).where(shifts.c.id == shift_id)).first()
        if row is None:
            raise StoreError(StoreRefusal.NO_SUCH_SHIFT, shift_id=shift_id)
        return _shift_of(row)

    def _cash_move(
        self, shift_id: int, direction: str, amount_minor: int, reason: str
    ) -> ShiftReport:
        _check_amount(amount_minor, low=1)
        why = _reason(reason, f"cash {direction}")
        with self.engine.begin() as conn:
            lock_open_shift(conn, shift_id)
            conn.execute(
                insert(shift_cash_moves).values(
                    shift_id=shift_id,
                    direction=direction,
                    amount_minor=amount_minor,
                    reason=why,
                    at=self._now(),
                )
            )
            return self._report(conn, shift_id)

    def _report(self, conn: Connection, shift_id: int) -> ShiftReport:
        row = conn.execute(select(shifts).where(shifts.c.id == shift_id)).first()
        if row is None:
            raise StoreError(StoreRefusal.NO_SUCH_SHIFT, shift_id=shift_id)
        sums = conn.execute(
            select(
                payments.c.method,
                payments.c.kind,
                func.count(),
                func.coalesce(func.sum(payments.c.amount_minor), 0),
            )
            .where(payments.c.shift_id == shift_id, payments.c.status == "approved")
            .group_by(payments.c.method, payments.c.kind)
        ).all()
        counts: dict[str, dict[str, int]] = {m: {} for m in METHODS}
        for method, kind, count, amount in sums:
            plural = {"sale": "sales", "void": "voids", "refund": "refunds"}[kind]
            counts.setdefault(method, {})[f"{plural}_count"] = int(count)
            counts[method][f"{plural}_minor"] = int(amount)
        by_method = {m: MethodTotals(**c) for m, c in counts.items()}
        totals = MethodTotals(
            **{
                name: sum(getattr(t, name) for t in by_method.values())
                for name in MethodTotals.__dataclass_fields__
            }
        )
        moves = conn.execute(
            select(shift_cash_moves)
            .where(shift_cash_moves.c.shift_id == shift_id)
            .order_by(shift_cash_moves.c.id)
        ).all()
        cash_in = sum(m.amount_minor for m in moves if m.direction == "in")
        cash_out = sum(m.amount_minor for m in moves if m.direction == "out")
        cash = by_method["cash"]
        expected = (
            row.float_minor
            + cash.sales_minor
            - cash.refunds_minor
            - cash.voids_minor
            + cash_in
            - cash_out
        )
        # A closed shift cannot take anything more, so the stored figure equals the sum.
        assert row.expected_minor in (None, expected), "closed shift changed after its close"
        shift = _shift_of(row)
        return ShiftReport(
            shift_id=shift.id,
            staff_id=shift.staff_id,
            status=shift.status,
            opened_at=shift.opened_at,
            closed_at=shift.closed_at,
            float_minor=shift.float_minor,
            by_method=by_method,
            totals=totals,
            cash_in_minor=cash_in,
            cash_out_minor=cash_out,
            expected_minor=expected,
            counted_minor=row.counted_minor,
            difference_minor=row.difference_minor,
            reason=row.reason,
            cash_moves=tuple(
                {
                    "direction": m.direction,
                    "amount_minor": m.amount_minor,
                    "reason": m.reason,
                    "at": (utc(m.at) or m.at).isoformat(),
                }
                for m in moves
            ),
        )
