"""Card data and PIN entry for the command line: never an argument, never echoed.

Arguments are visible to every user of the machine (``/proc/<pid>/cmdline``, ``ps``) and are
kept in shell history, so the card (PAN or track 2) and the PIN come from

* a hidden prompt (``getpass``: nothing echoed) when standard input is a terminal — the
  cashier keys them, or a keyboard-wedge reader "types" the track;
* the next line of standard input otherwise, so scripts and tests pipe them in: first the
  card, then the PIN (``printf '6212340000000001\\n123456\\n' | smartpos terminal sale …``).

``getpass`` alone is not enough: it reads from ``/dev/tty`` whenever the process has a
terminal, even when the data is piped in.
"""

from __future__ import annotations

import getpass
import sys

from smartpos.commandline.app import UserError

__all__ = ["CARD_PROMPT", "PIN_PROMPT", "read_card", "read_pin"]

CARD_PROMPT = "Card (swipe or key the number): "
PIN_PROMPT = "PIN: "
# Track 2 is at most 40 characters (ISO 7813); a line far longer is not a card read.
_LINE_MAX_CHARS = 256


def read_card() -> str:
    """The card as read or keyed: a PAN or track 2 (not parsed here)."""
    return _read_secret(CARD_PROMPT, "card")


def read_pin() -> str:
    """The cardholder's PIN (checked by the PIN block, 4 to 12 digits)."""
    return _read_secret(PIN_PROMPT, "PIN")


def _read_secret(prompt: str, what: str) -> str:
    stdin = sys.stdin
    if stdin is None:
        raise UserError(f"no {what}: standard input is closed")
    try:
        if stdin.isatty():
            text = getpass.getpass(prompt)
        else:
            line = stdin.readline(_LINE_MAX_CHARS + 1)
            if not line:
                raise UserError(
                    f"no {what} on standard input: give one line for the card, then one for"
                    " the PIN (or run it at a terminal to be asked)"
                )
            text = line.rstrip("\r\n")
    except UnicodeDecodeError:
        raise UserError(f"the {what} is not text: use digits (and = for track 2)") from None
    if len(text) > _LINE_MAX_CHARS:
        raise UserError(f"the {what} line is too long to be a {what}")
    if not text.strip():
        raise UserError(f"no {what} entered")
    return text
