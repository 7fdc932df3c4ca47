"""The ``smartpos`` command: host, terminal, demo and benchmark entry points.

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

from smartpos.commandline.app import App, UserError, console, err
from smartpos.commandline.options import (
    AmountOpt,
    ChipOpt,
    ExpiryOpt,
    FallbackOpt,
    FingerprintOpt,
    HostOpt,
    InvoiceOpt,
    JsonOpt,
    KcvOpt,
    MerchantOpt,
    MidOpt,
    PinOpt,
    PortOpt,
    PostgresUrlOpt,
    PrintOpt,
    ProfileOpt,
    RefundAmountOpt,
    RrnOpt,
    StanOpt,
    TapOpt,
    TidOpt,
    TmkOpt,
)
from smartpos.commandline.result import Reply
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
terminal_app = typer.Typer(no_args_is_help=True, help="The payment terminal.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks.")
app.add_typer(host_app, name="host")
app.add_typer(terminal_app, name="terminal")
app.add_typer(bench_app, name="bench")


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
DEMO_MERCHANT = "示例便利店 Demo Mart"
# Bind errors: the port or address is not available to this process.
_BIND_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def _run(coro: Awaitable[T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvloop missing on some platforms
        import asyncio

        return asyncio.run(coro)  # type: ignore[arg-type]


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
        _run(
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


# -- terminal --------------------------------------------------------------------------------


# What the command line adds to the terminal's refusals: the command or option to use.
_HINTS = {
    "not_provisioned": "run `smartpos demo` once or `smartpos terminal provision`",
    "not_signed_on": "`smartpos terminal signon`",
    "chip_card_swiped": "--chip or --tap; --fallback only when its chip cannot be read",
    "pin_required": "--pin",
}


Request = dict[str, Any]


def _on_terminal(build: Callable[[], Request]) -> Any:
    """Run the request ``build()`` makes on the terminal service: the one a long-running
    process (the demo) offers on the data directory's socket, else one opened in this
    process (smartpos.services.local: both run the same dispatch). ``build`` is called once
    a terminal is there, so the card is asked for only then. A refusal gets the command
    line's hint (the engine names no command or option)."""
    from smartpos.services.local import ask

    settings = load_settings()
    answer = ask(settings.home, build)
    if answer is None:
        answer = _run(_in_process(settings, build))
    if not answer["ok"]:
        code = answer["code"]
        hint = _HINTS.get(code)
        message = f"{answer['message']} ({hint})" if hint else answer["message"]
        if code == "usage":
            raise UserError(message, code="usage", exit_code=2)
        raise UserError(message, code="incomplete" if code == "incomplete" else "refused")
    return answer["result"]


async def _in_process(settings: Settings, build: Callable[[], Request]) -> Request:
    from smartpos.services.local import dispatch
    from smartpos.services.terminal import TerminalService
    from smartpos.terminal.errors import TerminalError

    try:
        service = TerminalService.open(settings)
    except TerminalError as exc:
        return {"ok": False, "code": str(exc.code), "message": str(exc)}
    try:
        return await dispatch(service, build())
    finally:
        await service.close()


def _txn(build: Callable[[], Request], print_receipt: bool = False) -> Reply:
    """Run one transaction on the terminal; with ``print_receipt`` print the slips of an
    approval (a printer failure is reported, the transaction stands)."""
    from smartpos.commandline.replies import txn_reply

    data = _on_terminal(build)
    receipt = None
    if print_receipt and data["result"] == "approved" and data["kind"] != "balance":
        from smartpos.devices.printer import PrinterError
        from smartpos.terminal.receipts import print_result
        from smartpos.terminal.results import TxnResult

        try:
            print_result(load_settings(), TxnResult.from_dict(data))
            receipt = "printed"
        except PrinterError as exc:
            receipt = f"not printed: {exc} (reprint later)"
            err.print("[yellow]receipt not printed:[/yellow] ", end="")
            err.print(f"{exc} (reprint later)", markup=False, highlight=False)
    return txn_reply(data, receipt)


def _card_request(
    op: str, expiry: str | None, chip: bool, tap: bool, fallback: bool, pin: bool, **more: Any
) -> Callable[[], Request]:
    """A card request: the card (and the PIN) read from the reader stand-in — hidden prompt
    or standard input, never argv — when the terminal is there."""

    def build() -> Request:
        from smartpos.commandline.entry import read_card, read_pin

        card = read_card()
        return {
            "op": op,
            "card": card,
            "expiry": expiry,
            "chip": chip,
            "tap": tap,
            "fallback": fallback,
            "pin": read_pin() if pin else None,
            **more,
        }

    return build


def _order_ref(given: str | None) -> str:
    """The order reference a money-moving command sends under: the one given (the same
    reference again is answered from the journal and never charged twice), or a new one."""
    if given is None:
        import uuid

        return f"cli-{uuid.uuid4().hex}"
    ref = given.strip()
    if not (1 <= len(ref) <= 64 and ref.isascii() and ref.isprintable()):
        raise UserError(
            "--order must be 1 to 64 printable ASCII characters", code="usage", exit_code=2
        )
    return ref


OrderOpt = Annotated[
    str | None,
    typer.Option(
        "--order",
        help="order reference (idempotency key): the same reference again returns the stored"
        " result and sends nothing",
    ),
]


def _one_reading(chip: bool, tap: bool, fallback: bool) -> None:
    """Refuse ``--chip --tap`` and the like before anything is opened or asked."""
    if chip + tap + fallback > 1:
        raise UserError(
            "read the card one way: --chip, --tap or --fallback", code="usage", exit_code=2
        )


_CARD_HELP = (
    " The card (PAN or track 2) and the PIN are read from a hidden prompt, or from standard"
    " input when it is not a terminal: one line each (docs/cli.md)."
)


@terminal_app.command("provision")
def terminal_provision(
    tid: TidOpt,
    mid: MidOpt,
    tmk: TmkOpt,
    kcv: KcvOpt,
    merchant: MerchantOpt = DEMO_MERCHANT,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8583,
    fingerprint: FingerprintOpt = None,
    profile: ProfileOpt = "sandbox",
    # Hex of one of the lengths a key, check value or KSN has; anything else is a
    # ValueError, which the option turns into a usage error.
    pin_key: Annotated[
        bytes | None,
        typer.Option(
            parser=lambda t: bytes.fromhex(t if len(t) in (32, 48, 64) else "?"),
            help="PIN key, 32, 48 or 64 hex digits: the AES PIN key or DUKPT initial key"
            " `host init` printed",
        ),
    ] = None,
    pin_key_kcv: Annotated[
        bytes | None,
        typer.Option(
            parser=lambda t: bytes.fromhex(t if len(t) in (6, 8) else "?"),
            help="PIN key check value, 6 (AES) or 8 (TDES) hex digits",
        ),
    ] = None,
    initial_ksn: Annotated[
        bytes | None,
        typer.Option(
            parser=lambda t: bytes.fromhex(t if len(t) in (16, 20) else "?"),
            help="DUKPT initial KSN (TDES, 20 hex digits) or initial key ID (AES, 16)",
        ),
    ] = None,
    working_keys: Annotated[
        bytes | None,
        typer.Option(
            parser=lambda t: bytes.fromhex(t if len(t) == 80 else "?"),
            help="the working keys `host init` printed for a profile that loads them at"
            " provisioning: 80 hex digits (TPK and TAK under the TMK, with check values)",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> Reply:
    """Load the terminal's identity and master key (and the PIN key of a profile whose PIN
    scheme needs one: docs/pin-security.md)."""
    from smartpos.terminal.setup import open_terminal_db, provision

    provision(
        open_terminal_db(load_settings()),
        tid=tid,
        mid=mid,
        merchant_name=merchant,
        tmk=tmk,
        tmk_kcv=kcv,
        link_host=host,
        link_port=port,
        host_fingerprint=fingerprint,
        profile=profile,
        pin_key=pin_key,
        pin_key_kcv=pin_key_kcv,
        initial_ksn=initial_ksn,
        working_keys=working_keys,
    )
    data = {"tid": tid, "mid": mid, "link_host": host, "link_port": port, "profile": profile}
    return Reply(
        True, "ok", f"terminal {tid} provisioned; run `smartpos terminal signon`", data=data
    )


@terminal_app.command("signon")
def terminal_signon(as_json: JsonOpt = False) -> Reply:
    """Sign on: receive fresh PIN and MAC keys (0800/0810)."""
    return _txn(lambda: {"op": "sign_on"})


@terminal_app.command("echo")
def terminal_echo(as_json: JsonOpt = False) -> Reply:
    """Echo test: is the host there? (0820/0830)"""
    return _txn(lambda: {"op": "echo"})


@terminal_app.command("sale", help="Card sale (purchase 0200)." + _CARD_HELP)
def terminal_sale(
    amount: AmountOpt,
    pin: PinOpt = False,
    expiry: ExpiryOpt = None,
    chip: ChipOpt = False,
    tap: TapOpt = False,
    fallback: FallbackOpt = False,
    print_receipt: PrintOpt = False,
    order: OrderOpt = None,
    as_json: JsonOpt = False,
) -> Reply:
    _one_reading(chip, tap, fallback)
    ref = _order_ref(order)
    build = _card_request(
        "sale", expiry, chip, tap, fallback, pin, amount_minor=amount.amount_minor, order_ref=ref
    )
    return _txn(build, print_receipt)


@terminal_app.command("balance", help="Balance inquiry." + _CARD_HELP)
def terminal_balance(
    pin: PinOpt = False,
    expiry: ExpiryOpt = None,
    chip: ChipOpt = False,
    tap: TapOpt = False,
    fallback: FallbackOpt = False,
    as_json: JsonOpt = False,
) -> Reply:
    _one_reading(chip, tap, fallback)
    return _txn(_card_request("balance", expiry, chip, tap, fallback, pin))


@terminal_app.command("void")
def terminal_void(
    stan: StanOpt = None,
    invoice: InvoiceOpt = None,
    print_receipt: PrintOpt = False,
    order: OrderOpt = None,
    as_json: JsonOpt = False,
) -> Reply:
    """Void a sale of the open batch."""
    if (stan is None) == (invoice is None):
        raise UserError(
            "give the sale's --stan or its --invoice (one of them)", code="usage", exit_code=2
        )
    ref = _order_ref(order)
    request = {"op": "void", "stan": stan, "invoice": invoice, "order_ref": ref}
    return _txn(lambda: request, print_receipt)


@terminal_app.command(
    "refund", help="Refund (all or part of) an earlier sale to the same card." + _CARD_HELP
)
def terminal_refund(
    rrn: RrnOpt,
    amount: RefundAmountOpt,
    expiry: ExpiryOpt = None,
    chip: ChipOpt = False,
    tap: TapOpt = False,
    fallback: FallbackOpt = False,
    print_receipt: PrintOpt = False,
    order: OrderOpt = None,
    as_json: JsonOpt = False,
) -> Reply:
    _one_reading(chip, tap, fallback)
    ref = _order_ref(order)
    build = _card_request(
        "refund",
        expiry,
        chip,
        tap,
        fallback,
        False,
        amount_minor=amount.amount_minor,
        rrn=rrn,
        order_ref=ref,
    )
    return _txn(build, print_receipt)


@terminal_app.command("settle")
def terminal_settle(as_json: JsonOpt = False) -> Reply:
    """End of day: settle the batch with the host."""
    from smartpos.commandline.replies import settle_reply

    return settle_reply(_on_terminal(lambda: {"op": "settle"}), load_settings().currency)


@terminal_app.command("reversals")
def terminal_reversals(as_json: JsonOpt = False) -> Reply:
    """Send pending reversals now; print how many are still waiting."""

    left = int(_on_terminal(lambda: {"op": "reversals"})["pending"])
    message = f"pending reversals: {left}"
    if left:
        message += (
            " (the host did not acknowledge them; they are sent again before the next transaction)"
        )
    return Reply(
        left == 0,
        "ok" if left == 0 else "pending",
        message,
        code=None if left == 0 else "incomplete",
        data={"pending": left},
    )


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
) -> None:
    """Run the sandbox host with a provisioned, signed-on demo terminal and test cards."""
    from smartpos.host.testcards import CATALOGUE, by_label_prefix
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
    setup = _demo_setup(settings, rt, port)

    held_open: list[Any] = []  # the terminal service and its socket, closed at the end

    async def ready(p: int) -> None:
        service = TerminalService.open(settings)
        held_open.append(service)
        signed = await service.sign_on()
        # The terminal stays open here and serves the shell's commands over the data
        # directory's socket (smartpos.services.local): they skip starting the terminal.
        held_open.insert(0, await LocalServer(service, settings.home).start())
        console.print(
            f"[bold]smartpos demo[/bold] — sandbox host on 127.0.0.1:{p} (TLS), "
            f"terminal {DEMO_TID} / merchant {DEMO_MID} "
            f"({'provisioned' if setup == 'provisioned' else 'kept from the last run'}): "
            f"{signed.message}"
        )
        console.print(f"data directory: {settings.home}")
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
        _run(_serve(settings, port, True, "sandbox", ready, held=held, after=after))
    except KeyboardInterrupt:
        console.print("host stopped")


@bench_app.command("cli")
def bench_cli(
    runs: Annotated[int, typer.Option(min=1, max=400, help="timed runs of each command")] = 20,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="port of the scratch demo host")
    ] = 18583,
    sales_json: Annotated[
        bool, typer.Option("--sales-json", help="time the sales with --json")
    ] = False,
    as_json: JsonOpt = False,
) -> Reply:
    """Wall time of terminal sale, terminal --help and import smartpos.cli, each a new
    process, against a demo host in a scratch data directory (docs/benchmarks.md)."""
    from smartpos.bench.cli import bench_cli as run_cli_bench
    from smartpos.bench.cli import render

    try:
        data = run_cli_bench(runs, port, json=sales_json)
    except (RuntimeError, OSError) as exc:
        raise UserError(str(exc), code="unavailable") from None
    message = f"terminal sale median {data['sale']['median_ms']} ms"
    return Reply(True, "ok", message, None, data, [render(data)])


@bench_app.command("service")
def bench_service(
    sales: Annotated[int, typer.Option(min=10, max=100_000, help="measured sales")] = 200,
    warmup: Annotated[int, typer.Option(min=0, max=10_000, help="unmeasured sales first")] = 20,
    as_json: JsonOpt = False,
) -> Reply:
    """The terminal service's in-process sale against a real host (TLS, durable ledgers)."""
    from smartpos.bench.service import run_service_bench

    try:
        data = run_service_bench(sales, warmup)
    except (RuntimeError, OSError) as exc:
        raise UserError(str(exc), code="unavailable") from None
    sale, again = data["sale"], data["repeated_order"]
    lines = [
        f"sale through the terminal service ({sales} sales): p50 {sale['p50_ms']} ms,"
        f" p90 {sale['p90_ms']} ms, p99 {sale['p99_ms']} ms, max {sale['max_ms']} ms",
        f"the same order again (answered from the journal): p50 {again['p50_ms']} ms,"
        f" p99 {again['p99_ms']} ms",
    ]
    return Reply(True, "ok", f"sale p50 {sale['p50_ms']} ms", None, data, lines)


@bench_app.command("host")
def bench_host(
    terminals: Annotated[
        int, typer.Option(min=1, max=1000, help="concurrent simulated terminals")
    ] = 16,
    seconds: Annotated[
        float, typer.Option(min=0.1, max=3600, help="measured seconds per phase")
    ] = 10.0,
    rate: Annotated[
        float,
        typer.Option(
            min=0,
            max=1_000_000,
            help="offered purchases/s (open loop); 0 = closed loop, as fast as answers come",
        ),
    ] = 0.0,
    tls: Annotated[bool, typer.Option("--tls/--no-tls")] = True,
    bare: Annotated[
        bool, typer.Option("--bare/--no-bare", help="also measure a bare server")
    ] = True,
    warmup: Annotated[float, typer.Option(min=0, max=600, help="unmeasured seconds first")] = 1.0,
    workers: Annotated[
        int, typer.Option(min=0, max=64, help="host front-end processes (as host serve --workers)")
    ] = 0,
    db: PostgresUrlOpt = None,
    as_json: JsonOpt = False,
) -> Reply:
    """Purchases with PIN and MAC from N terminals against a host on a durable ledger."""
    from smartpos.bench.host import BenchConfig, render_table, run_bench, stderr_progress

    cfg = BenchConfig(
        terminals=terminals,
        seconds=seconds,
        rate=rate,
        tls=tls,
        bare=bare,
        warmup=warmup,
        workers=workers,
        db_server=db,
    )
    try:
        result = run_bench(cfg, progress=stderr_progress)
    except (ValueError, RuntimeError, OSError) as exc:
        raise UserError(str(exc), code="unavailable") from None
    data = result.to_dict()
    lines = [render_table(result)]
    if not result.ledger_balanced:
        message = "the run's ledger does not balance"
        return Reply(False, "not_balanced", message, "inconsistent", data, lines)
    if result.host.errors:
        message = f"{result.host.errors} requests failed: {'; '.join(data['error_samples'])}"
        return Reply(False, "error", message, "incomplete", data, lines)
    return Reply(True, "ok", f"{data['approved_tps']} approved/s", None, data, lines)


@bench_app.command("fuzz")
def bench_fuzz(
    frames: Annotated[
        int, typer.Option(min=1, max=100_000_000, help="hostile and mutated frames to send")
    ] = 20_000,
    seconds: Annotated[
        float,
        typer.Option(
            min=1.0,
            max=86_400,
            help="length of the phases (calm and floods share it); a last calm then"
            " finishes the frames, for at most as long again",
        ),
    ] = 30.0,
    seed: Annotated[
        int | None, typer.Option(min=0, max=2**63 - 1, help="seed (default: random, printed)")
    ] = None,
    flood_links: Annotated[
        int, typer.Option(min=1, max=20_000, help="connections each flood keeps open")
    ] = 3000,
    flood_sources: Annotated[
        int, typer.Option(min=1, max=2500, help="loopback addresses the floods come from")
    ] = 48,
    flood_rate: Annotated[
        float, typer.Option(min=1.0, max=100_000, help="new flood connections a second, at most")
    ] = 1500.0,
    workers: Annotated[
        int, typer.Option(min=0, max=64, help="host front-end processes (as host serve --workers)")
    ] = 0,
    rss_limit_mb: Annotated[
        float | None,
        typer.Option(
            min=1,
            max=1_000_000,
            help="fail if the host's peak resident memory exceeds this (default: 300 MB per"
            " host process)",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> Reply:
    """Hostile frames, MACed field mutations and connection floods against a host on
    loopback, a terminal selling meanwhile; exit 1 unless the host held (no traceback,
    ledger balanced and every transfer approved, the sales approved, memory bounded)."""
    from smartpos.bench.fuzz import FuzzConfig, run_fuzz
    from smartpos.bench.fuzz.report import render
    from smartpos.bench.host import stderr_progress

    cfg = FuzzConfig(
        frames=frames,
        seconds=seconds,
        seed=seed,
        flood_links=flood_links,
        flood_sources=flood_sources,
        flood_rate=flood_rate,
        workers=workers,
        rss_limit_mb=rss_limit_mb,
    )
    command = "smartpos bench fuzz " + " ".join(sys.argv[3:])
    try:
        report = run_fuzz(cfg, progress=stderr_progress, command=command.strip())
    except (ValueError, RuntimeError, OSError) as exc:
        raise UserError(str(exc), code="unavailable") from None
    data = report.to_dict()
    lines = [render(report)]
    if not report.ok:
        return Reply(
            False, "error", "the host did not hold (see the verdict)", "inconsistent", data, lines
        )
    return Reply(True, "ok", "the host held", None, data, lines)
