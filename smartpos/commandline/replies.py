"""Replies of the terminal and host commands: the same facts as JSON data (amounts in minor
units) and as lines for people (amounts formatted with their currency: ``99,843.66 CNY``).

The lines are made only when they are printed (rich's markup escaping is imported then):
under ``--json`` nothing of rich is loaded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smartpos.commandline.result import Lines, Reply
from smartpos.money import Money

__all__ = ["check_reply", "settle_reply", "txn_reply"]

_COLOURS = {"approved": "green", "declined": "yellow"}
_MONEY_KINDS = ("sale", "void", "refund")
# What a person sees of a transaction, in this order (label, key in the data).
_TXN_LINES = (
    ("kind", "kind"),
    ("card", "pan_masked"),
    ("brand", "brand"),
    ("entry", "entry_mode"),
    ("trace (STAN)", "stan"),
    ("voucher", "invoice_no"),
    ("batch", "batch_no"),
    ("auth code", "auth_code"),
    ("RRN", "rrn"),
    ("reversal", "reversal"),
)


def money(amount_minor: int, currency: str) -> str:
    """``9984366, "CNY"`` → ``"99,843.66 CNY"``."""
    return str(Money.of(amount_minor, currency))


def txn_reply(data: Mapping[str, Any], receipt: str | None = None) -> Reply:
    """The reply for a terminal transaction (``TxnResult.to_dict()``). ``receipt`` says what
    became of the slip when one was asked for."""
    data = dict(data)
    word, rc, message = data.pop("result"), data.pop("response_code"), data.pop("message")
    if receipt is not None:
        data["receipt"] = receipt

    def lines() -> Lines:
        from rich.markup import escape

        colour = _COLOURS.get(word, "red")
        said = " ".join(escape(part) for part in (rc, message) if part)
        shown: list[str] = [f"[{colour}]{word.upper()}[/{colour}] {said}"]
        currency = data["currency"]
        if data["kind"] in _MONEY_KINDS:
            shown.append(f"  amount: {money(data['amount_minor'], currency)}")
        shown += [
            f"  {label}: {escape(str(data[key]))}" for label, key in _TXN_LINES if data.get(key)
        ]
        if data.get("balance_minor") is not None:
            shown.append(f"  balance: {money(data['balance_minor'], currency)}")
        if receipt is not None:
            shown.append(f"  receipt: {escape(receipt)}")
        if data.get("repeated"):
            shown.append(
                f"  order {escape(str(data.get('order_ref')))}: already done — this is its"
                " result, nothing was sent again"
            )
        return shown

    return Reply(
        word == "approved",
        word,
        message,
        code=rc or (None if word == "approved" else "incomplete"),
        data=data,
        lines=lines,
    )


def settle_reply(out: Mapping[str, Any], currency: str) -> Reply:
    """The reply for a settlement (``Terminal.settle()``'s report)."""
    data = {**out, "currency": currency}
    label = data.pop("result")
    tc = data["tc_advices"]
    message = f"batch {data['batch_no']} settled: {label.replace('_', ' ')}"
    lines = [
        f"{message}; next batch {data['next_batch_no']}",
        f"  sales: {data['sales_count']} for {money(data['sales_minor'], currency)}",
        f"  refunds: {data['refunds_count']} for {money(data['refunds_minor'], currency)}",
        f"  batch upload: {data['uploaded']} sent, {data['upload_refused']} refused",
        f"  TC advices: {tc['sent']} sent, {tc['refused']} refused, {tc['pending']} pending",
    ]
    return Reply(True, label, message, data=data, lines=lines)


def check_reply(report: Any, currency: str) -> Reply:
    """The reply for ``host check`` (a ``ledger.check`` report)."""
    data = {
        "balanced": report.balanced,
        "accounts": report.accounts,
        "transfers": report.transfers,
        "currency": currency,
        "debits_posted_minor": report.debits_posted,
        "credits_posted_minor": report.credits_posted,
        "debits_pending_minor": report.debits_pending,
        "credits_pending_minor": report.credits_pending,
        "problems": list(report.problems),
    }
    state = "balanced" if report.balanced else "not balanced"
    message = f"ledger {state}: {report.accounts} accounts, {report.transfers} transfers"

    def lines() -> Lines:
        from rich.markup import escape

        colour = "green" if report.balanced else "red"
        return [
            f"ledger [{colour}]{state.upper()}[/{colour}]: {report.accounts} accounts,"
            f" {report.transfers} transfers",
            f"  posted: debits {money(report.debits_posted, currency)}"
            f" = credits {money(report.credits_posted, currency)}",
            f"  pending: debits {money(report.debits_pending, currency)}"
            f" = credits {money(report.credits_pending, currency)}",
            *(f"[red]  - {escape(p)}[/red]" for p in report.problems),
        ]

    return Reply(
        report.balanced,
        "balanced" if report.balanced else "not_balanced",
        message,
        code=None if report.balanced else "inconsistent",
        data=data,
        lines=lines,
    )
