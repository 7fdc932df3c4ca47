"""The demo used the careless way: stopped and started again on the same data, started a
second time while it runs, the host and terminal provisioned again — in that order and
mixed. Every sale is a real one (fresh RRN, money moves), the terminal never gets stuck,
and no batch is settled twice. (A restart used to re-provision the terminal and reset its
counters: the first sale came back APPROVED with the auth code and RRN of that day's
first, voided, sale, and no money moved.)"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import GOOD, SMARTPOS, _free_port, cli, js

pytestmark = pytest.mark.integration


def start_demo(home: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "SMARTPOS_HOME": str(home), "COLUMNS": "300"}
    demo = subprocess.Popen(
        [*SMARTPOS, "demo", "--port", str(port), "--pos-port", str(_free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not lines or "Press Ctrl-C" not in lines[-1]:
        assert time.monotonic() < deadline, "".join(lines)
        line = demo.stdout.readline()
        assert line, "demo exited early:\n" + "".join(lines)
        lines.append(line)
    assert "signed on" in "".join(lines), "".join(lines)
    return demo


def stop_demo(demo: subprocess.Popen[str]) -> None:
    demo.send_signal(signal.SIGINT)
    out, _ = demo.communicate(timeout=20)
    assert demo.returncode == 0 and "host stopped" in out, out


@contextmanager
def running_demo(home: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    demo = start_demo(home, port)
    try:
        yield demo
    finally:
        if demo.poll() is None:
            stop_demo(demo)


def sale(home: Path, amount: str = "12.34", *more: str) -> dict[str, Any]:
    """The README's first sale (the card and PIN on standard input)."""
    done = cli(
        home,
        "terminal",
        "sale",
        "--amount",
        amount,
        "--pin",
        *more,
        "--json",
        ok=False,
        card=GOOD.pan,
        pin=GOOD.pin,
    )
    out = js(done)
    assert out["result"] == "approved", out
    data: dict[str, Any] = out["data"]
    return data


def balance(home: Path) -> int:
    done = cli(home, "terminal", "balance", "--pin", "--json", card=GOOD.pan, pin=GOOD.pin)
    return int(js(done)["data"]["balance_minor"])


def settle(home: Path) -> dict[str, Any]:
    out = js(cli(home, "terminal", "settle", "--json"))
    return {"result": out["result"], **out["data"]}


def test_stop_restart_start_twice_and_provision_again(tmp_path: Path) -> None:
    home, port = tmp_path / "home", _free_port()
    rrns: list[str] = []

    def fresh_sale(amount: str = "12.34") -> dict[str, Any]:
        before = balance(home)
        out = sale(home, amount)
        assert out["rrn"] not in rrns, f"phantom approval: {out}"
        rrns.append(out["rrn"])
        assert before - balance(home) == int(amount.replace(".", "")), out
        return out

    # The first day: a sale, its void, a settlement.
    with running_demo(home, port):
        first = fresh_sale()
        voided = js(cli(home, "terminal", "void", "--stan", first["stan"], "--json"))
        assert voided["result"] == "approved"
        fresh_sale("20.00")
        assert settle(home)["result"] == "balanced"

        # A second demo on the same data is refused and changes nothing: the running
        # terminal keeps working.
        second = subprocess.run(
            [*SMARTPOS, "demo", "--port", str(_free_port()), "--pos-port", str(_free_port())],
            env={**os.environ, "SMARTPOS_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode != 0 and "another" in second.stdout + second.stderr
        assert "Traceback" not in second.stdout + second.stderr
        fresh_sale()
        # Nor can the host be provisioned again under the running host's feet.
        refused = cli(home, "host", "init", ok=False)
        assert refused.returncode != 0 and "another" in refused.stdout + refused.stderr
        fresh_sale()

    # Stopped and started again on the same data: the README's first sale is a new sale.
    with running_demo(home, port):
        fresh_sale()
        report = settle(home)
        assert (report["batch_no"], report["result"]) == ("000002", "balanced")

    # Provisioned again by hand (a new TMK), then the demo: still new sales, no 94, no 77.
    init = js(cli(home, "host", "init", "--json"))["data"]
    cli(
        home,
        "terminal",
        "provision",
        "--tid",
        init["tid"],
        "--mid",
        init["mid"],
        "--tmk",
        init["tmk"],
        "--kcv",
        init["tmk_kcv"],
        "--port",
        str(port),
        "--fingerprint",
        init["host_fingerprint"],
    )
    with running_demo(home, port):
        fresh_sale()
        assert sale(home, "3.00", "--chip")["entry_mode"] == "chip"
        refund = cli(
            home,
            "terminal",
            "refund",
            "--rrn",
            rrns[1],
            "--amount",
            "1.00",
            "--json",
            ok=False,
            card=GOOD.pan,
        )
        assert js(refund)["result"] == "approved", refund.stdout
        report = settle(home)
        assert (report["batch_no"], report["result"]) == ("000003", "balanced")
        # Nothing left: settling again is refused and does not open another batch.
        again = js(cli(home, "terminal", "settle", "--json", ok=False))
        assert not again["ok"] and "nothing to settle" in again["message"]
        assert "000004" in again["message"]
    # Started again once more: the ledger balances, and no batch was settled twice.
    with running_demo(home, port):
        fresh_sale()
        assert js(cli(home, "host", "check", "--json"))["result"] == "balanced"
