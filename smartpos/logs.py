"""Logging set-up: every record leaves with card numbers masked and track data removed.

The code never logs cardholder data on purpose; this is the net under it. A PAN can still
reach a log line by accident — inside an exception message from a library, a repr of a
request, a traceback — so every handler smartpos installs carries :class:`ScrubFilter`:

* a run of 13–19 digits, or digits grouped as on a card (4-4-4-4, 4-6-5, with spaces or
  dashes), that passes the Luhn check is shown as first 6 / last 4 (``621234******0001``):
  amounts, RRNs, STANs and dates are shorter or fail Luhn and stay as they are;
* anything shaped like track 2 (PAN, ``=`` or ``D``, expiry and service code…) or track 1
  (``%B…^NAME^…``) is replaced by ``[track data removed]``.

It applies to the message, the formatted exception and the stack text of each record.
"""

from __future__ import annotations

import logging
import re

__all__ = ["ScrubFilter", "scrub", "setup_logging"]

_TRACK1 = re.compile(r"%?B[0-9]{12,19}\^[^^\n]{0,26}\^[0-9]{4}[^\s?]*\??")
_TRACK2 = re.compile(r";?[0-9]{12,19}[=D][0-9]{4}[0-9]*\??")
# As printed on cards: 4-4-4-4(-3) or Amex 4-6-5, with spaces or dashes; or a bare run.
_PAN_GROUPED = re.compile(
    r"(?<![0-9])(?:[0-9]{4}([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{1,7}|[0-9]{4}([ -])[0-9]{6}\2[0-9]{5})"
    r"(?![0-9])"
)
_PAN = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")
_SEPARATORS = re.compile(r"[ -]")
TRACK_REMOVED = "[track data removed]"


def _mask(match: re.Match[str]) -> str:
    # Imported at the first digit run that could be a card number: every command imports
    # this module, and `smartpos.cards` brings the EMV and crypto libraries along.
    from smartpos.cards.pan import luhn_ok

    text = match.group(0)
    digits = _SEPARATORS.sub("", text)
    if not luhn_ok(digits):
        return text
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def scrub(text: str) -> str:
    """``text`` with track data removed and Luhn-valid card numbers masked."""
    text = _TRACK1.sub(TRACK_REMOVED, text)
    text = _TRACK2.sub(TRACK_REMOVED, text)
    text = _PAN_GROUPED.sub(_mask, text)
    return _PAN.sub(_mask, text)


class ScrubFilter(logging.Filter):
    """A handler filter that scrubs each record's text before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def setup_logging(level: int = logging.INFO, fmt: str = "%(asctime)s %(name)s %(message)s") -> None:
    """Configure the root logger (stderr) with the scrubbing filter on every handler; a
    second call only changes the level."""
    logging.basicConfig(level=level, format=fmt)
    root = logging.getLogger()
    root.setLevel(level)
    # Alembic reports every migration step at INFO; `host serve` (INFO) is for the link.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())
