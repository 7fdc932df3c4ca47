"""A real host process, SIGKILLed at random moments while the terminal is mid-sale.

The host runs as ``smartpos host serve --no-tls`` in a subprocess on a durable SQLite
database (and once on PostgreSQL). Each cycle starts a sale (swiped or chip; or a void /
refund), kills the host a random few milliseconds later — before, during or right after
its commit — restarts it, and lets the terminal recover and flush its reversals. At the end
the same invariants as the randomized proxy runs must hold (see
``test_fault_injection.assert_money_adds_up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from smartpos.cards.reading import CardInput
from smartpos.config import Settings
from smartpos.host.sandbox import ensure_merchant, open_host, provision_terminal, seed_test_cards
from smartpos.protocol.profiles import get_profile
from smartpos.terminal.engine import Terminal, TerminalError
from smartpos.terminal.link import HostLink
from smartpos.terminal.setup import open_terminal_db, provision
from smartpos.terminal.tables import journal
from tests.faults.test_fault_injection import BASE_SEED, GOOD, assert_money_adds_up
from tests.pg import fresh_database
from tests.sandbox import MID, TID

pytestmark = [pytest.mark.faults, pytest.mark.integration]

CYCLES = int(os.environ.get("SMARTPOS_CRASH_CYCLES", "15"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HostProcess:
    """``smartpos host serve`` in its own session; ``kill`` SIGKILLs the whole session at
    once — the writer and, with ``workers``, its front-end processes: a machine crash."""

    def __init__(self, home: Path, port: int, workers: int = 0, db_url: str | None = None) -> None:
        self.home, self.port, self.workers, self.db_url = home, port, workers, db_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = open(home / "host-process.log", "ab")  # noqa: SIM115

    def start(self) -> None:
        env = {**os.environ, "SMARTPOS_HOME": str(self.home)}
        env.pop("SMARTPOS_HOST_DB_URL", None)
        if self.db_url:
            env["SMARTPOS_HOST_DB_URL"] = self.db_url
        self.log.flush()
        log_path = Path(self.log.name)
        offset = log_path.stat().st_size
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from smartpos.cli import app; app()",
                "host",
                "serve",
                "--no-tls",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # Ready means the host said so ("host listening", printed once its front-ends, if
        # any, are linked to the writer) — an open port alone is not: with front-end
        # processes the writer listens before they can answer, and on a loaded machine a
        # terminal's 1 s timeouts would run out on the backlog.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "host process exited at start"
            with log_path.open("rb") as log:
                log.seek(offset)
                if b"host listening" in log.read():
                    return
            time.sleep(0.05)
        raise AssertionError("host process was not ready in 60 s")

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self._wait_port_free()
        self.proc = None

    def _wait_port_free(self) -> None:
        # Front-ends die with the session; wait until none still holds the listening socket.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                # SO_REUSEADDR, as the host sets it: connections in TIME_WAIT do not count,
                # only a socket still listening.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", self.port))
                    return
                except OSError:
                    time.sleep(0.02)

    def close(self) -> None:
        self.kill()
        self.log.close()


@pytest.fixture
def host_db(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with fresh_database("smartpos_crash") as url:
        yield url


@pytest.mark.parametrize(
    ("workers", "host_db"),
    [
        (0, "sqlite"),
        (2, "sqlite"),
        pytest.param(0, "postgres", marks=pytest.mark.postgres),
    ],
    ids=["one-process", "writer+2-front-ends", "one-process-postgres"],
    indirect=["host_db"],
)
def test_host_sigkilled_mid_transaction(tmp_path: Path, workers: int, host_db: str | None) -> None:
    seed = BASE_SEED + workers + (7 if host_db else 0)
    rng = random.Random(seed)
    where = "postgres" if host_db else "sqlite"
    print(f"fault seed={seed} crash cycles={CYCLES} workers={workers} db={where}")
    settings = Settings(home=tmp_path, host_db_url=host_db)
    rt = open_host(settings, durable=True)
    seed_test_cards(rt)
    ensure_merchant(rt, MID, "测试商户")
    prov = provision_terminal(rt, TID, MID)
    profile = replace(
        get_profile("sandbox-plain"),
        response_timeout_ms=1500,
        reversal_backoff_ms=20,
        reversal_attempts_max=3,
        connect_timeout_ms=1000,
    )
    port = _free_port()
    thome = tmp_path / "terminal"
    tset = Settings(home=thome, terminal_db_url=f"sqlite:///{thome / 'terminal.db'}")
    trt = open_terminal_db(tset, durable=True)
    provision(
        trt,
        tid=TID,
        mid=MID,
        merchant_name="测试商户",
        tmk=prov.tmk,
        tmk_kcv=prov.tmk_kcv,
        link_host="127.0.0.1",
        link_port=port,
        host_fingerprint=None,
        profile="sandbox-plain",
    )
    host = HostProcess(tmp_path, port, workers, host_db)
    history: list[str] = []

    def terminal() -> Terminal:
        return Terminal(trt.engine, trt.vault, profile, HostLink("127.0.0.1", port, profile, None))

    async def settle_reversals(t: Terminal) -> None:
        t.recover()
        for _ in range(10):
            if await t.flush_reversals() == 0:
                return
        raise AssertionError(f"seed={seed}: reversals stay pending")

    async def op(t: Terminal) -> str:
        with trt.engine.connect() as conn:
            sales = conn.execute(
                select(journal).where(journal.c.kind == "sale", journal.c.status == "approved")
            ).all()
        roll = rng.random()
        if roll < 0.15 and sales:
            orig = rng.choice(sales)
            r = await t.void(stan=orig.stan)
        elif roll < 0.3 and sales:
            orig = rng.choice(sales)
            amount = rng.randint(1, max(1, orig.amount_minor - orig.refunded_minor))
            r = await t.refund(amount, CardInput.parse(GOOD.pan), rrn=orig.rrn)
        else:
            read = CardInput.parse(GOOD.pan, chip=rng.random() < 0.3)  # chip: ATC, ARQC, TC
            r = await t.sale(rng.randint(1, 100_000), read, GOOD.pin)
        return f"{r.kind} stan={r.stan} {r.result} {r.response_code} reversal={r.reversal}"

    async def go() -> None:
        host.start()
        t = terminal()
        assert (await t.sign_on()).result == "approved"
        for cycle in range(CYCLES):
            task = asyncio.ensure_future(op(t))
            delay = rng.uniform(0, 0.06)
            await asyncio.sleep(delay)
            host.kill()
            history.append(f"cycle {cycle}: killed host after {delay * 1000:.0f} ms")
            try:
                history.append("  " + await asyncio.wait_for(task, 30))
            except TerminalError as exc:
                history.append(f"  TerminalError {exc}")
            if rng.random() < 0.3:  # the terminal dies too: a fresh process recovers
                await t.link.close()
                t = terminal()
                history.append("  terminal restarted")
            host.start()
            await settle_reversals(t)
            with contextlib.suppress(TerminalError):  # one clean transaction in between
                history.append("  " + await asyncio.wait_for(op(t), 30))
        await settle_reversals(t)
        ns = SimpleNamespace(host=rt)
        assert_money_adds_up(ns, t, seed, "host crashes, before settling")  # type: ignore[arg-type]
        clean = await t.sale(100, CardInput.parse(GOOD.pan), GOOD.pin)  # not stuck
        assert clean.result == "approved", (seed, clean)
        out = (await t.settle()).to_dict()
        assert out["result"] == "balanced", (seed, out)
        assert_money_adds_up(ns, t, seed, "host crashes, after settling")  # type: ignore[arg-type]
        await t.link.close()

    started = time.monotonic()
    try:
        asyncio.run(go())
    except BaseException:
        print("\n".join(history))
        raise
    finally:
        host.close()
        rt.engine.dispose()
        trt.engine.dispose()
    print(f"fault seed={seed}: {CYCLES} host kills in {time.monotonic() - started:.1f}s")
