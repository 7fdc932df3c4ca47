"""Store and forward of reversals: every pending reversal is sent (0400, repeats 0401) with
exponential back-off, before anything new, until the host acknowledges it. There is no
give-up: a reversal stays pending until the host says it holds nothing of ours to undo.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from smartpos.protocol.codec import Fields, MessageError
from smartpos.protocol.messages import F60
from smartpos.terminal.link import LinkError

if TYPE_CHECKING:
    from smartpos.terminal.engine import Terminal

__all__ = ["flush_reversals"]

# Answers to a reversal saying the host holds no request of ours under its trace (25: another
# request holds it; 94: another reversal does): nothing of ours was posted (protocol.md §9.3).
_NOT_HELD = ("25", "94")


async def flush_reversals(t: Terminal) -> int:
    """Send every pending reversal, at most ``reversal_attempts_max`` tries each per call.
    Returns how many are still pending."""
    left = 0
    for row in t.journal.pending_reversals():
        if not await _send_reversal(t, row):
            left += 1
    return left


def reversal_request(t: Terminal, row: Any, mti: str) -> Fields:
    """The reversal of journal ``row``: the original's trace, date and time name it."""
    req: Fields = {
        "t": mti,
        "3": row.proc_code,
        "4": f"{row.amount_minor:012d}",
        "11": row.stan,
        "13": row.date_mmdd,
        "22": row.entry_mode,
        "25": "00",
        "39": row.reason,
        "41": t.tid,
        "42": t.mid,
        "49": t.ccy(),
        "60": F60(row.type_code, row.batch_no).encode(),
    }
    if row.local_time:  # the original's time: names the request being reversed
        req["12"] = row.local_time
    return req


async def _send_reversal(t: Terminal, row: Any) -> bool:
    delay_ms = t.profile.reversal_backoff_ms
    for _ in range(t.profile.reversal_attempts_max):
        attempts = t.journal.count_attempt(row.journal_id)
        req = reversal_request(t, row, "0400" if attempts == 0 else "0401")
        try:
            resp = await t.ask(req, maced=True)
        except (LinkError, MessageError) as exc:
            t.journal.note_reversal_error(row.journal_id, str(exc))
            await asyncio.sleep(delay_ms / 1000)
            delay_ms *= 2
            continue
        rc = resp.get("39", "")
        if rc == "00":
            t.journal.reversed(row.journal_id)
            return True
        if rc in _NOT_HELD and (not t.profile.mac_required or "64" in resp):
            # The host holds another request under this trace (ours reused it after a
            # reset): ours was answered 94 or 12 and never posted, so nothing is left to
            # undo. Only a MACed answer may say so.
            t.journal.reversed(row.journal_id)
            return True
        t.journal.note_reversal_error(row.journal_id, f"host answered {resp.get('39')}")
        await asyncio.sleep(delay_ms / 1000)
        delay_ms *= 2
    return False
