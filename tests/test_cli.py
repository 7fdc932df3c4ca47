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


def cli(
    home: Path, *args: str, ok: bool = True, card: str | None = None, pin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command; ``card`` and ``pin`` go to its standard input, one line each, as a
    script pipes them (they are never arguments)."""
    env = {**os.environ, "SMARTPOS_HOME": str(home)}
    entered = "".join(f"{line}\n" for line in (card, pin) if line is not None)
    done = subprocess.run(
        [*SMARTPOS, *args],
        env=env,
        input=entered,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def js(done: subprocess.CompletedProcess[str]) -> Any:
    """The command's result (docs/cli.md): the one JSON object it printed."""
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


def data(done: subprocess.CompletedProcess[str]) -> Any:
    """What the command reports (its result's ``data``)."""
    return js(done)["data"]


@pytest.fixture
def host(home: Path) -> Iterator[int]:
    port = _free_port()
    init = data(cli(home, "host", "init", "--json"))
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

    sold = cli(
        home,
        "terminal",
        "sale",
        "--amount",
        "12.34",
        "--pin",
        "--json",
        "--print",
        card=GOOD.pan,
        pin="123456",
    )
    assert (js(sold)["ok"], js(sold)["result"], js(sold)["code"]) == (True, "approved", "00")
    sale = data(sold)
    assert sale["amount_minor"] == 1234 and sale["currency"] == "CNY"
    assert sale["pan_masked"] == "621234******0001" and len(sale["rrn"]) == 12
    assert sale["receipt"] == "printed"
    swiped = data(
        cli(
            home,
            "terminal",
            "sale",
            "--amount",
            "50",
            "--pin",
            "--json",
            card=GOOD.track2,
            pin="123456",
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
        "--pin",
        "--json",
        card=poor.pan,
        pin="123456",
        ok=False,
    )
    assert declined.returncode == 1
    assert (js(declined)["ok"], js(declined)["result"], js(declined)["code"]) == (
        False,
        "declined",
        "51",
    )

    bad = cli(home, "terminal", "sale", "--amount", "12.345", "--json", card=GOOD.pan, ok=False)
    assert bad.returncode == 2 and js(bad)["result"] == "error" and js(bad)["code"] == "usage"
    assert "CNY has 2 decimal places" in js(bad)["message"]
    bad_card = cli(
        home, "terminal", "sale", "--amount", "1", "--json", card="6212340000000002", ok=False
    )
    assert "Luhn" in js(bad_card)["message"] and js(bad_card)["code"] == "refused"

    voided = cli(home, "terminal", "void", "--stan", swiped["stan"], "--json")
    assert js(voided)["result"] == "approved"
    over = cli(
        home,
        "terminal",
        "refund",
        "--rrn",
        sale["rrn"],
        "--amount",
        "12.35",
        "--json",
        card=GOOD.pan,
        ok=False,
    )
    assert "exceeds" in js(over)["message"]
    part = cli(
        home,
        "terminal",
        "refund",
        "--rrn",
        sale["rrn"],
        "--amount",
        "2.34",
        "--json",
        card=GOOD.pan,
    )
    assert js(part)["result"] == "approved"

    settled = js(cli(home, "terminal", "settle", "--json"))
    assert (settled["ok"], settled["result"]) == (True, "balanced")
    totals = settled["data"]
    assert (totals["sales_count"], totals["sales_minor"]) == (1, 1234)
    assert (totals["refunds_count"], totals["refunds_minor"]) == (1, 234)
    check = js(cli(home, "host", "check", "--json"))
    assert check["result"] == "balanced" and check["data"]["debits_pending_minor"] == 0

    # For people, amounts are shown with their currency, never in minor units.
    balance = cli(home, "terminal", "balance", "--pin", card=GOOD.pan, pin="123456")
    # 100,000.00 at issue, less the sale of 12.34, plus its refund of 2.34 (the swipe was voided)
    assert "balance: 99,990.00 CNY" in balance.stdout, balance.stdout
    assert "_minor" not in balance.stdout
    human_check = cli(home, "host", "check").stdout
    assert "_minor" not in human_check and " CNY" in human_check, human_check

    receipts = (home / "printer.out").read_bytes()
    assert "示例便利店".encode("gb18030") in receipts
    assert b"621234******0001" in receipts

    # Cardholder data: neither the PAN nor track 2 is in any file the system wrote.
    for path in home.rglob("*"):
        if path.is_file():
            written = path.read_bytes()
            for secret in (GOOD.pan, GOOD.track2.split("=")[1], poor.pan):
                assert secret.encode() not in written, (path, secret)


def test_a_second_host_on_the_same_data_is_refused(home: Path, host: int) -> None:
    second = cli(home, "host", "serve", "--port", str(_free_port()), "--no-tls", ok=False)
    assert second.returncode == 1
    assert "another process already holds the host-writer lock" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.stderr
    # The first host is unaffected.
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"


def test_host_serve_on_a_port_in_use_says_so(home: Path, host: int) -> None:
    # The first host holds the writer lock too; a fresh data directory isolates the port.
    other = home.parent / "other-home"
    taken = cli(other, "host", "serve", "--port", str(host), "--no-tls", ok=False)
    assert taken.returncode == 1, taken
    assert taken.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{host}: Address already in use (another host"
        " running? choose another --port)"
    )


def test_cli_chip_sale(home: Path, host: int) -> None:
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"
    for atc, amount in (("0001", "20.00"), ("0002", "3.50")):  # the chip's counter moves on
        args = ["--amount", amount, "--pin", "--chip", "--json"]
        sale = data(cli(home, "terminal", "sale", *args, card=GOOD.pan, pin="123456"))
        assert (sale["entry_mode"], sale["icc"]["ATC"]) == ("chip", atc), sale
        assert len(sale["icc"]["ARQC"]) == 16, sale


def test_cli_tap_and_fallback(home: Path, host: int) -> None:
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"
    tapped = cli(home, "terminal", "sale", "--amount", "88.00", "--tap", "--json", card=GOOD.pan)
    tap = data(tapped)
    assert (js(tapped)["result"], tap["entry_mode"], tap["pin_verified"]) == (
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
        "--pin",
        "--json",
        card=chip_card.track2,
        pin="123456",
        ok=False,
    )
    assert swiped.returncode != 0 and "insert or tap" in js(swiped)["message"], swiped
    fallback = data(
        cli(
            home,
            "terminal",
            "sale",
            "--amount",
            "5",
            "--pin",
            "--fallback",
            "--json",
            card=chip_card.track2,
            pin="123456",
        )
    )
    assert fallback["entry_mode"] == "fallback", fallback
    inquiry = data(
        cli(
            home,
            "terminal",
            "balance",
            "--pin",
            "--tap",
            "--json",
            card=chip_card.pan,
            pin="123456",
        )
    )
    assert inquiry["balance_minor"] > 0, inquiry
    args = ["--rrn", fallback["rrn"], "--amount", "5", "--chip", "--json"]
    refund = data(cli(home, "terminal", "refund", *args, card=chip_card.track2))
    assert refund["entry_mode"] == "chip", refund


def _journal_rows(home: Path) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(home / "terminal.db")) as conn:
        return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])


@pytest.mark.parametrize(
    ("pin", "says"),
    [
        ("987", "PIN must be 4 to 12 digits"),
        ("abcd", "PIN must be 4 to 12 digits"),
        ("١٢٣٤٥٦", "PIN must be 4 to 12 digits"),
        ("", "no PIN entered"),
        (None, "no PIN on standard input"),
    ],
)
def test_a_bad_pin_is_refused_and_nothing_is_sent(
    home: Path, host: int, pin: str | None, says: str
) -> None:
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"
    rows = _journal_rows(home)
    done = cli(
        home,
        "terminal",
        "sale",
        "--amount",
        "1",
        "--pin",
        "--json",
        card=GOOD.pan,
        pin=pin,
        ok=False,
    )
    result = js(done)
    assert (result["ok"], result["code"]) == (False, "refused") and says in result["message"]
    assert done.returncode == 1 and _journal_rows(home) == rows
    if pin:
        assert pin not in done.stdout + done.stderr


def test_pan_and_pin_come_from_a_hidden_prompt_never_from_argv(home: Path, host: int) -> None:
    """At a terminal the sale asks for the card, then the PIN, echoing neither; while it
    waits, the process's command line (what `ps` shows every user) holds neither; and the
    result shows the PAN masked and the PIN not at all."""
    import fcntl
    import pty
    import select
    import termios

    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"
    master, slave = pty.openpty()

    def controlling_terminal() -> None:  # the pty is this session's terminal, like a shell's
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [*SMARTPOS, "terminal", "sale", "--amount", "12.34", "--pin"],
        env={**os.environ, "SMARTPOS_HOME": str(home)},
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    on_terminal = b""

    def wait_for(prompt: bytes) -> None:
        nonlocal on_terminal
        deadline = time.monotonic() + 30
        while prompt not in on_terminal:
            assert time.monotonic() < deadline and proc.poll() is None, on_terminal
            if select.select([master], [], [], 0.5)[0]:
                on_terminal += os.read(master, 1024)

    def command_line() -> bytes:
        return Path(f"/proc/{proc.pid}/cmdline").read_bytes()

    try:
        wait_for(b"Card (swipe or key the number): ")
        assert b"terminal\0sale\0--amount\x0012.34\0--pin" in command_line()
        os.write(master, GOOD.pan.encode() + b"\n")
        wait_for(b"PIN: ")
        seen_by_ps = command_line()
        os.write(master, b"123456\n")
        out, errors = proc.communicate(timeout=60)
        with contextlib.suppress(OSError):  # the rest of what reached the terminal
            while select.select([master], [], [], 0.2)[0]:
                on_terminal += os.read(master, 1024)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert proc.returncode == 0, (out, errors)
    for secret in (GOOD.pan.encode(), b"123456"):
        assert secret not in seen_by_ps
        assert secret not in on_terminal, on_terminal  # not echoed
        assert secret not in out + errors
    assert b"APPROVED" in out and b"621234******0001" in out, out


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


def test_an_unprovisioned_terminal_says_so_and_creates_nothing(home: Path) -> None:
    done = cli(home, "terminal", "sale", "--amount", "1", "--json", ok=False, card=GOOD.pan)
    out = js(done)
    assert (out["ok"], out["code"]) == (False, "refused") and "not provisioned" in out["message"]
    assert not (home / "terminal.db").exists() and not (home / "terminal").exists()


# -- --order: an order reference is charged once -------------------------------------------


def _card_balance(home: Path) -> int:
    done = cli(home, "terminal", "balance", "--pin", "--json", card=GOOD.pan, pin="123456")
    return int(data(done)["balance_minor"])


def test_the_same_order_reference_is_charged_once(home: Path, host: int) -> None:
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"
    before = _card_balance(home)
    args = ("terminal", "sale", "--amount", "12.34", "--pin", "--order", "A-1001", "--json")
    first = data(cli(home, *args, card=GOOD.pan, pin="123456"))
    again = data(cli(home, *args, card=GOOD.pan, pin="123456"))
    assert first["rrn"] == again["rrn"] and again["repeated"] and not first["repeated"]
    assert first["order_ref"] == "A-1001"
    assert _card_balance(home) == before - 1234

    other = cli(
        home,
        "terminal",
        "sale",
        "--amount",
        "12.35",
        "--pin",
        "--order",
        "A-1001",
        "--json",
        ok=False,
        card=GOOD.pan,
        pin="123456",
    )
    refused = js(other)
    assert (refused["ok"], refused["code"]) == (False, "refused")
    assert "A-1001" in refused["message"] and "new reference" in refused["message"]
    assert _card_balance(home) == before - 1234

    void = ("terminal", "void", "--stan", first["stan"], "--order", "A-1001/void", "--json")
    assert js(cli(home, *void))["result"] == "approved"
    assert data(cli(home, *void))["repeated"] is True
    assert _card_balance(home) == before


def test_a_malformed_order_reference_is_a_usage_error(home: Path) -> None:
    done = cli(home, "terminal", "void", "--stan", "000001", "--order", "", "--json", ok=False)
    assert done.returncode == 2 and js(done)["code"] == "usage"


def test_a_repeated_order_says_so_for_people(home: Path, host: int) -> None:
    assert js(cli(home, "terminal", "signon", "--json"))["result"] == "approved"
    args = ("terminal", "sale", "--amount", "1.00", "--pin", "--order", "P-9")
    first = cli(home, *args, card=GOOD.pan, pin="123456").stdout
    again = cli(home, *args, card=GOOD.pan, pin="123456").stdout
    assert "already done" not in first
    assert "order P-9: already done" in again and "nothing was sent again" in again
