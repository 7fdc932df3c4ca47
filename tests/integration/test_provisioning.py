"""Provisioning refuses what would leave a terminal unsafe or stuck, and changes nothing
when it refuses: no pinned certificate (any host could answer for the bank), a nonsense
fingerprint, a new terminal ID while the old one still owes the host reversals or a
settlement."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from smartpos.cards.reading import CardInput
from smartpos.config import Settings
from smartpos.host.sandbox import provision_terminal
from smartpos.host.testcards import CATALOGUE
from smartpos.terminal.link import HostLink
from smartpos.terminal.setup import (
    ProvisionError,
    TerminalRuntime,
    open_terminal_db,
    pinned_fingerprint,
    provision,
)
from smartpos.terminal.tables import terminal_config
from tests.sandbox import MID, TID, Sandbox, running_sandbox

pytestmark = pytest.mark.integration
GOOD = CATALOGUE[0]


def config_row(rt: TerminalRuntime) -> object:
    with rt.engine.connect() as conn:
        return conn.execute(select(terminal_config)).first()


def provision_as(sb: Sandbox, rt: TerminalRuntime, tid: str, fingerprint: str | None) -> None:
    prov = provision_terminal(sb.host, tid, MID)
    provision(
        rt,
        tid=tid,
        mid=MID,
        merchant_name="测试商户",
        tmk=prov.tmk,
        tmk_kcv=prov.tmk_kcv,
        link_host="127.0.0.1",
        link_port=sb.server.port,
        host_fingerprint=fingerprint,
        profile="sandbox",
    )


def test_a_tls_terminal_must_pin_a_real_fingerprint(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            home = tmp_path / "t"
            rt = open_terminal_db(
                Settings(home=home, terminal_db_url=f"sqlite:///{home / 't.db'}"), durable=False
            )
            for bad in (None, "", "abc", "zz" * 32, sb.fingerprint[:-1]):
                with pytest.raises(ProvisionError, match="64 hex digits"):
                    provision_as(sb, rt, TID, bad)
                assert config_row(rt) is None  # nothing stored
            # As tools print it (colons, capitals) is fine; it is stored as the link compares.
            shown = ":".join(sb.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
            assert pinned_fingerprint(shown) == sb.fingerprint

            # A link that pins nothing refuses to connect at all (fail closed).
            t = sb.terminal()
            t.link = HostLink("127.0.0.1", sb.server.port, sb.profile, None)
            before = sb.service.stats.requests
            r = await t.sign_on()
            assert r.result == "error" and "no host certificate is pinned" in r.message
            assert sb.service.stats.requests == before

    asyncio.run(go())


def test_a_new_terminal_id_waits_for_the_old_ones_business(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            assert (await t.sale(100, CardInput.parse(GOOD.pan), "123456")).result == "approved"
            rt = TerminalRuntime(t.engine, t.vault)
            before = config_row(rt)
            with pytest.raises(ProvisionError, match="not settled"):
                provision_as(sb, rt, "10000002", sb.fingerprint)
            assert config_row(rt) == before
            assert (await t.settle()).result == "balanced"
            provision_as(sb, rt, "10000002", sb.fingerprint)
            row = config_row(rt)
            assert row is not None and row.tid == "10000002"  # type: ignore[attr-defined]
            assert row.stan >= before.stan and row.batch_no == before.batch_no + 1  # type: ignore[attr-defined]
            await t.link.close()

    asyncio.run(go())
