"""Test fixtures: a real host (TLS, its own SQLite or PostgreSQL database) and a real
terminal (its own database) talking over loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from smartpos import bootstrap
from smartpos.config import Settings
from smartpos.host.links import LinkLimits
from smartpos.host.pipeline import HostService
from smartpos.host.sandbox import (
    HostRuntime,
    Provisioned,
    ensure_merchant,
    provision_terminal,
    seed_test_cards,
)
from smartpos.host.server import HostServer
from smartpos.host.tls import ensure_certificate, fingerprint
from smartpos.protocol.profiles import AcquirerProfile, KeyDelivery, get_profile
from smartpos.terminal.engine import Terminal
from smartpos.terminal.link import HostLink
from smartpos.terminal.setup import TerminalRuntime, open_terminal_db, provision

TID = "10000001"
MID = "898310048160001"


@dataclass
class Sandbox:
    settings: Settings
    host: HostRuntime
    service: HostService
    server: HostServer
    profile: AcquirerProfile
    fingerprint: str

    def terminal(
        self, tid: str = TID, port: int | None = None, profile: AcquirerProfile | None = None
    ) -> Terminal:
        return self.provisioned(tid, port, profile)[0]

    def provisioned(
        self, tid: str = TID, port: int | None = None, profile: AcquirerProfile | None = None
    ) -> tuple[Terminal, TerminalRuntime, Provisioned]:
        """The key-loading ceremony of the profile: the host makes the terminal's TMK (and
        the PIN key or working keys its profile needs), the terminal loads them; the
        terminal, its runtime and what the host handed out."""
        prof = profile or self.profile
        prov = provision_terminal(
            self.host,
            tid,
            MID,
            prof.pin_scheme,
            working_keys=prof.key_delivery == KeyDelivery.PROVISIONING,
        )
        self.service.reload_terminals()
        home = self.settings.home / f"terminal-{tid}"
        tset = Settings(home=home, terminal_db_url=f"sqlite:///{home / 'terminal.db'}")
        rt = open_terminal_db(tset, durable=False)
        provision(
            rt,
            tid=tid,
            mid=MID,
            merchant_name="测试商户",
            tmk=prov.tmk,
            tmk_kcv=prov.tmk_kcv,
            link_host="127.0.0.1",
            link_port=port or self.server.port,
            host_fingerprint=self.fingerprint,
            profile=prof.name,
            pin_key=prov.pin_key,
            pin_key_kcv=prov.pin_key_kcv,
            initial_ksn=prov.initial_ksn,
            working_keys=prov.working_keys,
        )
        link = HostLink("127.0.0.1", port or self.server.port, prof, self.fingerprint)
        return Terminal(rt.engine, rt.vault, prof, link), rt, prov


@contextlib.asynccontextmanager
async def running_sandbox(
    home: Path,
    *,
    host_db_url: str | None = None,
    profile: str | AcquirerProfile = "sandbox",
    tls: bool = True,
    durable: bool = False,
    limits: LinkLimits | None = None,
    **service_kw: object,
) -> AsyncIterator[Sandbox]:
    settings = Settings(home=home, host_db_url=host_db_url)
    rt = bootstrap.host_runtime(settings, durable=durable)
    seed_test_cards(rt)
    ensure_merchant(rt, MID, "测试商户")
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if not tls:
        from dataclasses import replace

        prof = replace(prof, tls=False)
    service = bootstrap.host_service(rt, prof, **service_kw)  # type: ignore[arg-type]
    cert, _ = ensure_certificate(settings.host_dir)
    server = bootstrap.host_server(settings, service, tls=tls, limits=limits)
    await server.start("127.0.0.1", 0)
    try:
        yield Sandbox(settings, rt, service, server, prof, fingerprint(cert))
    finally:
        await server.close()
        rt.engine.dispose()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
