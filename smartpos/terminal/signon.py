"""Sign-on (0800/0810, protocol.md §8.2): new working keys under the TMK — or, on an
acquirer that delivers none at sign-on, just the host's view of this terminal — and the
counters caught up with where the host has the terminal (never backwards)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from smartpos.keys.keys import KeyCheckError, signon_mac_key, unpack_f62
from smartpos.keys.mac import compute_mac
from smartpos.protocol.codec import Fields, MessageError
from smartpos.protocol.codes import (
    describe,
)
from smartpos.protocol.messages import (
    F60,
    F61,
    NET_SIGN_ON,
    TYPE_NETWORK,
    trace_after,
)
from smartpos.protocol.profiles import KeyDelivery
from smartpos.terminal.journal import Journal
from smartpos.terminal.link import LinkError
from smartpos.terminal.results import Kind, Outcome, TxnResult
from smartpos.terminal.settlement import OPERATOR

if TYPE_CHECKING:
    from smartpos.terminal.engine import Terminal


async def sign_on(t: Terminal, *, _caught_up: bool = False) -> TxnResult:
    """Sign on (0800/0810): new working keys, and the counters caught up with what the
    host holds from this terminal (protocol.md §8.2). A sign-on refused as older than
    the last one accepted (94: the terminal's trace went back) is repeated once from
    the host's latest trace."""
    stan = t.journal.take_stan()
    now = t.clock()
    req = t.base("0800", stan, now)
    req["60"] = F60(TYPE_NETWORK, t.batch_no(), NET_SIGN_ON).encode()
    req["63"] = OPERATOR
    # MACed under the TMK's sign-on variant: proves to the host that this terminal holds
    # the TMK before it hands out new working keys.
    signon_key = signon_mac_key(t._tmk)
    alg = t.profile.mac_algorithm
    message = t.profile.codec.encode(
        req,
        mac=(lambda d: compute_mac(alg, signon_key, d)) if t.profile.mac_required else None,
    )
    try:
        resp = t._check_response(req, await t.link.exchange(message), False)
    except (LinkError, MessageError) as exc:
        return TxnResult(Outcome.ERROR, "", f"sign-on failed: {exc}", Kind.SIGN_ON, stan=stan)
    rc = resp.get("39", "")
    moved, behind = t._catch_up(resp)
    if rc == "94" and moved and not _caught_up:
        return await t.sign_on(_caught_up=True)
    if rc != "00":
        return TxnResult(Outcome.DECLINED, rc, describe(rc).en, Kind.SIGN_ON, stan=stan)
    if "62" not in resp and t.profile.key_delivery != KeyDelivery.SIGNON_F62:
        # This acquirer delivers no keys at sign-on (they were loaded at provisioning,
        # or there are none): the sign-on only tells the host the terminal is there.
        t._catch_up(resp)
        return TxnResult(
            Outcome.APPROVED,
            rc,
            "signed on (no working keys from this acquirer)",
            Kind.SIGN_ON,
            stan=stan,
        )
    if "62" not in resp:
        return TxnResult(
            Outcome.ERROR,
            rc,
            "the host approved the sign-on but sent no keys",
            Kind.SIGN_ON,
            stan=stan,
        )
    try:
        keys = unpack_f62(t._tmk, bytes.fromhex(resp["62"]))
    except (ValueError, KeyCheckError) as exc:
        return TxnResult(Outcome.ERROR, rc, f"sign-on keys refused: {exc}", Kind.SIGN_ON, stan=stan)
    t.journal.store_working_keys(t.vault.seal(keys.tpk, b"tpk"), t.vault.seal(keys.tak, b"tak"))
    t._tpk, t._tak = keys.tpk, keys.tak
    if t.pin_pad is not None:
        t.pin_pad.load_key(keys.tpk)  # the pad's blocks follow the new PIN key
    result = TxnResult(
        Outcome.APPROVED, rc, "signed on: new PIN and MAC keys loaded", Kind.SIGN_ON, stan=stan
    )
    if behind:
        # This terminal's open batch is one the host has closed since (a restored
        # database): close it here too, then move on to the host's batch.
        await t._catch_up_settled_batch(result)
        t._catch_up(resp)
    return result


def catch_up(t: Terminal, resp: Fields) -> tuple[bool, bool]:
    """Move the counters forward to where the host has this terminal (a sign-on answer's
    60.2 and 61): the trace past the latest the host holds, the batch to the host's if
    it is ahead and this terminal's own batch holds nothing. Never backwards. Returns
    (whether anything moved, whether the terminal's own batch is behind the host's and
    holds transactions — a batch the host has closed)."""
    try:
        host = F61.decode(resp["61"]) if "61" in resp else None
        host_batch = F60.decode(resp["60"]).batch_no if "60" in resp else None
    except MessageError:
        return False, False
    moved: dict[str, int] = {}
    behind = False
    with t.engine.connect() as conn:
        cfg = Journal.config(conn)
        if host is not None and trace_after(host.stan, f"{cfg.stan:06d}"):
            moved["stan"] = int(host.stan)
        own_batch = f"{cfg.batch_no:06d}"
        if host_batch is not None and trace_after(host_batch, own_batch):
            if Journal.batch_has_transactions(conn, own_batch):
                behind = True
            else:
                moved["batch_no"] = int(host_batch)
    if moved:
        t.journal.move_counters(**moved)
    return bool(moved), behind


async def sign_on_again(
    t: Terminal, result: TxnResult, what: str = "signed on again with new keys"
) -> None:
    """A0: the host no longer accepts our MAC key (it was rotated, or the host lost it);
    94: the host holds another request under our trace. Nothing was done, so sign on
    now — the next transaction uses the new keys and counters. The declined one is not
    retried: its PIN block is under the old PIN key, and only the cardholder can enter
    the PIN again."""
    signed = await t.sign_on()
    if signed.result == "approved":
        result.message += f"; {what}: try the transaction again"
    else:
        result.message += f"; signing on again failed ({signed.message}): sign on"
