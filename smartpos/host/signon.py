"""Sign-on (0800, protocol.md §7.2, §8.2): new working keys under the terminal's TMK, and
where the host has the terminal (its latest trace and batch) so it can catch up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from smartpos.host.context import Context
from smartpos.host.steps import Steps
from smartpos.host.tables import batches, requests, terminals
from smartpos.protocol.messages import (
    COUNTER_MODULUS,
    F60,
    F61,
    NET_SIGN_ON,
    TYPE_NETWORK,
    trace_after,
)


class SignOnSteps(Steps):
    def _sign_on(self, conn: Connection, ctx: Context) -> None:
        """New working keys for the terminal — unless this sign-on is not newer than the last
        one accepted: the same trace again (a resend) gets the current keys once more, an
        older trace is a replayed capture and is refused (94), so nobody can make the host
        rotate a terminal's keys by replaying its old sign-ons.

        Every answer tells the terminal where the host has it (protocol.md §8.2): 60.2 the
        batch it should be on, 61 the last trace the host holds from it — so a terminal
        whose counters went back (a restored database) moves them forward instead of
        colliding with its own earlier requests."""
        tid = ctx.terminal.tid
        stan = ctx.fields.get("11", "")
        row = conn.execute(select(terminals).where(terminals.c.tid == tid)).one()
        last = row.signon_stan
        self._tell_position(conn, ctx, last)
        if last is not None and not trace_after(stan, last):  # not newer than the last
            has_keys = row.sealed_tpk and row.sealed_tak
            if stan != last or (self.keys_at_signon and not has_keys):
                ctx.response_code = "94"
                return
            if self.keys_at_signon:  # a resend: the current keys once more
                f62 = self.hsm.rewrap_working_keys(
                    tid, row.sealed_tmk, row.sealed_tpk, row.sealed_tak
                )
                ctx.response["62"] = f62.hex().upper()
            ctx.response_code = "00"
            return
        values: dict[str, Any] = {"signed_on_at": datetime.now(UTC), "signon_stan": stan}
        # Keys loaded at provisioning (or none): a sign-on hands out nothing, rotates nothing.
        if self.keys_at_signon:
            sealed_tpk, sealed_tak, f62 = self.hsm.new_working_keys(tid, ctx.terminal.sealed_tmk)
            values.update(sealed_tpk=sealed_tpk, sealed_tak=sealed_tak)
            ctx.new_keys = (sealed_tpk, sealed_tak)
            ctx.response["62"] = f62.hex().upper()
        conn.execute(update(terminals).where(terminals.c.tid == tid).values(**values))
        ctx.response_code = "00"

    def _tell_position(self, conn: Connection, ctx: Context, signon_stan: str | None) -> None:
        """60.2: the terminal's open batch at the host, or the one after its last settled
        batch; 61: that batch, the latest trace the host has seen from the terminal (its
        requests and its last accepted sign-on) and that trace's date."""
        tid = ctx.terminal.tid
        latest = conn.execute(
            select(requests.c.stan, requests.c.date_mmdd, requests.c.batch_no)
            .where(requests.c.tid == tid)
            .order_by(requests.c.id.desc())
            .limit(1)
        ).first()
        settled = conn.execute(
            select(func.max(batches.c.batch_no)).where(
                and_(batches.c.tid == tid, batches.c.status == "settled")
            )
        ).scalar()
        batch_no = latest.batch_no if latest is not None else "000001"
        if settled is not None and not trace_after(batch_no, settled):
            batch_no = f"{int(settled) % COUNTER_MODULUS + 1:06d}"
        trace, mmdd = (latest.stan, latest.date_mmdd) if latest is not None else ("000000", "0000")
        if signon_stan is not None and (latest is None or trace_after(signon_stan, trace)):
            trace, mmdd = signon_stan, "0000"
        ctx.response["60"] = F60(TYPE_NETWORK, batch_no, NET_SIGN_ON).encode()
        ctx.response["61"] = F61(batch_no, trace, mmdd).encode()
