"""``smartpos bench service``: the terminal service's sale, in process, against a real host.

What the cashier app will see when it calls the service: the time from
``TerminalService.sale(...)`` to its result, with everything a real sale does — the journal
row and armed reversal committed durably (SQLite, ``synchronous=FULL``), a PIN block under
the TPK, the MAC, the request over TLS on loopback to the sandbox host in its own process
(durable ledger), the answer's MAC checked, the outcome committed. Sales run one after the
other (a terminal does one at a time), each under a new order reference; a second series
repeats references already answered (what a double-clicked "Pay" costs: a journal read).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from smartpos.config import Settings

__all__ = ["run_service_bench"]

_TID, _MID = "10000001", "898310048160001"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quantiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {
        "p50_ms": q(0.50),
        "p90_ms": q(0.90),
        "p99_ms": q(0.99),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def _prepare(home: Path, port: int) -> None:
    """Host data, a provisioned terminal at the host and in the terminal's database."""
    from smartpos import bootstrap
    from smartpos.host.sandbox import ensure_merchant, provision_terminal, seed_test_cards
    from smartpos.host.tls import ensure_certificate, fingerprint
    from smartpos.terminal.setup import open_terminal_db, provision

    settings = Settings(home=home)
    rt = bootstrap.host_runtime(settings)
    seed_test_cards(rt)
    ensure_merchant(rt, _MID, "Bench Mart")
    prov = provision_terminal(rt, _TID, _MID)
    cert, _ = ensure_certificate(settings.host_dir)
    rt.engine.dispose()
    trt = open_terminal_db(settings)
    provision(
        trt,
        tid=_TID,
        mid=_MID,
        merchant_name="Bench Mart",
        tmk=prov.tmk,
        tmk_kcv=prov.tmk_kcv,
        link_host="127.0.0.1",
        link_port=port,
        host_fingerprint=fingerprint(cert),
        profile="sandbox",
    )
    trt.engine.dispose()


async def _measure(settings: Settings, sales: int, warmup: int) -> dict[str, Any]:
    from smartpos import bootstrap
    from smartpos.cards.reading import CardInput
    from smartpos.host.testcards import CATALOGUE

    card, pin = CardInput.parse(CATALOGUE[0].pan), CATALOGUE[0].pin
    service = bootstrap.terminal_service(settings)
    try:
        signed = await service.sign_on()
        if signed.result != "approved":
            raise RuntimeError(f"sign-on failed: {signed.message}")
        fresh: list[float] = []
        for n in range(warmup + sales):
            started = time.perf_counter()
            result = await service.sale(100, card, pin, order_ref=f"bench-{n}")
            elapsed = (time.perf_counter() - started) * 1000
            if result.result != "approved":
                raise RuntimeError(f"sale {n} not approved: {result.message}")
            if n >= warmup:
                fresh.append(elapsed)
        repeated: list[float] = []
        for n in range(warmup, warmup + sales):
            started = time.perf_counter()
            again = await service.sale(100, card, pin, order_ref=f"bench-{n}")
            repeated.append((time.perf_counter() - started) * 1000)
            if not again.repeated:
                raise RuntimeError(f"order bench-{n} was sent again")
    finally:
        await service.close()
    return {
        "sales": sales,
        "sale": _quantiles(fresh),
        "repeated_order": _quantiles(repeated),
    }


def run_service_bench(sales: int = 200, warmup: int = 20) -> dict[str, Any]:
    """Run the benchmark in a scratch data directory; returns the latencies (ms)."""
    with tempfile.TemporaryDirectory(prefix="smartpos-bench-service-") as scratch:
        home = Path(scratch) / "home"
        port = _free_port()
        _prepare(home, port)
        env = {**os.environ, "SMARTPOS_HOME": str(home)}
        serve = ["host", "serve", "--port", str(port)]
        host = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-c", "from smartpos.cli import app; app()", *serve],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if host.poll() is not None:
                    raise RuntimeError("the bench host exited at start")
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), 0.2),
                ):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the bench host did not listen within 30 s")
                time.sleep(0.05)
            return asyncio.run(_measure(Settings(home=home), sales, warmup))
        finally:
            host.terminate()
            host.wait(15)
