"""``smartpos terminal …``: the payment terminal's commands.

Each one builds a request and hands it to the terminal service — the one a running demo
offers on the data directory's socket, else one opened in this process
(smartpos.services.local) — then prints the answer (docs/cli.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smartpos.commandline.app import UserError, err
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

if TYPE_CHECKING:
    pass

from smartpos.commandline.aio import run as _run

terminal_app = typer.Typer(no_args_is_help=True, help="The payment terminal.")

DEMO_MERCHANT = "示例便利店 Demo Mart"  # the demo's merchant (smartpos.cli), the default name


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


def _hex(*lengths: int) -> Callable[[str], bytes]:
    """Parse hex of one of ``lengths`` digits (a key, check value or KSN); anything else is
    a ValueError, which the option turns into a usage error."""

    def parse(text: str) -> bytes:
        return bytes.fromhex(text if len(text) in lengths else "?")

    return parse


_PIN_KEY_HELP = (
    "PIN key, 32, 48 or 64 hex digits: the AES PIN key or DUKPT initial key `host init` printed"
)
PinKeyOpt = Annotated[bytes | None, typer.Option(parser=_hex(32, 48, 64), help=_PIN_KEY_HELP)]
_KCV_HELP = "PIN key check value, 6 (AES) or 8 (TDES) hex digits"
PinKcvOpt = Annotated[bytes | None, typer.Option(parser=_hex(6, 8), help=_KCV_HELP)]
_KSN_HELP = "DUKPT initial KSN (TDES, 20 hex digits) or initial key ID (AES, 16)"
KsnOpt = Annotated[bytes | None, typer.Option(parser=_hex(16, 20), help=_KSN_HELP)]
_WORKING_KEYS_HELP = (
    "the working keys `host init` printed for a profile that loads them at provisioning: 80"
    " hex digits (TPK and TAK under the TMK, with check values)"
)
WorkingKeysOpt = Annotated[bytes | None, typer.Option(parser=_hex(80), help=_WORKING_KEYS_HELP)]


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
    pin_key: PinKeyOpt = None,
    pin_key_kcv: PinKcvOpt = None,
    initial_ksn: KsnOpt = None,
    working_keys: WorkingKeysOpt = None,
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


@terminal_app.command("selftest")
def terminal_selftest(as_json: JsonOpt = False) -> Reply:
    """Power-on self-test: database, host link, certificate, clock, disk, printer, reader."""
    data = _on_terminal(lambda: {"op": "selftest"})
    marks = {
        "ok": "[green]ok  [/green]",
        "warn": "[yellow]warn[/yellow]",
        "fail": "[red]FAIL[/red]",
    }
    if not data["card_payments"]:
        state = "card payment OFF" + (", cash works" if data["cash_payments"] else "")
    else:
        state = "ready: card and cash"
    lines: list[Any] = [state]
    for check in data["checks"]:
        lines.append(f"  {marks[check['status']]} {check['name']}: {check['detail']}")
        if check["next_step"]:
            lines.append(f"       → {check['next_step']}")
    ok = data["card_payments"]
    # A failed check is a resource the terminal cannot use (host, printer, disk): unavailable.
    return Reply(ok, "ok" if ok else "error", state, None if ok else "unavailable", data, lines)
