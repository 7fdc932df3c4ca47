"""A terminal's counters never go backwards: not when it is provisioned again (what every
`smartpos demo` start used to do), not when its database is restored from a copy. Before,
either reset the trace, invoice and batch numbers and the token key: the next sale got an
earlier sale's stored approval (no money moved), chip sales failed on the card counter, a
refund of an older sale said "not the card", and settled batches were "balanced" again."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select

from smartpos.cards.reading import CardInput
from smartpos.config import Settings
from smartpos.host.ledger import check
from smartpos.host.tables import batches, requests
from smartpos.host.testcards import CATALOGUE
from smartpos.terminal.engine import Terminal
from smartpos.terminal.setup import open_terminal_db
from tests.integration.test_card_flows import balance_of
from tests.sandbox import TID, Sandbox, running_sandbox

pytestmark = pytest.mark.integration

GOOD = CATALOGUE[0]
PIN = "123456"


def terminal_db(sb: Sandbox) -> Path:
    return sb.settings.home / f"terminal-{TID}" / "terminal.db"


def host_settlements(sb: Sandbox, batch_no: str) -> int:
    """How many settlement requests for ``batch_no`` the host approved."""
    with sb.host.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(requests)
                .where(
                    requests.c.kind == "settlement",
                    requests.c.batch_no == batch_no,
                    requests.c.response_code == "00",
                )
            ).scalar_one()
        )


def test_provisioning_again_keeps_every_counter(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            first = await t.sale(1234, CardInput.parse(GOOD.pan), PIN)
            assert first.result == "approved"
            assert (await t.void(stan=first.stan)).result == "approved"
            chip = await t.sale(2000, CardInput.parse(GOOD.pan, chip=True), PIN)
            assert chip.result == "approved", chip
            assert (await t.settle()).result == "balanced"
            kept = await t.sale(3000, CardInput.parse(GOOD.pan), PIN)
            assert kept.result == "approved" and kept.batch_no == "000002"
            await t.link.close()

            # Provisioned again — a demo restart did exactly this — and signed on.
            t2 = sb.terminal()
            assert (await t2.sign_on()).result == "approved"
            before = balance_of(sb, GOOD)
            again = await t2.sale(1234, CardInput.parse(GOOD.pan), PIN)
            assert again.result == "approved", again
            assert again.rrn not in (first.rrn, chip.rrn, kept.rrn)
            assert int(again.stan) > int(kept.stan) and int(again.invoice_no) > int(kept.invoice_no)
            assert again.batch_no == "000002"
            assert balance_of(sb, GOOD) == before - 1234  # money really moved
            # The card's chip counter and the sale's card token survived too.
            chip2 = await t2.sale(2100, CardInput.parse(GOOD.pan, chip=True), PIN)
            assert chip2.result == "approved", chip2
            refund = await t2.refund(500, CardInput.parse(GOOD.pan), rrn=kept.rrn)
            assert refund.result == "approved", refund
            report = await t2.settle()
            assert (report.batch_no, report.result) == ("000002", "balanced")
            assert host_settlements(sb, "000001") == 1
            with sb.host.engine.connect() as conn:
                assert check(conn).balanced
            await t2.link.close()

    asyncio.run(go())


def test_a_restored_terminal_catches_up_at_sign_on(tmp_path: Path) -> None:
    """The terminal's database is put back from an older copy. The host tells the terminal,
    at sign-on, the last trace and the batch it holds from it; the terminal moves its
    counters forward, and its next sale is approved — no 94s until the trace passes the
    day's highest, no 77s for batches the host settled since."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            assert (await t.sale(100, CardInput.parse(GOOD.pan), PIN)).result == "approved"
            copy = tmp_path / "terminal-copy.db"
            with sqlite3.connect(terminal_db(sb)) as src, sqlite3.connect(copy) as dst:
                src.backup(dst)
            for amount in (200, 300, 400):
                assert (await t.sale(amount, CardInput.parse(GOOD.pan), PIN)).result == "approved"
            assert (await t.sign_on()).result == "approved"  # the copy's trace is now behind
            assert (await t.settle()).result == "balanced"
            last = await t.sale(500, CardInput.parse(GOOD.pan), PIN)
            assert last.result == "approved"
            await t.link.close()
            t.engine.dispose()

            # Restore the old copy in place of the terminal's database.
            for suffix in ("", "-wal", "-shm"):
                Path(f"{terminal_db(sb)}{suffix}").unlink(missing_ok=True)
            shutil.copy(copy, terminal_db(sb))
            home = terminal_db(sb).parent
            rt = open_terminal_db(
                Settings(home=home, terminal_db_url=f"sqlite:///{terminal_db(sb)}"), durable=False
            )
            restored = Terminal(rt.engine, rt.vault, t.profile, t.link)
            assert restored.batch_no() == "000001"
            signed = await restored.sign_on()
            assert signed.result == "approved", signed
            assert restored.batch_no() == "000002"
            sale = await restored.sale(600, CardInput.parse(GOOD.pan), PIN)
            assert sale.result == "approved", sale
            assert int(sale.stan) > int(last.stan)
            report = await restored.settle()
            assert report.batch_no == "000002"
            with sb.host.engine.connect() as conn:
                assert check(conn).balanced
                settled = conn.execute(
                    select(batches.c.batch_no).where(batches.c.status == "settled")
                ).scalars()
                assert sorted(settled) == ["000001", "000002"]
            await restored.link.close()

    asyncio.run(go())


def test_a_sale_under_a_used_trace_signs_on_and_catches_up(tmp_path: Path) -> None:
    """Restored, and selling before any sign-on: the first sale reuses a trace the host
    holds and is answered 94 — never the earlier sale's approval. The terminal signs on by
    itself, its counters catch up, and the sale goes through when tried again."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            copy = tmp_path / "terminal-copy.db"
            with sqlite3.connect(terminal_db(sb)) as src, sqlite3.connect(copy) as dst:
                src.backup(dst)
            taken = await t.sale(700, CardInput.parse(GOOD.pan), PIN)
            assert taken.result == "approved"
            await t.link.close()
            t.engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{terminal_db(sb)}{suffix}").unlink(missing_ok=True)
            shutil.copy(copy, terminal_db(sb))
            home = terminal_db(sb).parent
            rt = open_terminal_db(
                Settings(home=home, terminal_db_url=f"sqlite:///{terminal_db(sb)}"), durable=False
            )
            restored = Terminal(rt.engine, rt.vault, t.profile, t.link)
            before = balance_of(sb, GOOD)
            # Another sale (the same card and amount within the same second would be, to any
            # host, a resend of the first: indistinguishable on the wire).
            reused = await restored.sale(701, CardInput.parse(GOOD.pan), PIN)
            assert (reused.result, reused.response_code) == ("declined", "94"), reused
            assert reused.stan == taken.stan and reused.rrn != taken.rrn
            assert "counters caught up with the host" in reused.message
            assert balance_of(sb, GOOD) == before
            again = await restored.sale(701, CardInput.parse(GOOD.pan), PIN)
            assert again.result == "approved", again
            assert balance_of(sb, GOOD) == before - 701
            await restored.link.close()

    asyncio.run(go())
