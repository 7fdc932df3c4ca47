"""CPU per purchase of the host's request path, in process: no TLS, no sockets, no generator
process — the number docs/benchmarks.md calls "host CPU".

Usage (from the repository root)::

    .venv/bin/python scripts/host_cpu.py [--terminals 16] [--rounds 250] [--db PG-SERVER-URL]

Builds a durable host in a temporary directory with N bench terminals and cards, signs each
terminal on through ``HostService.handle``, pre-builds ``rounds`` purchases per terminal
(fresh STAN, PIN block, MAC — not timed), then drives them all concurrently through
``HostService.handle`` and checks that every answer is an approval with a valid MAC. Prints
the process CPU per purchase (which includes the ~40 µs answer check and the commit thread)
and the writer's share (``Processor.process``, wall time on the event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

from smartpos.bench.host import SimTerminal, prepare_host
from smartpos.config import Settings
from smartpos.db.scratch import scratch_database
from smartpos.host.pipeline import HostService
from smartpos.host.processor import Processor
from smartpos.host.sandbox import open_host
from smartpos.protocol.profiles import get_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terminals", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=250)
    parser.add_argument(
        "--db",
        help="PostgreSQL server URL: the ledger in a scratch database there (default SQLite)",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(scratch_database(args.db)) if args.db else None
        measure(args.terminals, args.rounds, db_url)


def measure(terminals: int, rounds: int, db_url: str | None) -> None:
    profile = get_profile("sandbox")
    decide = [0.0]
    real_process = Processor.process

    def timed(self: Processor, conn: object, ctx: object) -> None:
        started = time.perf_counter()
        real_process(self, conn, ctx)  # type: ignore[arg-type]
        decide[0] += time.perf_counter() - started

    Processor.process = timed  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory(prefix="smartpos-host-cpu-") as tmp:
        home = Path(tmp)
        setups = prepare_host(home, terminals, db_url)

        async def run() -> None:
            rt = open_host(Settings(home=home, host_db_url=db_url), durable=True)
            service = HostService(rt.engine, rt.processor(), rt.hsm, profile)
            service.start()
            sims = [SimTerminal(s.tid, s.mid, s.pan, s.tmk, profile, 100, False) for s in setups]

            for sim in sims:
                sim.attach(service)
                await sim.sign_on()
            built = [[sim.build_purchase() for _ in range(rounds)] for sim in sims]

            async def drive(sim: SimTerminal, purchases: list[tuple[str, bytes]]) -> None:
                for stan, message in purchases:
                    assert sim.check_answer(stan, await sim.through(service, message)) == "00"

            decide[0] = 0.0
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(drive(s, b) for s, b in zip(sims, built, strict=True)))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            n = terminals * rounds
            print(
                f"{n} purchases in {wall:.2f} s: CPU {cpu / n * 1e6:.0f} µs a purchase, "
                f"writer deciding {decide[0] / n * 1e6:.0f} µs a purchase"
            )
            await service.stop()
            rt.engine.dispose()

        try:
            import uvloop  # the host's event loop

            uvloop.run(run())
        except ImportError:  # pragma: no cover
            asyncio.run(run())


if __name__ == "__main__":
    main()
