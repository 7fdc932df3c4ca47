"""The power-on self-test: what a cashier checks before the first sale, each result with
its next step in plain words (English and Chinese).

The checks: the terminal's database, the link to the host (an echo test, 0820), the host
certificate's expiry (read from the TLS handshake of that echo), the clock, the disk, the
receipt printer and the card reader. A failed host link disables card payment only — the
report says so, and that cash still works; any other failure stops selling until it is
fixed. The cashier app shows the report as its first screen; `smartpos selftest` prints it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smartpos.config import Settings
    from smartpos.services.terminal import TerminalService
    from smartpos.terminal.engine import Terminal

__all__ = ["Check", "SelfTestReport", "Status", "run_selftest"]

DISK_WARN_BYTES = 500 * 1024 * 1024  # a year of journal and receipts fits many times
DISK_FAIL_BYTES = 50 * 1024 * 1024
CERT_WARN = timedelta(days=30)


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but needs attention soon
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    name: str  # database | host_link | certificate | clock | disk | printer | card_reader
    status: Status
    detail: str
    next_step: str = ""  # what to do (English)
    next_step_zh: str = ""  # the same in Chinese


@dataclass(frozen=True)
class SelfTestReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def card_payments(self) -> bool:
        """Card payment is possible: every check passed but warnings."""
        return all(c.status != Status.FAIL for c in self.checks)

    @property
    def cash_payments(self) -> bool:
        """Cash needs everything but the host (its link and certificate)."""
        return all(
            c.status != Status.FAIL
            for c in self.checks
            if c.name not in ("host_link", "certificate")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "card_payments": self.card_payments,
            "cash_payments": self.cash_payments,
            "checks": [{**asdict(c), "status": str(c.status)} for c in self.checks],
        }


async def run_selftest(
    settings: Settings, service: TerminalService, *, now: datetime | None = None
) -> SelfTestReport:
    """Run every check (each on its own: one failing does not hide the others)."""
    now = now or datetime.now(UTC)
    checks = [await _database(service)]
    link, cert = await _host(service, now)
    checks += [link, cert, _clock(now), _disk(settings), _printer(settings)]
    checks.append(await _card_reader(service))
    return SelfTestReport(checks)


async def _database(service: TerminalService) -> Check:
    async def read(t: Terminal) -> str:
        return t.batch_no()

    try:
        batch = await service.call(read)
    except Exception as exc:  # any failure of the database is this check's answer
        return Check(
            "database",
            Status.FAIL,
            f"the terminal's database cannot be read: {exc}",
            "restore the data directory from its backup, or call support",
            "请从备份恢复数据目录，或联系技术支持",
        )
    return Check("database", Status.OK, f"journal readable, open batch {batch}")


async def _host(service: TerminalService, now: datetime) -> tuple[Check, Check]:
    echo = await service.echo()

    async def expiry(t: Terminal) -> datetime | None:
        return getattr(t.link, "peer_not_after", None)

    if echo.result != "approved":
        link = Check(
            "host_link",
            Status.FAIL,
            f"the bank's host does not answer: {echo.message}",
            "card payment is off until the link is back: check the network cable or Wi-Fi;"
            " cash sales still work",
            "银行主机无响应，暂停刷卡收款：请检查网线或无线网络；现金收款仍可进行",
        )
        return link, Check("certificate", Status.WARN, "not checked: no link to the host")
    link = Check("host_link", Status.OK, f"echo answered {echo.response_code}")
    not_after = await service.call(expiry)
    if not_after is None:
        return link, Check("certificate", Status.OK, "this acquirer's link has no certificate")
    left = not_after - now
    if left <= timedelta(0):
        return link, Check(
            "certificate",
            Status.FAIL,
            f"the host's certificate expired on {not_after:%Y-%m-%d}",
            "card payment is off: ask the acquirer for the new certificate and provision it",
            "主机证书已过期，暂停刷卡收款：请向收单机构索取新证书并重新装载",
        )
    if left < CERT_WARN:
        return link, Check(
            "certificate",
            Status.WARN,
            f"the host's certificate expires on {not_after:%Y-%m-%d} ({left.days} days)",
            "ask the acquirer for the new certificate before then",
            "请在到期前向收单机构索取新证书",
        )
    return link, Check("certificate", Status.OK, f"valid until {not_after:%Y-%m-%d}")


def _clock(now: datetime) -> Check:
    if not 2024 <= now.year <= 2099:
        return Check(
            "clock",
            Status.FAIL,
            f"the clock says {now:%Y-%m-%d %H:%M} UTC",
            "set the date and time (receipts, batches and card expiry depend on it)",
            "请设置正确的日期和时间（签购单、批次和卡片有效期都依赖它）",
        )
    return Check("clock", Status.OK, f"{now:%Y-%m-%d %H:%M} UTC")


def _disk(settings: Settings) -> Check:
    free = shutil.disk_usage(settings.home).free
    mb = free // (1024 * 1024)
    if free < DISK_FAIL_BYTES:
        return Check(
            "disk",
            Status.FAIL,
            f"only {mb} MB free for the journal",
            "free disk space before selling: a sale that cannot be journaled is not made",
            "磁盘空间不足：请先清理空间再收款",
        )
    if free < DISK_WARN_BYTES:
        return Check(
            "disk",
            Status.WARN,
            f"{mb} MB free",
            "free some disk space soon",
            "请尽快清理磁盘空间",
        )
    return Check("disk", Status.OK, f"{mb:,} MB free")


def _printer(settings: Settings) -> Check:
    from smartpos.devices.printer import PrinterError, ReceiptPrinter

    try:
        ReceiptPrinter(settings).check()
    except PrinterError as exc:
        return Check(  # a warning: the sale stands without its slip
            "printer",
            Status.WARN,
            str(exc),
            "check the printer's power, cable and paper; sales can go on and slips be"
            " reprinted later",
            "请检查打印机电源、连线和纸张；可继续收款，稍后补打签购单",
        )
    return Check("printer", Status.OK, f"{settings.printer} printer answers")


async def _card_reader(service: TerminalService) -> Check:
    async def reader(t: Terminal) -> str:
        return type(t.reader).__name__ if t.reader is not None else "simulated (on first card)"

    return Check("card_reader", Status.OK, await service.call(reader))
