"""The ``smartpos`` command: host, terminal, demo and benchmark entry points.

Each command stays thin: it builds its inputs, calls the service layer and prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from smartpos.config import Settings, load_settings
from smartpos.logs import setup_logging

app = typer.Typer(no_args_is_help=True, help="smartpos — smart POS terminal and acquirer sandbox")
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


console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

DEMO_TID = "10000001"
DEMO_MID = "898310048160001"
DEMO_MERCHANT = "示例便利店 Demo Mart"


def _run(coro: Awaitable[T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvloop missing on some platforms
        return asyncio.run(coro)  # type: ignore[arg-type]


def _fail(message: str, as_json: bool, code: int = 1) -> None:
    if as_json:
        print(json.dumps({"result": "error", "message": message}, ensure_ascii=False))
    else:
        err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the smartpos version."""
    from smartpos import __version__

    typer.echo(__version__)


# -- host ------------------------------------------------------------------------------------


def _host_setup(settings: Settings, tid: str, mid: str, merchant: str) -> dict[str, Any]:
    """Open the host, seed test cards and a merchant, provision a terminal (demo/bootstrap)."""
    from smartpos.host.sandbox import (
        ensure_merchant,
        open_host,
        provision_terminal,
        seed_test_cards,
    )
    from smartpos.host.tls import ensure_certificate, fingerprint

    rt = open_host(settings)
    seeded = seed_test_cards(rt)
    ensure_merchant(rt, mid, merchant)
    prov = provision_terminal(rt, tid, mid)
    cert, _ = ensure_certificate(settings.host_dir)
    return {"runtime": rt, "seeded": seeded, "provisioned": prov, "fingerprint": fingerprint(cert)}


async def _serve(
    settings: Settings,
    port: int,
    tls: bool,
    profile: str,
    ready: Callable[[int], Awaitable[None]] | None = None,
    workers: int = 0,
) -> None:
    if workers > 0:
        from smartpos.host.cluster import serve_cluster

        await serve_cluster(settings, port, tls, profile, workers, ready)
        return
    from smartpos.host.pipeline import HostService
    from smartpos.host.sandbox import open_host
    from smartpos.host.server import HostServer
    from smartpos.host.tls import ensure_certificate, server_context
    from smartpos.protocol.profiles import get_profile

    rt = open_host(settings)
    prof = get_profile(profile)
    service = HostService(rt.engine, rt.processor(), rt.hsm, prof)
    ssl_ctx = server_context(*ensure_certificate(settings.host_dir)) if tls else None
    server = HostServer(service, ssl_context=ssl_ctx)
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
        serving.cancel()
        await server.close()


@host_app.command("serve")
def host_serve(
    port: Annotated[int | None, typer.Option(help="TCP port (default: settings)")] = None,
    profile: Annotated[str, typer.Option(help="acquirer profile")] = "sandbox",
    tls: Annotated[bool, typer.Option("--tls/--no-tls")] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=0,
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

    from smartpos.db.lock import AlreadyLocked

    try:
        with contextlib.suppress(KeyboardInterrupt):
            _run(_serve(settings, port or settings.host_port, tls, profile, ready, workers))
    except AlreadyLocked as exc:
        _fail(f"{exc}: is another host (or the demo) running on this data directory?", False)


@host_app.command("init")
def host_init(
    tid: Annotated[str, typer.Option(help="terminal ID to provision")] = DEMO_TID,
    mid: Annotated[str, typer.Option(help="merchant ID")] = DEMO_MID,
    merchant: Annotated[str, typer.Option(help="merchant name")] = DEMO_MERCHANT,
    as_json: JsonOpt = False,
) -> None:
    """Create the host database, issue the test cards and provision a terminal.

    Prints the terminal master key once (the key-loading ceremony): load it into the
    terminal with `smartpos terminal provision`."""
    out = _host_setup(load_settings(), tid, mid, merchant)
    prov = out["provisioned"]
    data = {
        "tid": prov.tid,
        "mid": prov.mid,
        "tmk": prov.tmk.hex().upper(),
        "tmk_kcv": prov.tmk_kcv.hex().upper(),
        "host_fingerprint": out["fingerprint"],
        "test_cards_issued": out["seeded"],
    }
    if as_json:
        print(json.dumps(data))
    else:
        for k, v in data.items():
            console.print(f"{k}: {v}")


@host_app.command("check")
def host_check(as_json: JsonOpt = False) -> None:
    """Verify the issuer ledger: debits = credits, holds resolved at most once, counters."""
    from smartpos.host.ledger import check
    from smartpos.host.sandbox import open_host

    rt = open_host(load_settings())
    with rt.engine.connect() as conn:
        report = check(conn)
    data = {
        "balanced": report.balanced,
        "accounts": report.accounts,
        "transfers": report.transfers,
        "debits_posted_minor": report.debits_posted,
        "credits_posted_minor": report.credits_posted,
        "debits_pending_minor": report.debits_pending,
        "credits_pending_minor": report.credits_pending,
        "problems": report.problems,
    }
    if as_json:
        print(json.dumps(data))
    else:
        state = "[green]BALANCED[/green]" if report.balanced else "[red]NOT BALANCED[/red]"
        console.print(f"ledger {state}: {report.accounts} accounts, {report.transfers} transfers")
        console.print(
            f"posted: debits {report.debits_posted} = credits {report.credits_posted}"
            f"; pending: {report.debits_pending} = {report.credits_pending}"
        )
        for p in report.problems:
            console.print(f"[red]- {p}[/red]")
    if not report.balanced:
        raise typer.Exit(2)


@host_app.command("cards")
def host_cards(as_json: JsonOpt = False) -> None:
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
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title="Sandbox test cards (PIN 123456 unless noted)")
    for col in ("PAN", "expiry", "card", "outcome"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["pan"], r["expiry"], r["label"], r["outcome"])
    console.print(table)
    console.print(
        "Test amounts 9000.05/.12/.13/.51/.61/.91/.96 force that response code; "
        "9000.98 gets no answer."
    )


# -- terminal --------------------------------------------------------------------------------


def _terminal_call(fn: Callable[[Any], Awaitable[Any]], as_json: bool) -> Any:
    from smartpos.cards import CardError
    from smartpos.money import MoneyError
    from smartpos.terminal.engine import TerminalError
    from smartpos.terminal.setup import open_terminal

    async def go() -> Any:
        terminal = open_terminal(load_settings())
        try:
            return await fn(terminal)
        finally:
            await terminal.link.close()

    try:
        return _run(go())
    except (TerminalError, CardError, MoneyError, ValueError) as exc:
        _fail(str(exc), as_json)


def _show(result: Any, as_json: bool, print_receipt: bool = False) -> None:
    data = result.to_dict()
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        colour = {"approved": "green", "declined": "yellow"}.get(data["result"], "red")
        console.print(
            f"[{colour}]{data['result'].upper()}[/{colour}] "
            f"{data['response_code']} {data['message']}"
        )
        from smartpos.money import Money

        console.print(f"  amount: {Money.of(data['amount_minor'], data['currency'])}")
        for key in (
            "kind",
            "pan_masked",
            "brand",
            "entry_mode",
            "stan",
            "invoice_no",
            "batch_no",
            "auth_code",
            "rrn",
            "balance_minor",
            "reversal",
        ):
            if data.get(key) not in (None, "", 0):
                console.print(f"  {key}: {data[key]}")
    if print_receipt and data["result"] == "approved" and data["kind"] != "balance":
        from smartpos.terminal.receipts import print_result

        try:
            print_result(load_settings(), result)
        except Exception as exc:
            err.print(f"[yellow]receipt not printed:[/yellow] {exc} (reprint later)")
    if data["result"] != "approved":
        raise typer.Exit(1)


CardOpt = Annotated[str, typer.Option(help="PAN (keyed entry) or track 2 (swipe)")]
PinOpt = Annotated[str | None, typer.Option(help="cardholder PIN (sent only as a PIN block)")]
ExpiryOpt = Annotated[str | None, typer.Option(help="expiry YYMM (keyed entry)")]
ChipOpt = Annotated[
    bool, typer.Option("--chip", help="read the card by its (simulated) chip: ARQC and ARPC")
]
TapOpt = Annotated[
    bool,
    typer.Option("--tap", help="contactless (QuickPass): ARQC; no PIN up to the no-CVM limit"),
]
FallbackOpt = Annotated[
    bool, typer.Option("--fallback", help="swipe a chip card whose chip cannot be read")
]


@terminal_app.command("provision")
def terminal_provision(
    tid: Annotated[str, typer.Option()],
    mid: Annotated[str, typer.Option()],
    tmk: Annotated[str, typer.Option(help="TMK, 32 hex digits")],
    kcv: Annotated[str, typer.Option(help="TMK check value, 8 hex digits")],
    merchant: Annotated[str, typer.Option()] = DEMO_MERCHANT,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8583,
    fingerprint: Annotated[str | None, typer.Option(help="host certificate SHA-256")] = None,
    profile: Annotated[str, typer.Option()] = "sandbox",
) -> None:
    """Load the terminal's identity and master key."""
    from smartpos.terminal.setup import open_terminal_db, provision

    try:
        provision(
            open_terminal_db(load_settings()),
            tid=tid,
            mid=mid,
            merchant_name=merchant,
            tmk=bytes.fromhex(tmk),
            tmk_kcv=bytes.fromhex(kcv),
            link_host=host,
            link_port=port,
            host_fingerprint=fingerprint,
            profile=profile,
        )
    except ValueError as exc:
        _fail(str(exc), False)
    console.print(f"terminal {tid} provisioned; run `smartpos terminal signon`")


@terminal_app.command("signon")
def terminal_signon(as_json: JsonOpt = False) -> None:
    """Sign on: receive fresh PIN and MAC keys (0800/0810)."""
    _show(_terminal_call(lambda t: t.sign_on(), as_json), as_json)


@terminal_app.command("echo")
def terminal_echo(as_json: JsonOpt = False) -> None:
    """Echo test: is the host there? (0820/0830)"""
    _show(_terminal_call(lambda t: t.echo(), as_json), as_json)


def _amount(text: str, as_json: bool) -> int:
    from smartpos.money import Money, MoneyError

    try:
        return Money.parse(text, load_settings().currency).amount_minor
    except MoneyError as exc:
        _fail(str(exc), as_json)
        raise


@terminal_app.command("sale")
def terminal_sale(
    amount: Annotated[str, typer.Option(help="amount, e.g. 12.34")],
    card: CardOpt,
    expiry: ExpiryOpt = None,
    pin: PinOpt = None,
    chip: ChipOpt = False,
    tap: TapOpt = False,
    fallback: FallbackOpt = False,
    print_receipt: Annotated[bool, typer.Option("--print", help="print the receipts")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Card sale (purchase 0200)."""
    from smartpos.terminal.engine import card_or_error

    minor = _amount(amount, as_json)
    result = _terminal_call(
        lambda t: t.sale(
            minor, card_or_error(card, expiry, chip=chip, tap=tap, fallback=fallback), pin
        ),
        as_json,
    )
    _show(result, as_json, print_receipt)


@terminal_app.command("balance")
def terminal_balance(
    card: CardOpt,
    expiry: ExpiryOpt = None,
    pin: PinOpt = None,
    chip: ChipOpt = False,
    tap: TapOpt = False,
    fallback: FallbackOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Balance inquiry."""
    from smartpos.terminal.engine import card_or_error

    def inquiry(t: Any) -> Any:
        return t.balance(card_or_error(card, expiry, chip=chip, tap=tap, fallback=fallback), pin)

    _show(_terminal_call(inquiry, as_json), as_json)


@terminal_app.command("void")
def terminal_void(
    stan: Annotated[str | None, typer.Option(help="trace number of the sale")] = None,
    invoice: Annotated[str | None, typer.Option(help="voucher number of the sale")] = None,
    print_receipt: Annotated[bool, typer.Option("--print")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Void a sale of the open batch."""
    if not stan and not invoice:
        _fail("give --stan or --invoice of the sale to void", as_json)
    s = f"{int(stan):06d}" if stan else None
    i = f"{int(invoice):06d}" if invoice else None
    _show(_terminal_call(lambda t: t.void(stan=s, invoice_no=i), as_json), as_json, print_receipt)


@terminal_app.command("refund")
def terminal_refund(
    rrn: Annotated[str, typer.Option(help="reference number (RRN) of the sale")],
    amount: Annotated[str, typer.Option(help="amount to refund (partial allowed)")],
    card: CardOpt,
    expiry: ExpiryOpt = None,
    chip: ChipOpt = False,
    tap: TapOpt = False,
    fallback: FallbackOpt = False,
    print_receipt: Annotated[bool, typer.Option("--print")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Refund (all or part of) an earlier sale to the same card."""
    from smartpos.terminal.engine import card_or_error

    minor = _amount(amount, as_json)

    def refund(t: Any) -> Any:
        read = card_or_error(card, expiry, chip=chip, tap=tap, fallback=fallback)
        return t.refund(minor, read, rrn=rrn)

    _show(
        _terminal_call(refund, as_json),
        as_json,
        print_receipt,
    )


@terminal_app.command("settle")
def terminal_settle(as_json: JsonOpt = False) -> None:
    """End of day: settle the batch with the host."""
    data = _terminal_call(lambda t: t.settle(), as_json)
    if as_json:
        print(json.dumps(data))
    else:
        for k, v in data.items():
            if isinstance(v, dict):
                v = ", ".join(f"{name} {count}" for name, count in v.items())
            console.print(f"{k}: {v}")


@terminal_app.command("reversals")
def terminal_reversals(as_json: JsonOpt = False) -> None:
    """Send pending reversals now; print how many are still waiting."""

    async def go(t: Any) -> int:
        t.recover()
        return int(await t.flush_reversals())

    left = _terminal_call(go, as_json)
    if as_json:
        print(json.dumps({"pending": left}))
    else:
        console.print(f"pending reversals: {left}")
    if left:
        raise typer.Exit(1)


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(help="host port (default 8583)")] = None,
) -> None:
    """Run the sandbox host with a provisioned, signed-on demo terminal and test cards."""
    from smartpos.host.testcards import CATALOGUE, by_label_prefix
    from smartpos.terminal.setup import open_terminal, open_terminal_db, provision

    settings = load_settings()
    port = port or settings.host_port
    out = _host_setup(settings, DEMO_TID, DEMO_MID, DEMO_MERCHANT)
    prov = out["provisioned"]
    provision(
        open_terminal_db(settings),
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

    async def ready(p: int) -> None:
        terminal = open_terminal(settings)
        signed = await terminal.sign_on()
        await terminal.link.close()
        console.print(
            f"[bold]smartpos demo[/bold] — sandbox host on 127.0.0.1:{p} (TLS), "
            f"terminal {prov.tid} / merchant {prov.mid}: {signed.message}"
        )
        console.print(f"data directory: {settings.home}")
        exe = sys.argv[0] if sys.argv[0].endswith("smartpos") else "smartpos"
        good, poor = CATALOGUE[0], by_label_prefix("UnionPay debit, balance")
        chip_card = by_label_prefix("UnionPay debit, chip card")
        console.print("\nIn another shell, try:")
        for line in (
            f"{exe} terminal sale --amount 12.34 --card {good.pan} --pin 123456",
            f"{exe} terminal sale --amount 88.00 --card '{good.track2}' --pin 123456 --print",
            f"{exe} terminal sale --amount 50.00 --card {poor.pan} --pin 123456   # 51",
            f"{exe} terminal sale --amount 20.00 --card {good.pan} --pin 123456 --chip",
            f"{exe} terminal sale --amount 36.00 --card {good.pan} --tap   # no PIN up to 1,000.00",
            f"{exe} terminal sale --amount 9.90 --card '{chip_card.track2}' --pin 123456"
            " --fallback",
            f"{exe} terminal balance --card {good.pan} --pin 123456",
            f"{exe} terminal void --stan <trace of a sale>",
            f"{exe} terminal refund --rrn <RRN of a sale> --amount 5.00 --card {good.pan}",
            f"{exe} terminal settle",
            f"{exe} host check",
            f"{exe} host cards      # every test card and its outcome",
        ):
            console.print(f"  {line}")
        console.print("\nPress Ctrl-C to stop the host.")

    from smartpos.db.lock import AlreadyLocked

    try:
        _run(_serve(settings, port, True, "sandbox", ready))
    except KeyboardInterrupt:
        console.print("host stopped")
    except AlreadyLocked as exc:
        _fail(f"{exc}: is another host (or the demo) running on this data directory?", False)
    except OSError as exc:
        _fail(
            f"cannot start the host on port {port}: {exc} (another demo running? use --port)", False
        )


@bench_app.command("host")
def bench_host(
    terminals: Annotated[int, typer.Option(help="concurrent simulated terminals")] = 16,
    seconds: Annotated[float, typer.Option(help="measured seconds per phase")] = 10.0,
    rate: Annotated[
        float,
        typer.Option(
            help="offered purchases/s (open loop); 0 = closed loop, as fast as answers come"
        ),
    ] = 0.0,
    tls: Annotated[bool, typer.Option("--tls/--no-tls")] = True,
    bare: Annotated[
        bool, typer.Option("--bare/--no-bare", help="also measure a bare server")
    ] = True,
    warmup: Annotated[float, typer.Option(help="unmeasured seconds first")] = 1.0,
    workers: Annotated[
        int, typer.Option(min=0, help="host front-end processes (as host serve --workers)")
    ] = 0,
    db: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL server URL, e.g. postgresql+psycopg://postgres@127.0.0.1/postgres:"
            " the ledger goes to a scratch database there, dropped after the run"
            " (default: durable SQLite in a temporary directory)"
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
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
        _fail(str(exc), as_json)
        return
    if as_json:
        print(json.dumps(result.to_dict()))
    else:
        console.print(render_table(result))
    if result.host.errors or not result.ledger_balanced:
        raise typer.Exit(1)


@bench_app.command("fuzz")
def bench_fuzz(
    frames: Annotated[int, typer.Option(min=1, help="hostile and mutated frames to send")] = 20_000,
    seconds: Annotated[
        float, typer.Option(min=1.0, help="length of the run (the floods' phases share it)")
    ] = 30.0,
    seed: Annotated[int | None, typer.Option(help="seed (default: random, printed)")] = None,
    flood_links: Annotated[
        int, typer.Option(min=1, help="connections each flood keeps open")
    ] = 3000,
    flood_sources: Annotated[
        int, typer.Option(min=1, max=2500, help="loopback addresses the floods come from")
    ] = 48,
    flood_rate: Annotated[
        float, typer.Option(min=1.0, help="new flood connections a second, at most")
    ] = 1500.0,
    workers: Annotated[
        int, typer.Option(min=0, help="host front-end processes (as host serve --workers)")
    ] = 0,
    rss_limit_mb: Annotated[
        float | None,
        typer.Option(
            help="fail if the host's peak resident memory exceeds this (default: 300 MB per"
            " host process)"
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
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
        _fail(str(exc), as_json)
        return
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        console.print(render(report))
    if not report.ok:
        raise typer.Exit(1)
