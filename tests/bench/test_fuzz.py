"""The host fuzzer (`smartpos bench fuzz`): its hostile frames get the answers
docs/protocol.md §10.2 gives them, its audit catches money moved without an approval, and a
short run against a real host process holds: no traceback, ledger balanced with every
transfer approved, a terminal's sales approved during every flood, memory bounded.

The run's seed is random and printed (``fuzz seed=…``); replay one with
``SMARTPOS_FUZZ_SEED=<seed>``."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from smartpos.bench.fuzz import FuzzConfig, run_fuzz
from smartpos.bench.fuzz.audit import Approvals, attribute
from smartpos.bench.fuzz.frames import ALLOWED_CODES, CLOSING, HostileFrames, Identity
from smartpos.protocol import codec
from smartpos.protocol.framing import read_body
from tests.host.test_bad_input import GOOD, transfer_count
from tests.sandbox import MID, TID, running_sandbox


@pytest.mark.integration
def test_every_hostile_kind_gets_its_answer_and_posts_nothing(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path, tls=False) as sb:
            t = sb.terminal(profile=sb.profile)
            before = transfer_count(sb)
            frames = HostileFrames(random.Random(5), sb.profile, Identity(TID, MID, GOOD.pan))
            outcomes: dict[str, set[str]] = {}
            for kind in frames.names:
                for _ in range(12):
                    wire = frames.kinds[kind]()
                    reader, writer = await asyncio.open_connection("127.0.0.1", sb.server.port)
                    writer.write(wire)
                    if kind == "length-truncated":
                        writer.write_eof()  # the rest never comes
                    try:
                        body = await asyncio.wait_for(read_body(reader), 5)
                        answer = codec.decode(body[5 + sb.profile.header_len :])
                        outcome = answer["39"] + (" echo" if answer["t"] == "0830" else "")
                    except asyncio.IncompleteReadError:
                        outcome = "closed"
                    finally:
                        writer.close()
                    outcomes.setdefault(kind, set()).add(outcome)
            for kind, seen in outcomes.items():
                if kind in CLOSING:
                    assert seen == {"closed"}, (kind, seen)
                else:
                    allowed = {*ALLOWED_CODES, "closed", "00 echo"}
                    assert seen <= allowed, (kind, seen)
            # The MAC gate and the checks before it answer every kind that is not closed.
            assert outcomes["bad-mac"] == outcomes["no-mac"] == {"A0"}
            assert outcomes["unknown-terminal"] == {"97"}
            assert outcomes["wrong-merchant"] == {"03"}
            assert outcomes["mti-unknown"] == {"12"}
            assert outcomes["secondary-bitmap"] == outcomes["unknown-bit"] == {"30"}
            assert "00 echo" in outcomes["echo-mutated"]
            assert transfer_count(sb) == before  # nothing posted
            assert (await t.echo()).result == "approved"

    asyncio.run(go())


def test_audit_accounts_each_transfer_to_an_approved_request() -> None:
    approvals = Approvals()
    approvals.record({"t": "0210", "39": "00", "41": "B0000000", "11": "000101", "13": "1123",
                      "4": "000000000100"})  # fmt: skip
    approvals.record({"t": "0210", "39": "51", "41": "B0000000", "11": "000102", "13": "1123",
                      "4": "000000000100"})  # fmt: skip
    made = {"B0000000:0200:1123:000101:hold"}
    ok = attribute("B0000000:0200:1123:000101:hold", 100, set(), made, approvals)
    assert ok is None
    # A declined request, a request never seen, another amount: all flagged.
    assert attribute("B0000000:0200:1123:000102:hold", 100, set(), made, approvals)
    assert attribute("B0000000:0200:1123:000999:hold", 100, set(), made, approvals)
    assert attribute("B0000000:0200:1123:000101:hold", 101, set(), made, approvals)
    # Captures and upload undos need an approved settlement of that terminal.
    capture = "B0000000:0200:1123:000101:hold:capture"
    assert attribute(capture, 100, set(), made, approvals) == "capture without settlement"
    approvals.record({"t": "0510", "39": "00", "41": "B0000000", "11": "000103", "13": "1123",
                      "48": "0" * 62})  # fmt: skip
    assert attribute(capture, 100, set(), made, approvals) is None
    assert attribute("B0000000:upload:000001:7:undo", 100, set(), made, approvals) is None
    assert attribute("X:capture", 100, set(), made, approvals) == "capture of an unknown hold"


@pytest.mark.integration
def test_a_short_fuzz_run_holds() -> None:
    env_seed = os.environ.get("SMARTPOS_FUZZ_SEED")
    cfg = FuzzConfig(
        frames=2_000,
        seconds=6.0,
        seed=int(env_seed) if env_seed else None,
        auth_terminals=3,
        hostile_links=3,
        flood_links=600,
        flood_sources=16,
        flood_rate=800.0,
        rss_limit_mb=250.0,
    )
    report = run_fuzz(cfg, progress=print)
    d = report.to_dict()
    where = f"fuzz seed={report.seed}"
    assert report.frames > 0 and report.closes > 0, where
    assert report.tracebacks == 0, where
    assert report.host_96 == 0 and not report.unexpected, (where, d["unexpected_answers"])
    assert report.host_exit == 0, where
    assert report.audit is not None and report.audit.balanced, (where, d["ledger_problems"])
    assert report.audit.new_transfers > 0 and not report.audit.unattributed, (
        where,
        d["transfers_unattributed"],
    )
    assert [s["result"] for s in report.terminal_sales] == ["approved"] * 6, (where, d)
    assert 0 < report.rss_mb_peak <= cfg.rss_limit, (where, d["rss_mb_by_phase"])
    # The log got a line per reject only up to its rate; the rest were counted.
    assert sum(report.rejects_suppressed.values()) > 0, where
    assert report.ok, where
    # Its JSON result carries exactly the keys docs/cli.md lists for `bench fuzz`.
    from tests.test_cli_json import _documented

    assert set(d) == _documented()["bench fuzz"][0], where
