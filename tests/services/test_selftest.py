"""The power-on self-test: with the host up every check passes and the host certificate's
expiry is read from the link; with the host down card payment is off with its reason and
next step, cash still works; a certificate about to expire or expired, a full disk and a
clock in the past are each reported with what to do."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartpos.config import Settings
from smartpos.services import selftest
from smartpos.services.selftest import Status, run_selftest
from smartpos.services.terminal import TerminalService
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration


def _by_name(report: selftest.SelfTestReport) -> dict[str, selftest.Check]:
    return {c.name: c for c in report.checks}


def test_selftest_with_the_host_up_and_down(tmp_path: Path) -> None:
    async def go() -> None:
        settings = Settings(home=tmp_path / "home", printer="dummy")
        settings.home.mkdir(mode=0o700)
        async with running_sandbox(tmp_path / "sb") as sb:
            t = sb.terminal()
            service = TerminalService.open(settings, factory=lambda: t)
            try:
                up = await run_selftest(settings, service)
                checks = _by_name(up)
                assert up.card_payments and up.cash_payments, up
                assert set(checks) == {
                    "database",
                    "host_link",
                    "certificate",
                    "clock",
                    "disk",
                    "printer",
                    "card_reader",
                }
                assert checks["certificate"].status == Status.OK
                assert "valid until" in checks["certificate"].detail  # read from the TLS link
                # The certificate seen near its end, and after it.
                assert t.link.peer_not_after is not None  # type: ignore[attr-defined]
                near = t.link.peer_not_after - timedelta(days=10)  # type: ignore[attr-defined]
                soon = _by_name(await run_selftest(settings, service, now=near))
                assert (
                    soon["certificate"].status == Status.WARN
                    and "10 days" in soon["certificate"].detail
                )
                late = t.link.peer_not_after + timedelta(days=1)  # type: ignore[attr-defined]
                expired = await run_selftest(settings, service, now=late)
                assert _by_name(expired)["certificate"].status == Status.FAIL
                assert not expired.card_payments and expired.cash_payments
                past = await run_selftest(settings, service, now=datetime(2001, 1, 1, tzinfo=UTC))
                assert _by_name(past)["clock"].status == Status.FAIL and not past.cash_payments
                await sb.server.close()  # the host goes away
                await t.link.close()
                down = await run_selftest(settings, service)
            finally:
                await service.close()
        link = _by_name(down)["host_link"]
        assert link.status == Status.FAIL and "does not answer" in link.detail
        assert "cash sales still work" in link.next_step and "现金" in link.next_step_zh
        assert not down.card_payments and down.cash_payments
        assert down.to_dict()["checks"][1]["status"] == "fail"

    asyncio.run(go())


def test_a_nearly_full_disk_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path)

    class Usage:
        free = 10 * 1024 * 1024

    monkeypatch.setattr(selftest.shutil, "disk_usage", lambda _: Usage)
    check = selftest._disk(settings)
    assert check.status == Status.FAIL and "10 MB" in check.detail and check.next_step
