"""Logs never carry a card number or track data, whatever ends up in a log line."""

from __future__ import annotations

import io
import logging

from hypothesis import given
from hypothesis import strategies as st

from smartpos.cards import luhn_check_digit
from smartpos.logs import TRACK_REMOVED, ScrubFilter, scrub

PAN = "6212340000000001"
TRACK2 = "6212340000000001=30121010000000000"


@st.composite
def pans(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=12, max_size=18))
    return body + luhn_check_digit(body)


@given(pans(), st.text(max_size=20), st.text(max_size=20))
def test_no_valid_pan_survives(pan: str, before: str, after: str) -> None:
    # Separate the PAN from surrounding digits, as any real text would.
    out = scrub(f"{before} {pan} {after}")
    assert pan not in out


def test_masking_keeps_first_six_and_last_four() -> None:
    assert scrub(f"card {PAN} declined") == "card 621234******0001 declined"
    assert scrub("card 6212 3400 0000 0001.") == "card 621234******0001."
    assert scrub("card 6212-3400-0000-0001") == "card 621234******0001"


def test_track_data_is_removed() -> None:
    assert scrub(f"track {TRACK2} read") == f"track {TRACK_REMOVED} read"
    assert scrub("t2 6212340000000001D3012101000000000F") == f"t2 {TRACK_REMOVED}F"
    track1 = "%B6212340000000001^ZHANG/SAN^30121010000000000000?"
    assert scrub(f"t1 {track1}") == f"t1 {TRACK_REMOVED}"


def test_other_numbers_stay() -> None:
    text = "amount 000000001234 rrn 261100000001 stan 000123 tid 10000001 n 4111111111111112"
    assert scrub(text) == text  # the last one is 16 digits but fails Luhn


def test_handler_output_is_scrubbed_message_args_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubFilter())
    log = logging.getLogger("smartpos.test.scrub")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("request from card %s with track %s", PAN, TRACK2)
        try:
            raise ValueError(f"bad field 2: {PAN}")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert PAN not in out
    assert "621234******0001" in out and TRACK_REMOVED in out
    assert "ValueError: bad field 2: 621234******0001" in out


def test_the_cli_logs_through_the_filter() -> None:
    import subprocess
    import sys

    code = (
        "import logging; from smartpos.cli import app\n"
        "try:\n    app(['host', '--help'])\nexcept SystemExit:\n    pass\n"
        f"logging.getLogger('smartpos.host').warning('card %s', '{PAN}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "621234******0001" in done.stderr, done.stderr
    assert PAN not in done.stderr
