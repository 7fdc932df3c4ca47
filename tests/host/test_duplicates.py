"""Retransmissions at the host: only a true resend of the same request gets the stored
answer; another request under a used identity (a reused trace number) is 94 and moves no
money; a reversal undoes only the request it is the reversal of (protocol.md §9)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from smartpos.host.ledger import available, check
from smartpos.host.tables import cards
from smartpos.protocol import codec
from smartpos.terminal.engine import Terminal
from tests.host.test_bad_input import GOOD, frame, purchase_fields, send_raw, transfer_count
from tests.sandbox import TID, Sandbox, running_sandbox

pytestmark = pytest.mark.integration


def good_balance(sb: Sandbox) -> int:
    with sb.host.engine.connect() as conn:
        acct = conn.execute(
            select(cards.c.account_id).where(cards.c.token == sb.host.tokenizer.token(GOOD.pan))
        ).scalar_one()
        return available(conn, acct)


async def ask(sb: Sandbox, t: Terminal, fields: dict[str, Any]) -> dict[str, str]:
    resp = await send_raw(sb, frame(sb, codec.encode(fields, mac=t._mac)))
    assert resp is not None
    return codec.decode(resp)


@contextlib.asynccontextmanager
async def signed_on(tmp_path: Path, *more: str) -> AsyncIterator[tuple[Sandbox, list[Terminal]]]:
    """A sandbox host without TLS and its signed-on terminals — 10000001, then the TIDs in
    ``more`` — for requests the test builds field by field; their links closed after."""
    async with running_sandbox(tmp_path, tls=False) as sb:
        terminals = [sb.terminal(tid, profile=sb.profile) for tid in (TID, *more)]
        for t in terminals:
            await t.sign_on()
        try:
            yield sb, terminals
        finally:
            for t in terminals:
                await t.link.close()


def keyed_purchase(t: Terminal, amount: int, stan: str, time: str) -> dict[str, Any]:
    return {
        **purchase_fields(t, amount, None, entry="011"),
        "11": stan,
        "12": time,
        "13": "1123",
    }


def reversal_of(req: dict[str, Any]) -> dict[str, Any]:
    """The terminal's reversal of ``req``: its trace, date and time, amount, entry mode."""
    keep = ("3", "4", "11", "12", "13", "22", "25", "41", "42", "49", "60")
    return {"t": "0400", **{k: req[k] for k in keep}, "39": "98"}


def test_a_reused_trace_is_not_a_retransmission(tmp_path: Path) -> None:
    """The phantom approval after a demo restart: a different sale under a trace number the
    host already holds got the earlier sale's stored answer (its RRN and auth code) and no
    money moved. Now only an exact resend is answered from the store."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            first = keyed_purchase(t, 1234, "000002", "101010")
            before = good_balance(sb)
            approved = await ask(sb, t, first)
            assert approved["39"] == "00"
            assert good_balance(sb) == before - 1234
            moved = transfer_count(sb)

            # The same sale again, byte for byte: the stored answer, nothing posted twice.
            resend = await ask(sb, t, first)
            assert (resend["39"], resend["37"], resend["38"]) == (
                "00",
                approved["37"],
                approved["38"],
            )
            # Another sale at another time under the same trace and date: not a resend.
            later = await ask(sb, t, {**first, "12": "113000"})
            assert later["39"] == "94" and later.get("38") is None
            # The same at the same second with a PIN block under new keys (a sign-on since).
            await t.sign_on()
            other_pin = {**first, "52": purchase_fields(t, 1234, None, entry="011")["52"]}
            assert other_pin["52"] != first["52"]
            assert (await ask(sb, t, other_pin))["39"] == "94"
            assert transfer_count(sb) == moved
            assert good_balance(sb) == before - 1234

    asyncio.run(go())


def test_a_reversal_undoes_only_its_own_request(tmp_path: Path) -> None:
    """A reversal names its original by trace and date; if the host holds another request
    under them (a trace reused after a reset), the reversal is not about that one: it is
    acknowledged (the terminal's own request never posted) and the other sale keeps its
    money."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            sale = keyed_purchase(t, 5000, "000010", "090000")
            before = good_balance(sb)
            assert (await ask(sb, t, sale))["39"] == "00"
            # A reversal of a different request that reused the trace (other time, other
            # amount): the host holds no such request (25), keeps the sale's hold and
            # remembers nothing of it.
            for other in (
                {**sale, "12": "170000"},
                {**sale, "4": "000000000700"},
                {**sale, "3": "200000"},
                {**sale, "49": "840"},
                {**sale, "60": "22000002000"},  # another batch
                {**sale, "60": "23000001000"},  # another transaction type
            ):
                assert (await ask(sb, t, reversal_of(other)))["39"] == "25"
                assert good_balance(sb) == before - 5000
            # The sale's own reversal releases the hold, once; its repeat is a resend.
            own = reversal_of(sale)
            assert (await ask(sb, t, own))["39"] == "00"
            assert good_balance(sb) == before
            moved = transfer_count(sb)
            assert (await ask(sb, t, {**own, "t": "0401"}))["39"] == "00"
            # Another reversal under that trace now: a different request, 94, no effect.
            assert (await ask(sb, t, reversal_of({**sale, "12": "170000"})))["39"] == "94"
            assert (good_balance(sb), transfer_count(sb)) == (before, moved)
            with sb.host.engine.connect() as conn:
                assert check(conn).balanced

    asyncio.run(go())


def test_a_reversal_before_its_original_blocks_it(tmp_path: Path) -> None:
    """The reversal of a request the host never received arrives first (the request was
    delayed on the link): acknowledged and remembered, so the late request is declined (12)
    and never holds money."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            sale = keyed_purchase(t, 4200, "000020", "120000")
            before, moved = good_balance(sb), transfer_count(sb)
            assert (await ask(sb, t, reversal_of(sale)))["39"] == "00"
            late = await ask(sb, t, sale)
            assert late["39"] == "12" and late.get("38") is None
            assert (await ask(sb, t, {**reversal_of(sale), "t": "0401"}))["39"] == "00"
            assert (good_balance(sb), transfer_count(sb)) == (before, moved)

    asyncio.run(go())


@pytest.mark.parametrize("missing", ["3", "4", "60"])
def test_a_reversal_without_what_names_its_original_is_a_format_error(
    tmp_path: Path, missing: str
) -> None:
    """Without its processing code, amount or field 60 a reversal cannot be matched to
    the request under its trace: 30, the sale keeps its money, nothing is remembered (the
    complete reversal still works)."""

    async def go() -> None:
        async with signed_on(tmp_path) as (sb, [t]):
            sale = keyed_purchase(t, 5000, "000010", "090000")
            before = good_balance(sb)
            assert (await ask(sb, t, sale))["39"] == "00"
            partial = reversal_of(sale)
            del partial[missing]
            assert (await ask(sb, t, partial))["39"] == "30"
            assert good_balance(sb) == before - 5000
            assert (await ask(sb, t, reversal_of(sale)))["39"] == "00"
            assert good_balance(sb) == before

    asyncio.run(go())
