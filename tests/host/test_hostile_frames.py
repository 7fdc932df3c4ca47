"""Hostile frames found by fuzzing the running host (issue 7, item 15): each gets the answer
docs/protocol.md §10.2 gives it (30 with echo, 12, or a closed link), nothing is posted, no
traceback reaches the log, and a flood of them costs the log a few lines, not one each."""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path

import pytest

from smartpos.host.ledger import check
from smartpos.protocol import codec
from smartpos.protocol.codec import MessageError
from smartpos.protocol.messages import response_mti
from tests.host.test_bad_input import frame, purchase_fields, send_raw, transfer_count
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.exc_text]


def test_keyed_expiry_month_13_is_a_format_error_and_posts_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            await t.sign_on()
            base = {
                **purchase_fields(t, 1000, None, entry="011"),
                "11": "000700",
                "12": "101010",
                "13": "1123",
            }
            before = transfer_count(sb)
            for bad in ("3013", "3000", "3099"):
                raw = codec.encode({**base, "14": bad}, mac=t._mac)
                resp = await send_raw(sb, frame(sb, raw))
                assert resp is not None
                answer = codec.decode(resp)
                assert (answer["t"], answer["39"], answer["11"]) == ("0210", "30", "000700")
            assert transfer_count(sb) == before
            # Nothing of the bad request was kept: the same trace with a good expiry is a
            # new request (approved), not a duplicate (94) or a replay of the 30.
            raw = codec.encode({**base, "14": "3012"}, mac=t._mac)
            resp = await send_raw(sb, frame(sb, raw))
            assert resp is not None and codec.decode(resp)["39"] == "00"
            assert transfer_count(sb) == before + 1
            with sb.host.engine.connect() as conn:
                assert check(conn).balanced

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    assert tracebacks(caplog) == []


def test_response_mti_exists_only_for_requests_and_advices() -> None:
    assert [response_mti(m) for m in ("0200", "0220", "0401", "0500", "0820")] == [
        "0210",
        "0230",
        "0410",
        "0510",
        "0830",
    ]
    for mti in ("0290", "0210", "0230", "0810", "0999", "02", "abcd"):
        with pytest.raises(MessageError):
            response_mti(mti)


def test_mti_that_is_not_a_request_closes_the_link_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            await t.sign_on()
            base = {
                **purchase_fields(t, 1000, None, entry="011"),
                "11": "000800",
                "12": "101010",
                "13": "1123",
            }
            before = transfer_count(sb)
            # 0290: third digit 9 (no response MTI exists); 0210/0810: answers sent as
            # requests. None of them is answered: the link is closed.
            for mti in ("0290", "0890", "0210", "0810"):
                raw = codec.encode({**base, "t": mti}, mac=t._mac)
                assert await send_raw(sb, frame(sb, raw)) is None, mti
            # An unsupported request class still gets 12 with its response MTI.
            raw = codec.encode({**base, "t": "0100"}, mac=t._mac)
            resp = await send_raw(sb, frame(sb, raw))
            assert resp is not None
            assert (codec.decode(resp)["t"], codec.decode(resp)["39"]) == ("0110", "12")
            assert transfer_count(sb) == before
            # The host still serves.
            assert (await t.echo()).result == "approved"

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    assert tracebacks(caplog) == []


def test_a_flood_of_bad_length_prefixes_logs_a_few_lines_and_a_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    floods = 300

    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            for i in range(floods):
                length = 3 if i % 2 else 60000
                assert await send_raw(sb, struct.pack(">H", length) + b"x" * 16) is None
            sb.server.rejects.flush(force=True)

    with caplog.at_level(logging.WARNING, logger="smartpos.host"):
        asyncio.run(go())
    assert tracebacks(caplog) == []
    lines = [r.getMessage() for r in caplog.records if r.name == "smartpos.host"]
    suppressed = [ln for ln in lines if "suppressed" in ln]
    rejected = [ln for ln in lines if ln.startswith("rejected (framing) ") and ln not in suppressed]
    # Each line names the peer and the reason; far fewer lines than frames, and the rest
    # are counted in summaries.
    assert rejected and all("127.0.0.1" in ln and "frame length" in ln for ln in rejected)
    assert len(rejected) + len(suppressed) < floods / 5, lines[:20]
    counted = sum(int(ln.split("…")[1].split()[0]) for ln in suppressed)
    assert len(rejected) + counted == floods
