"""One request is all or nothing, even inside a batch: a request that fails after it has
already written to the ledger leaves no trace, and the requests batched with it keep their
answers and postings — on SQLite and on PostgreSQL, where writes are held back and sent in
one pipeline with the savepoint's release (so a failing write surfaces only there)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from smartpos.bench.host import SimTerminal, prepare_host
from smartpos.config import Settings
from smartpos.db.raw import Raw
from smartpos.host import ledger, processor
from smartpos.host.ledger import check
from smartpos.host.pipeline import HostService
from smartpos.host.sandbox import open_host
from smartpos.host.tables import requests, transfers
from smartpos.protocol import codec
from smartpos.protocol.codec import MessageError
from smartpos.protocol.profiles import get_profile
from tests.pg import fresh_database

PROFILE = get_profile("sandbox")
POISON_MINOR = 777


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with fresh_database("smartpos_atomic") as url:
        yield url


def _fail_after_hold(monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    real_hold = ledger.hold

    def hold_then_fail(conn: Any, transfer_id: str, *args: Any, **kw: Any) -> Any:
        done = real_hold(conn, transfer_id, *args, **kw)
        if args[2] == POISON_MINOR:  # (debit, credit, amount, code)
            raise failure
        return done

    monkeypatch.setattr(ledger, "hold", hold_then_fail)


def _fail_in_a_held_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """The poison request's own record reuses an existing row id: its INSERT fails in the
    database (on PostgreSQL only when the held writes go out, at the release)."""
    real_persist = processor.Processor._persist

    def persist(self: processor.Processor, conn: Any, ctx: Any) -> None:
        if ctx.fields.get("4") == f"{POISON_MINOR:012d}":
            self._next_id = 1  # the first sign-on's request row
        real_persist(self, conn, ctx)

    monkeypatch.setattr(processor.Processor, "_persist", persist)


@pytest.mark.parametrize(
    ("failure", "expected_code"),
    [
        (RuntimeError("disk on fire"), "96"),
        (MessageError("late format check", "4"), "30"),
        ("held write", "96"),
    ],
)
def test_a_request_failing_after_its_hold_is_undone_alone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str | None,
    failure: Exception | str,
    expected_code: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home = tmp_path / "home"
    setups = prepare_host(home, 3, db_url)
    if isinstance(failure, Exception):
        _fail_after_hold(monkeypatch, failure)
    else:
        _fail_in_a_held_write(monkeypatch)

    async def go() -> None:
        rt = open_host(Settings(home=home, host_db_url=db_url), durable=False)
        service = HostService(rt.engine, rt.processor(), rt.hsm, PROFILE)
        service.start()
        sims = [
            SimTerminal(s.tid, s.mid, s.pan, s.tmk, PROFILE, amount, False)
            for s, amount in zip(setups, (100, POISON_MINOR, 300), strict=True)
        ]

        for sim in sims:
            sim.attach(service)
            await sim.sign_on()
        built = [sim.build_purchase() for sim in sims]
        batches = service.stats.batches
        answers = await asyncio.gather(
            *(sim.through(service, msg) for sim, (_, msg) in zip(sims, built, strict=True))
        )
        assert service.stats.batches == batches + 1  # all three decided in one transaction
        codes = [codec.decode(a)["39"] for a in answers]
        assert codes == ["00", expected_code, "00"]
        # Undone on its own, inside the batch: not by the batch's one-by-one fallback.
        assert "processing one by one" not in caplog.text
        await service.stop()

        with rt.engine.connect() as conn:
            report = check(conn)
            holds = conn.execute(
                select(transfers.c.amount_minor).where(transfers.c.code == "purchase")
            ).scalars()
            recorded = conn.execute(
                select(func.count()).select_from(requests).where(requests.c.kind == "purchase")
            ).scalar_one()
            assert report.balanced, report.problems
            assert sorted(holds) == [100, 300]  # the failed request's hold is gone
            assert recorded == 2
        rt.engine.dispose()

    asyncio.run(go())


def test_a_request_the_database_cannot_take_is_answered_96_so_the_terminal_can_match_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When even the request's own transaction fails (here: its savepoint), the answer is
    96 and nothing is posted — and it echoes 11 and 41 like every answer, so the terminal
    trusts the decline instead of reversing a request that never took effect."""
    home = tmp_path / "home"
    (setup,) = prepare_host(home, 1)

    async def go() -> None:
        rt = open_host(Settings(home=home), durable=False)
        service = HostService(rt.engine, rt.processor(), rt.hsm, PROFILE)
        service.start()
        sim = SimTerminal(setup.tid, setup.mid, setup.pan, setup.tmk, PROFILE, 100, False)
        sim.attach(service)
        await sim.sign_on()

        def broken(self: Raw) -> None:
            raise RuntimeError("database gone")

        monkeypatch.setattr(Raw, "savepoint", broken)
        stan, message = sim.build_purchase()
        answer = await sim.through(service, message)
        assert sim.check_answer(stan, answer) == "96"  # matched and MAC-checked
        assert "processing one by one" in caplog.text
        await service.stop()
        with rt.engine.connect() as conn:
            kinds = conn.execute(select(requests.c.kind)).scalars().all()
            assert "purchase" not in kinds
        rt.engine.dispose()

    asyncio.run(go())
