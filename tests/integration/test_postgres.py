"""The host on PostgreSQL (the multi-store deployment), for real: a fresh database per run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartpos.cards.reading import CardInput
from smartpos.host.ledger import check
from smartpos.host.testcards import CATALOGUE
from tests.integration.test_card_flows import balance_of
from tests.pg import fresh_database
from tests.sandbox import running_sandbox

pytestmark = [pytest.mark.postgres, pytest.mark.integration]


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def test_card_flows_on_postgres(tmp_path: Path, pg_url: str) -> None:
    good = CATALOGUE[0]

    async def go() -> None:
        async with running_sandbox(tmp_path, host_db_url=pg_url) as sb:
            assert sb.host.engine.dialect.name == "postgresql"
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            start = balance_of(sb, good)
            sale = await t.sale(10_000, CardInput.parse(good.pan), "123456")
            assert sale.result == "approved"
            sale2 = await t.sale(5_000, CardInput.parse(good.track2), "123456")
            assert (await t.void(stan=sale2.stan)).result == "approved"
            assert (await t.refund(2_500, CardInput.parse(good.pan), rrn=sale.rrn)).result == (
                "approved"
            )
            declined = await t.sale(100, CardInput.parse(good.pan), "000000")
            assert declined.response_code == "55"
            out = (await t.settle()).to_dict()
            assert out["result"] == "balanced"
            assert balance_of(sb, good) == start - 7_500
            with sb.host.engine.connect() as conn:
                report = check(conn)
            assert report.balanced, report.problems
            assert report.debits_pending == 0
            await t.link.close()

    asyncio.run(go())


def test_duplicate_request_posts_once_on_postgres(tmp_path: Path, pg_url: str) -> None:
    """The same purchase message sent twice gets the same answer and one hold."""
    from smartpos.protocol import codec
    from smartpos.terminal.link import HostLink

    good = CATALOGUE[0]

    async def go() -> None:
        async with running_sandbox(tmp_path, host_db_url=pg_url) as sb:
            t = sb.terminal()
            await t.sign_on()
            fields = {
                "t": "0200",
                "3": "000000",
                "4": "000000001000",
                "11": "000777",
                "12": "101010",
                "13": "1123",
                "22": "011",
                "25": "00",
                "26": "12",
                "2": good.pan,
                "41": t.tid,
                "42": t.mid,
                "49": "156",
                "52": t._card_fields(CardInput.parse(good.pan), "123456")["52"],
                "60": "22000001000",
            }
            raw = codec.encode(fields, mac=t._mac)
            link = HostLink("127.0.0.1", sb.server.port, sb.profile, sb.fingerprint)
            start = balance_of(sb, good)
            first = codec.decode(await link.exchange(raw))
            second = codec.decode(await link.exchange(raw))
            assert first["39"] == "00"
            assert first == second  # the original answer, RRN and auth code included
            assert balance_of(sb, good) == start - 1_000
            await link.close()
            await t.link.close()

    asyncio.run(go())
