"""The `smartpos` command as an integrator uses it: host init, terminal provision, a real host
process over TLS, sales with --json and --print, void, refund, settle, host check — and no
cardholder data in any file afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartpos.host.testcards import CATALOGUE, by_label_prefix

pytestmark = pytest.mark.integration

SMARTPOS = [sys.executable, "-c", "from smartpos.cli import app; app()"]
GOOD = CATALOGUE[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "smartpos-home"


def cli(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMARTPOS_HOME": str(home)}
    done = subprocess.run(
        [*SMARTPOS, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def js(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def host(home: Path) -> Iterator[int]:
    port = _free_port()
    init = js(cli(home, "host", "init", "--json"))
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
    env = {**os.environ, "SMARTPOS_HOME": str(home)}
    proc = subprocess.Popen(
        [*SMARTPOS, "host", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "host exited"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert time.monotonic() < deadline, "host did not listen"
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_end_to_end(home: Path, host: int) -> None:
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"

    sale = js(
        cli(
            home,
            "terminal",
            "sale",
            "--amount",
            "12.34",
            "--card",
            GOOD.pan,
            "--pin",
            "123456",
            "--json",
            "--print",
        )
    )
    assert sale["result"] == "approved" and sale["amount_minor"] == 1234
    assert sale["pan_masked"] == "621234******0001" and len(sale["rrn"]) == 12
    swiped = js(
        cli(
            home,
            "terminal",
            "sale",
            "--amount",
            "50",
            "--card",
            GOOD.track2,
            "--pin",
            "123456",
            "--json",
        )
    )
    assert swiped["entry_mode"] == "swipe"

    poor = by_label_prefix("UnionPay debit, balance")
    declined = cli(
        home,
        "terminal",
        "sale",
        "--amount",
        "50",
        "--card",
        poor.pan,
        "--pin",
        "123456",
        "--json",
        ok=False,
    )
    assert declined.returncode == 1
    assert (js(declined)["result"], js(declined)["response_code"]) == ("declined", "51")

    bad = cli(
        home, "terminal", "sale", "--amount", "12.345", "--card", GOOD.pan, "--json", ok=False
    )
    assert bad.returncode == 1 and js(bad)["result"] == "error"
    bad_card = cli(
        home, "terminal", "sale", "--amount", "1", "--card", "6212340000000002", "--json", ok=False
    )
    assert "Luhn" in js(bad_card)["message"]

    assert js(cli(home, "terminal", "void", "--stan", swiped["stan"], "--json"))["result"] == (
        "approved"
    )
    over = cli(
        home,
        "terminal",
        "refund",
        "--rrn",
        sale["rrn"],
        "--amount",
        "12.35",
        "--card",
        GOOD.pan,
        "--json",
        ok=False,
    )
    assert "exceeds" in js(over)["message"]
    part = js(
        cli(
            home,
            "terminal",
            "refund",
            "--rrn",
            sale["rrn"],
            "--amount",
            "2.34",
            "--card",
            GOOD.pan,
            "--json",
        )
    )
    assert part["result"] == "approved"

    settled = js(cli(home, "terminal", "settle", "--json"))
    assert settled["result"] == "balanced"
    assert (settled["sales_count"], settled["sales_minor"]) == (1, 1234)
    assert (settled["refunds_count"], settled["refunds_minor"]) == (1, 234)
    check = js(cli(home, "host", "check", "--json"))
    assert check["balanced"] and check["debits_pending_minor"] == 0

    receipts = (home / "printer.out").read_bytes()
    assert "示例便利店".encode("gb18030") in receipts
    assert b"621234******0001" in receipts

    # Cardholder data: neither the PAN nor track 2 is in any file the system wrote.
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (GOOD.pan, GOOD.track2.split("=")[1], poor.pan):
                assert secret.encode() not in data, (path, secret)


def test_a_second_host_on_the_same_data_is_refused(home: Path, host: int) -> None:
    second = cli(home, "host", "serve", "--port", str(_free_port()), "--no-tls", ok=False)
    assert second.returncode == 1
    assert "another process already holds the host-writer lock" in second.stderr
    # The first host is unaffected.
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"


def test_cli_chip_sale(home: Path, host: int) -> None:
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"
    for atc, amount in (("0001", "20.00"), ("0002", "3.50")):  # the chip's counter moves on
        args = ["--amount", amount, "--card", GOOD.pan, "--pin", "123456", "--chip", "--json"]
        sale = js(cli(home, "terminal", "sale", *args))
        assert (sale["result"], sale["entry_mode"]) == ("approved", "chip"), sale
        assert sale["icc"]["ATC"] == atc and len(sale["icc"]["ARQC"]) == 16, sale


def test_cli_tap_and_fallback(home: Path, host: int) -> None:
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"
    tap = js(
        cli(home, "terminal", "sale", "--amount", "88.00", "--card", GOOD.pan, "--tap", "--json")
    )
    assert (tap["result"], tap["entry_mode"], tap["pin_verified"]) == (
        "approved",
        "contactless",
        False,
    ), tap
    chip_card = next(c for c in CATALOGUE if c.service_code.startswith("2"))
    swiped = cli(
        home,
        "terminal",
        "sale",
        "--amount",
        "5",
        "--card",
        chip_card.track2,
        "--pin",
        "123456",
        "--json",
        ok=False,
    )
    assert swiped.returncode != 0 and "insert or tap" in js(swiped)["message"], swiped
    args = ["--card", chip_card.track2, "--pin", "123456", "--fallback", "--json"]
    fallback = js(cli(home, "terminal", "sale", "--amount", "5", *args))
    assert (fallback["result"], fallback["entry_mode"]) == ("approved", "fallback"), fallback
    inquiry = js(
        cli(
            home,
            "terminal",
            "balance",
            "--card",
            chip_card.pan,
            "--pin",
            "123456",
            "--tap",
            "--json",
        )
    )
    assert inquiry["result"] == "approved" and inquiry["balance_minor"] > 0, inquiry
    args = ["--rrn", fallback["rrn"], "--amount", "5", "--card", chip_card.track2, "--chip"]
    refund = js(cli(home, "terminal", "refund", *args, "--json"))
    assert (refund["result"], refund["entry_mode"]) == ("approved", "chip"), refund


def test_host_serve_says_only_what_matters(tmp_path: Path) -> None:
    """A first start migrates the database: that is not news for the operator (Alembic
    reports each step at INFO); the listening line is."""
    env = {**os.environ, "SMARTPOS_HOME": str(tmp_path / "fresh")}
    proc = subprocess.Popen(
        [*SMARTPOS, "host", "serve", "--port", "0", "--no-tls"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("host listening on 127.0.0.1:")
    finally:
        proc.terminate()
        out, errors = proc.communicate(timeout=20)
    assert "alembic" not in errors.lower() and "Running upgrade" not in errors, errors
    assert "host stopped" in out
