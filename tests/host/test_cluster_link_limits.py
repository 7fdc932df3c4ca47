"""The link limits hold for the host on several processes too (`host serve --workers N`):
the front-ends share one listening socket, and together keep no more untrusted links than
one process would; a terminal still gets in during the flood."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from smartpos.bench.host import SimTerminal, prepare_host
from smartpos.config import Settings
from smartpos.host.cluster import Cluster
from smartpos.host.links import LinkLimits
from smartpos.protocol.profiles import get_profile
from tests.host.test_link_limits import close_all, count_closed, raw_link

pytestmark = pytest.mark.integration


def test_front_ends_together_keep_the_untrusted_share(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (setup,) = prepare_host(home, 1)
    share = LinkLimits().max_untrusted
    flood = share * 2 + 100

    async def go() -> None:
        cluster = Cluster(Settings(home=home), workers=2, tls=False, profile="sandbox")
        await cluster.start("127.0.0.1", 0)
        try:
            held = [await raw_link(cluster.port, f"127.0.1.{1 + i % 11}") for i in range(flood)]
            await asyncio.sleep(0.5)
            kept = flood - await count_closed(held, 1.0)
            assert kept <= share, kept
            prof = replace(get_profile("sandbox"), tls=False)
            sim = SimTerminal(setup.tid, setup.mid, setup.pan, setup.tmk, prof, 100, False)
            await sim.connect("127.0.0.1", cluster.port, None)
            await sim.sign_on()
            assert await sim.purchase() == "00"
            await sim.close()
            close_all(held)
        finally:
            await cluster.close()

    asyncio.run(go())
