"""The host on several processes (`host serve --workers N`): front-ends in front of one
writer give the answers a single process gives — across front-ends too — and the processes
look after each other (a dead front-end is replaced; front-ends leave with their writer)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from smartpos.bench.host import BenchTerminal, SimTerminal, prepare_host
from smartpos.config import Settings
from smartpos.host import pipeline
from smartpos.host.cluster import Cluster, RemoteWriter, WriterHub
from smartpos.host.ledger import check
from smartpos.host.pipeline import BatchWriter, HostService
from smartpos.host.sandbox import open_host
from smartpos.protocol import codec
from smartpos.protocol.profiles import get_profile
from tests.pg import fresh_database

pytestmark = pytest.mark.integration

PROFILE = get_profile("sandbox")
SMARTPOS = [sys.executable, "-c", "from smartpos.cli import app; app()"]


def test_front_ends_share_one_writer_keys_and_replays(tmp_path: Path) -> None:
    """Two front-ends, one writer, all in this event loop (deterministic): a terminal signs
    on through one front-end and buys through the other; a retry through the other
    front-end gets the original answer and posts nothing twice."""
    home = tmp_path / "home"
    (setup,) = prepare_host(home, 1)

    async def go() -> None:
        rt = open_host(Settings(home=home), durable=False)
        writer = BatchWriter(rt.engine, rt.processor())
        writer.start()
        hub = WriterHub(writer, expected_links=2)
        path = tmp_path / "writer.sock"
        server = await asyncio.start_unix_server(hub.serve_link, path=str(path))
        fronts = []
        for _ in range(2):
            remote = RemoteWriter(path)
            await remote.connect()
            fronts.append(HostService(rt.engine, rt.processor(), rt.hsm, PROFILE, writer=remote))
        a, b = fronts
        sim = SimTerminal(setup.tid, setup.mid, setup.pan, setup.tmk, PROFILE, 100, False)

        sim.attach(a)
        await sim.sign_on()
        # b loaded its terminal keys before that sign-on: it must find the new ones.
        stan, purchase = sim.build_purchase()
        first = await sim.through(b, purchase)
        assert sim.check_answer(stan, first) == "00"
        again = await sim.through(a, purchase)
        assert sim.check_answer(stan, again) == "00"
        f1, f2 = codec.decode(first), codec.decode(again)
        assert (f2["39"], f2["37"], f2["38"]) == (f1["39"], f1["37"], f1["38"])
        # Sign on again through b; a still holds the keys of the first sign-on.
        sim.attach(b)
        await sim.sign_on()
        stan, purchase = sim.build_purchase()
        assert sim.check_answer(stan, await sim.through(a, purchase)) == "00"
        for service in fronts:
            await service.writer.stop()
        server.close()
        await writer.stop()
        with rt.engine.connect() as conn:
            report = check(conn)
            holds = conn.execute(
                text("SELECT COUNT(*), SUM(amount_minor) FROM transfers WHERE code = 'purchase'")
            ).one()
        assert report.balanced, report.problems
        assert tuple(holds) == (2, 200)  # two purchases, the retry posted nothing
        rt.engine.dispose()

    asyncio.run(go())


async def _signed_on(cluster: Cluster, setups: list[BenchTerminal]) -> list[SimTerminal]:
    """A simulated terminal per set-up, each signed on through the cluster (no TLS)."""
    prof = replace(PROFILE, tls=False)
    sims = [SimTerminal(s.tid, s.mid, s.pan, s.tmk, prof, 100, False) for s in setups]
    for sim in sims:
        await sim.connect("127.0.0.1", cluster.port, None)
        await sim.sign_on()
        await sim.close()
    return sims


async def _purchases(port: int, sims: list[SimTerminal], count: int) -> list[str]:
    codes = []
    for _ in range(count):
        for sim in sims:
            await sim.connect("127.0.0.1", port, None)
            try:
                codes.append(await sim.purchase())
            finally:
                await sim.close()
    return codes


def test_a_killed_front_end_is_replaced_and_money_adds_up(tmp_path: Path) -> None:
    home = tmp_path / "home"
    setups = prepare_host(home, 3)

    async def go() -> None:
        cluster = Cluster(Settings(home=home), workers=2, tls=False, profile="sandbox")
        await cluster.start("127.0.0.1", 0)
        try:
            sims = await _signed_on(cluster, setups)
            assert set(await _purchases(cluster.port, sims, 4)) == {"00"}
            before = cluster.frontend_pids
            assert len(before) == 2
            os.kill(before[0], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now = cluster.frontend_pids
                if len(now) == 2 and before[0] not in now:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"front-end not replaced: {cluster.frontend_pids}")
            await asyncio.wait_for(_wait_linked(cluster), 30)
            assert set(await _purchases(cluster.port, sims, 4)) == {"00"}
        finally:
            pids = cluster.frontend_pids
            await cluster.close()
        for pid in pids:
            assert not _alive(pid), f"front-end {pid} outlived the cluster"

    asyncio.run(go())
    rt = open_host(Settings(home=home), durable=False)
    with rt.engine.connect() as conn:
        report = check(conn)
    rt.engine.dispose()
    assert report.balanced, report.problems
    assert not report.problems


async def _wait_linked(cluster: Cluster) -> None:
    while cluster.hub.links < cluster.workers:
        await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state in /proc says it is gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in out.stdout.split()]


def test_front_ends_leave_when_the_writer_dies(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prepare_host(home, 1)
    env = {**os.environ, "SMARTPOS_HOME": str(home)}
    writer = subprocess.Popen(
        [*SMARTPOS, "host", "serve", "--port", str(_free_port()), "--workers", "2", "--no-tls"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert writer.stdout is not None
        line = writer.stdout.readline()
        assert "2 front-end processes" in line, line
        fronts = _children(writer.pid)
        assert len(fronts) == 2
        writer.kill()
        writer.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p) for p in fronts):
            time.sleep(0.1)
        assert not any(_alive(p) for p in fronts), "front-ends outlived their writer"
    finally:
        if writer.poll() is None:
            writer.kill()


def test_a_front_end_that_cannot_start_fails_the_start_fast(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prepare_host(home, 1)

    async def go() -> None:
        cluster = Cluster(Settings(home=home), workers=1, tls=False, profile="no-such-profile")
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="did not start"):
            await cluster.start("127.0.0.1", 0)
        assert time.monotonic() - started < 30
        assert not (home / "host" / "writer.sock").exists()

    asyncio.run(go())


@pytest.mark.postgres
def test_front_ends_and_writer_on_postgres(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with fresh_database() as url:
        settings = Settings(home=home, host_db_url=url)
        setups = prepare_host(home, 3, host_db_url=url)

        async def go() -> None:
            cluster = Cluster(settings, workers=2, tls=False, profile="sandbox")
            await cluster.start("127.0.0.1", 0)
            try:
                assert cluster.rt.engine.dialect.name == "postgresql"
                sims = await _signed_on(cluster, setups)
                assert set(await _purchases(cluster.port, sims, 5)) == {"00"}
            finally:
                await cluster.close()

        asyncio.run(go())
        rt = open_host(settings, durable=False)
        with rt.engine.connect() as conn:
            report = check(conn)
            holds = conn.execute(
                text("SELECT COUNT(*) FROM transfers WHERE code = 'purchase'")
            ).scalar_one()
        rt.engine.dispose()
    assert report.balanced, report.problems
    assert holds == 15


def test_bad_macs_cost_at_most_one_key_reload_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-reading keys on a MAC failure is for front-ends only, and rate-limited: a stream
    of forged MACs must not turn every request into a database read."""
    home = tmp_path / "home"
    (setup,) = prepare_host(home, 1)
    reads: list[str] = []
    real = pipeline.load_terminal

    def counting(engine: object, tid: str) -> object:
        reads.append(tid)
        return real(engine, tid)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "load_terminal", counting)

    async def go() -> None:
        rt = open_host(Settings(home=home), durable=False)
        writer = BatchWriter(rt.engine, rt.processor())
        writer.start()
        path = tmp_path / "writer.sock"
        server = await asyncio.start_unix_server(WriterHub(writer).serve_link, path=str(path))
        remote = RemoteWriter(path)
        await remote.connect()
        front = HostService(rt.engine, rt.processor(), rt.hsm, PROFILE, writer=remote)
        single = HostService(rt.engine, rt.processor(), rt.hsm, PROFILE)  # its own writer
        sim = SimTerminal(setup.tid, setup.mid, setup.pan, setup.tmk, PROFILE, 100, False)
        sim.attach(front)
        await sim.sign_on()
        sim.tak = bytes(16)  # from now on every MAC is wrong
        for service, expected_reads in ((single, 0), (front, 1)):
            reads.clear()
            for _ in range(5):
                _, forged = sim.build_purchase()
                assert codec.decode(await sim.through(service, forged))["39"] == "A0"
            assert len(reads) == expected_reads
        await remote.stop()
        server.close()
        await writer.stop()
        rt.engine.dispose()

    asyncio.run(go())
