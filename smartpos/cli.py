"""The ``smartpos`` command: the app, the host's commands and the demo; the terminal's and the
benchmarks' commands are in ``smartpos.commandline.terminal`` and ``…bench``.

Each command stays thin: it reads its inputs, calls the service layer and returns a
``Reply``; the app (``smartpos.commandline.app``) prints it — as one JSON object with
``--json`` — and turns every failure into one line (docs/cli.md).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from smartpos.commandline.aio import run
from smartpos.commandline.app import App, UserError, console, err
from smartpos.commandline.bench import bench_app
from smartpos.commandline.options import (
    JsonOpt,
    MerchantOpt,
    MidOpt,
    ProfileOpt,
    TidOpt,
)
from smartpos.commandline.pos import claim_pos_port, pos, seed_demo_store, start_pos
from smartpos.commandline.result import Reply
from smartpos.commandline.terminal import DEMO_MERCHANT, terminal_app
from smartpos.config import Settings, load_settings
from smartpos.logs import setup_logging

if TYPE_CHECKING:
    from smartpos.db.lock import ProcessLock
    from smartpos.host.sandbox import HostRuntime

app = App(
    no_args_is_help=True,
    help="smartpos — smart POS terminal and acquirer sandbox",
    pretty_exceptions_enable=False,
)
host_app = typer.Typer(no_args_is_help=True, help="The acquirer sandbox host.")
app.add_typer(host_app, name="host")
app.add_typer(terminal_app, name="terminal")
app.add_typer(bench_app, name="bench")
app.command()(pos)


@app.callback()
def _main() -> None:
    """smartpos — smart POS terminal and acquirer sandbox"""
    # Every command logs through the PAN-scrubbing handler (smartpos.logs), warnings and up
    # unless the command asks for more.
    setup_logging(logging.WARNING)
    _check_data_directory(load_settings())


def _check_data_directory(settings: Settings) -> None:
    """Tighten what others could read in the data directory (one warning line); refuse
    one that belongs to another user (smartpos.files, docs/architecture.md)."""
    from smartpos.files import secure_tree

    tightened = secure_tree(settings.home)
    if tightened:
        names = ", ".join(str(p.relative_to(settings.home)) for p in tightened[:4])
        more = f" and {len(tightened) - 4} more" if len(tightened) > 4 else ""
        err.print("[yellow]warning:[/yellow] ", end="")
        err.print(
            f"{settings.home} had {len(tightened)} entries open to other users"
            f" ({names}{more}): closed them (directories 0700, files 0600)",
            markup=False,
            highlight=False,
        )


T = TypeVar("T")

DEMO_TID = "10000001"
DEMO_MID = "898310048160001"
# Bind errors: the port or address is not available to this process.
_BIND_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


@app.command()
def version(as_json: JsonOpt = False) -> Reply:
    """Print the smartpos version."""
    from smartpos import __version__

    return Reply(True, "ok", __version__, data={"version": __version__})


# -- host ------------------------------------------------------------------------------------


@dataclass
class HeldHost:
    """What a command holds before it changes any host data: the host database, its writer
    lock (no other host runs on the data) and, for the demo, the listening socket (the port
    is ours) — so a refused start changes nothing."""

    runtime: HostRuntime
    lock: ProcessLock
    listener: socket.socket


def _hold_host(settings: Settings, port: int | None = None) -> tuple[HostRuntime, ProcessLock]:
    """Open the host database and take its writer lock, or stop with a clear message."""
    from smartpos.db.lock import AlreadyLocked, ProcessLock
    from smartpos.host.pipeline import WRITER_LOCK
    from smartpos.host.sandbox import open_host

    rt = open_host(settings)
    try:
        return rt, ProcessLock(rt.engine, WRITER_LOCK).acquire()
    except AlreadyLocked as exc:
        rt.engine.dispose()
        raise UserError(
            f"{exc}: is another host (or the demo) running on this data directory?",
            code="locked",
        ) from None


def _host_setup(
    rt: HostRuntime,
    settings: Settings,
    tid: str,
    mid: str,
    merchant: str,
    pin_scheme: str = "tpk-iso0",
    working_keys: bool = False,
) -> dict[str, Any]:
    """Seed test cards and a merchant, provision a terminal (demo/bootstrap) with the PIN
    key its profile's ``pin_scheme`` needs. The caller holds the host's writer lock."""
    from smartpos.host.sandbox import ensure_merchant, provision_terminal, seed_test_cards
    from smartpos.host.tls import ensure_certificate, fingerprint
    from smartpos.keys.hsm import PinScheme

    seeded = seed_test_cards(rt)
    ensure_merchant(rt, mid, merchant)
    prov = provision_terminal(rt, tid, mid, PinScheme(pin_scheme), working_keys=working_keys)
    cert, _ = ensure_certificate(settings.host_dir)
    return {"seeded": seeded, "provisioned": prov, "fingerprint": fingerprint(cert)}


async def _serve(
    settings: Settings,
    port: int,
    tls: bool,
    profile: str,
    ready: Callable[[int], Awaitable[None]] | None = None,
    workers: int = 0,
    held: HeldHost | None = None,
    after: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run the host until Ctrl-C or SIGTERM. ``held``: the database, writer lock and
    listening socket a caller has already taken (the demo); ``after``: what to close before
    the host stops (the demo's terminal service)."""
    try:
        await _serve_on(settings, port, tls, profile, ready, workers, held, after)
    except OSError as exc:
        if exc.errno not in _BIND_ERRNOS:
            raise
        raise UserError(
            f"cannot listen on {settings.host_bind}:{port}: {os.strerror(exc.errno)} (another host"
            " running? choose another --port)",
            code="unavailable",
        ) from None


async def _serve_on(
    settings: Settings,
    port: int,
    tls: bool,
    profile: str,
    ready: Callable[[int], Awaitable[None]] | None,
    workers: int,
    held: HeldHost | None,
    after: Callable[[], Awaitable[None]] | None = None,
) -> None:
    import asyncio

    if workers > 0:
        from smartpos.host.cluster import serve_cluster

        await serve_cluster(settings, port, tls, profile, workers, ready)
        return
    from smartpos import bootstrap

    rt = held.runtime if held else bootstrap.host_runtime(settings)
    service = bootstrap.host_service(rt, profile, writer_lock=held.lock if held else None)
    server = bootstrap.host_server(settings, service, tls=tls)
    if held is not None:
        await server.start_on(held.listener)
    else:
        await server.start(settings.host_bind, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)  # systemd stop, kill: drain first
    serving = asyncio.ensure_future(server.serve_forever())
    try:
        if ready is not None:
            await ready(server.port)
        waiting = asyncio.ensure_future(stop.wait())
        await asyncio.wait([serving, waiting], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if stop.is_set():
            await server.drain()
            console.print("host stopped (SIGTERM): every request taken was answered")
    finally:
        if after is not None:
            await after()
        serving.cancel()
        await server.close()


@host_app.command("serve")
def host_serve(
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="TCP port (default: settings; 0: any)")
    ] = None,
    profile: ProfileOpt = "sandbox",
    tls: Annotated[bool, typer.Option("--tls/--no-tls")] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            max=64,
            help="front-end processes for the link (TLS, decoding, MACs) in front of one "
            "writer process; 0 = everything in one process",
        ),
    ] = 0,
) -> None:
    """Run the acquirer sandbox host (ISO 8583 over TLS)."""
    settings = load_settings()
    setup_logging(logging.INFO)

    async def ready(p: int) -> None:
        console.print(
            f"host listening on {settings.host_bind}:{p} (profile {profile}, "
            f"TLS {'on' if tls else 'off'}"
            + (f", {workers} front-end processes" if workers else "")
            + ")"
        )

    with contextlib.suppress(KeyboardInterrupt):
        run(
            _serve(
                settings, settings.host_port if port is None else port, tls, profile, ready, workers
            )
        )


@host_app.command("init")
def host_init(
    tid: TidOpt = DEMO_TID,
    mid: MidOpt = DEMO_MID,
    merchant: MerchantOpt = DEMO_MERCHANT,
    profile: ProfileOpt = "sandbox",
    as_json: JsonOpt = False,
) -> Reply:
    """Create the host database, issue the test cards and provision a terminal.

    Prints the terminal master key once (the key-loading ceremony): load it into the
    terminal with `smartpos terminal provision`. A profile whose PIN scheme needs its own
    key (docs/pin-security.md) gets it too: the AES PIN key, or the DUKPT initial key and
    initial KSN, with its check value. Refused while a host runs on the data."""
    from smartpos.protocol.profiles import KeyDelivery, resolve_profile

    settings = load_settings()
    prof = resolve_profile(profile, settings.home)
    rt, lock = _hold_host(settings)
    try:
        out = _host_setup(
            rt,
            settings,
            tid,
            mid,
            merchant,
            prof.pin_scheme,
            working_keys=prof.key_delivery == KeyDelivery.PROVISIONING,
        )
    finally:
        lock.release()
    prov = out["provisioned"]
    data = {
        "tid": prov.tid,
        "mid": prov.mid,
        "tmk": prov.tmk.hex().upper(),
        "tmk_kcv": prov.tmk_kcv.hex().upper(),
        "host_fingerprint": out["fingerprint"],
        "test_cards_issued": out["seeded"],
    }
    for name in ("pin_key", "pin_key_kcv", "initial_ksn", "working_keys"):
        if getattr(prov, name) is not None:
            data[name] = getattr(prov, name).hex().upper()
    message = (
        f"terminal {prov.tid} provisioned at the host; load its TMK with"
        " `smartpos terminal provision`"
    )
    return Reply(True, "ok", message, data=data, lines=[f"{k}: {v}" for k, v in data.items()])


@host_app.command("check")
def host_check(as_json: JsonOpt = False) -> Reply:
    """Verify the issuer ledger: debits = credits, holds resolved at most once, counters."""
    from smartpos.commandline.replies import check_reply
    from smartpos.host.ledger import check
    from smartpos.host.sandbox import open_host

    settings = load_settings()
    rt = open_host(settings)
    with rt.engine.connect() as conn:
        report = check(conn)
    return check_reply(report, settings.currency)


@host_app.command("cards")
def host_cards(as_json: JsonOpt = False) -> Reply:
    """List the sandbox test cards and what each one does."""
    from smartpos.host.testcards import CATALOGUE

    rows = [
        {
            "pan": c.pan,
            "track2": c.track2,
            "pin": c.pin,
            "expiry": c.expiry,
            "label": c.label,
            "outcome": c.outcome,
        }
        for c in CATALOGUE
    ]
    from rich.table import Table

    table = Table(title="Sandbox test cards (PIN 123456 unless noted)")
    for col in ("PAN", "expiry", "card", "outcome"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["pan"], r["expiry"], r["label"], r["outcome"])
    note = (
        "Test amounts 9000.05/.12/.13/.51/.61/.91/.96 force that response code; "
        "9000.98 gets no answer."
    )
    return Reply(True, "ok", f"{len(rows)} test cards", data={"cards": rows}, lines=[table, note])


def _demo_setup(settings: Settings, rt: HostRuntime, port: int) -> str:
    """The demo's host data and terminal, provisioned only when they do not already belong
    together: a restart keeps the terminal's keys, counters and journal (provisioning
    again would keep the counters too, but makes the terminal sign on with a new TMK).
    Returns what was done."""
    from smartpos.host.sandbox import ensure_merchant, seed_test_cards, terminal_tmk_kcv
    from smartpos.host.tls import ensure_certificate, fingerprint
    from smartpos.terminal.setup import open_terminal_db, provision, provisioned_tmk_kcv, relink

    seed_test_cards(rt)
    ensure_merchant(rt, DEMO_MID, DEMO_MERCHANT)
    cert, _ = ensure_certificate(settings.host_dir)
    trt = open_terminal_db(settings)
    try:
        held = provisioned_tmk_kcv(trt, DEMO_TID)
        if held is not None and held == terminal_tmk_kcv(rt, DEMO_TID):
            relink(trt, "127.0.0.1", port, fingerprint(cert))
            return "kept"
        out = _host_setup(rt, settings, DEMO_TID, DEMO_MID, DEMO_MERCHANT)
        prov = out["provisioned"]
        provision(
            trt,
            tid=prov.tid,
            mid=prov.mid,
            merchant_name=DEMO_MERCHANT,
            tmk=prov.tmk,
            tmk_kcv=prov.tmk_kcv,
            link_host="127.0.0.1",
            link_port=port,
            host_fingerprint=out["fingerprint"],
            profile="sandbox",
        )
        return "provisioned"
    finally:
        trt.engine.dispose()


@app.command()
def demo(
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="host port (default 8583)")
    ] = None,
    pos_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="the cashier app's port (default 8000)"),
    ] = None,
) -> None:
    """Run the sandbox host, a provisioned, signed-on demo terminal and the cashier app."""
    from smartpos.host.testcards import CATALOGUE, by_label_prefix
    from smartpos.security.seed import DEMO_LOGINS
    from smartpos.services.local import LocalServer
    from smartpos.services.terminal import TerminalService

    settings = load_settings()
    port = port or settings.host_port
    # Before anything is changed: no other host on this data, and the port is ours.
    rt, lock = _hold_host(settings)
    try:
        listener = socket.create_server((settings.host_bind, port), backlog=1024)
    except OSError as exc:
        lock.release()
        raise UserError(
            f"cannot listen on {settings.host_bind}:{port}: {exc.strerror or exc} (another"
            " demo running? choose another --port)",
            code="unavailable",
        ) from None
    listener.setblocking(False)
    try:
        pos_sock = claim_pos_port(settings, pos_port)
    except UserError:
        listener.close()
        lock.release()
        raise
    setup = _demo_setup(settings, rt, port)
    products = seed_demo_store(settings, DEMO_MID)

    held_open: list[Any] = []  # the terminal service and its socket, closed at the end

    async def ready(p: int) -> None:
        service = TerminalService.open(settings)
        held_open.append(service)
        signed = await service.sign_on()
        # The terminal stays open here and serves the shell's commands over the data
        # directory's socket (smartpos.services.local): they skip starting the terminal.
        held_open.insert(0, await LocalServer(service, settings.home).start())
        pos_server = await start_pos(settings, service, pos_sock, demo=True)
        held_open.insert(0, pos_server)
        console.print(
            f"[bold]smartpos demo[/bold] — sandbox host on 127.0.0.1:{p} (TLS), "
            f"terminal {DEMO_TID} / merchant {DEMO_MID} "
            f"({'provisioned' if setup == 'provisioned' else 'kept from the last run'}): "
            f"{signed.message}"
        )
        console.print(f"data directory: {settings.home}")
        console.print(f"\n[bold]The cashier app:[/bold] {pos_server.url}")
        console.print(f"  a store of {products} products; log in as (staff number / password):")
        for login in DEMO_LOGINS:
            console.print(f"  {login.describe()}", markup=False, highlight=False)
        exe = sys.argv[0] if sys.argv[0].endswith("smartpos") else "smartpos"
        good, poor = CATALOGUE[0], by_label_prefix("UnionPay debit, balance")
        chip_card = by_label_prefix("UnionPay debit, chip card")
        console.print("\nIn another shell, try (the card, then the PIN, come on standard input):")
        pin = good.pin
        for line in (
            f"printf '{good.pan}\\n{pin}\\n' | {exe} terminal sale --amount 12.34 --pin",
            f"printf '{good.track2}\\n{pin}\\n' | {exe} terminal sale --amount 88.00 --pin --print",
            f"printf '{poor.pan}\\n{pin}\\n' | {exe} terminal sale --amount 50.00 --pin   # 51",
            f"printf '{good.pan}\\n{pin}\\n' | {exe} terminal sale --amount 20.00 --pin --chip",
            f"printf '{good.pan}\\n' | {exe} terminal sale --amount 36.00 --tap"
            "   # no PIN up to 1,000.00",
            f"printf '{chip_card.track2}\\n{pin}\\n' | {exe} terminal sale --amount 9.90 --pin"
            " --fallback",
            f"printf '{good.pan}\\n{pin}\\n' | {exe} terminal balance --pin",
            f"{exe} terminal void --stan <trace of a sale>",
            f"printf '{good.pan}\\n' | {exe} terminal refund --rrn <RRN of a sale> --amount 5.00",
            f"{exe} terminal settle",
            f"{exe} host check",
            f"{exe} host cards      # every test card and its outcome",
        ):
            console.print(f"  {line}", markup=False, highlight=False)
        console.print(
            f"\nAt a counter leave out the printf: `{exe} terminal sale --amount 12.34 --pin`"
            " asks for the card, then the PIN, and shows neither.",
            markup=False,
        )
        console.print("\nPress Ctrl-C to stop the host.")

    async def after() -> None:
        for opened in held_open:
            await opened.close()

    held = HeldHost(rt, lock, listener)
    try:
        run(_serve(settings, port, True, "sandbox", ready, held=held, after=after))
    except KeyboardInterrupt:
        console.print("host stopped")
