"""Provisioning: load the terminal's identity and master key (the key-loading ceremony)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import Engine, delete

from smartpos.config import Settings
from smartpos.db.engine import make_engine
from smartpos.db.migrate import upgrade
from smartpos.keys.keys import KeyCheckError, kcv
from smartpos.keys.vault import Vault
from smartpos.protocol.profiles import get_profile
from smartpos.terminal.engine import Terminal
from smartpos.terminal.link import HostLink
from smartpos.terminal.tables import terminal_config


@dataclass
class TerminalRuntime:
    engine: Engine
    vault: Vault


def open_terminal_db(settings: Settings, *, durable: bool = True) -> TerminalRuntime:
    engine = make_engine(settings.resolved_terminal_db_url, durable=durable)
    upgrade(engine, "terminal")
    return TerminalRuntime(engine, Vault.open_dir(settings.terminal_dir))


def provision(
    rt: TerminalRuntime,
    *,
    tid: str,
    mid: str,
    merchant_name: str,
    tmk: bytes,
    tmk_kcv: bytes,
    link_host: str,
    link_port: int,
    host_fingerprint: str | None,
    profile: str,
) -> None:
    """Store identity and TMK (sealed). Refuses a TMK whose check value does not match."""
    get_profile(profile)
    if len(tid) != 8 or len(mid) != 15:
        raise ValueError("terminal ID must be 8 characters and merchant ID 15")
    if len(tmk) != 16 or kcv(tmk) != tmk_kcv:
        raise KeyCheckError("TMK check value does not match: key not loaded")
    with rt.engine.begin() as conn:
        conn.execute(delete(terminal_config))
        conn.execute(
            terminal_config.insert().values(
                id=1,
                tid=tid,
                mid=mid,
                merchant_name=merchant_name,
                profile=profile,
                link_host=link_host,
                link_port=link_port,
                host_fingerprint=host_fingerprint,
                sealed_tmk=rt.vault.seal(tmk, b"tmk:" + tid.encode()),
                sealed_token_key=rt.vault.seal(os.urandom(32), b"token_key"),
                stan=0,
                invoice_no=0,
                batch_no=1,
            )
        )


def open_terminal(settings: Settings) -> Terminal:
    """The provisioned terminal, with its link to the configured acquirer."""
    from sqlalchemy import select

    rt = open_terminal_db(settings)
    with rt.engine.connect() as conn:
        cfg = conn.execute(select(terminal_config).where(terminal_config.c.id == 1)).first()
    if cfg is None:
        from smartpos.terminal.engine import TerminalError

        raise TerminalError(
            "terminal is not provisioned: run `smartpos demo` once or `smartpos terminal provision`"
        )
    profile = get_profile(cfg.profile)
    link = HostLink(cfg.link_host, cfg.link_port, profile, cfg.host_fingerprint)
    return Terminal(rt.engine, rt.vault, profile, link, currency=settings.currency)
