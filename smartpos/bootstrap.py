"""The one place where smartpos is wired together (DESIGN §3.5).

Entry points — the command line, the host's front-end processes, the benchmarks, the
protocol examples, the tests — ask here for a host service or a terminal service instead of
assembling database, keys, processor, writer and profile themselves. Imports happen inside
the functions: a command that needs only the terminal loads nothing of the host.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from smartpos.config import Settings
    from smartpos.db.lock import ProcessLock
    from smartpos.host.context import Context
    from smartpos.host.links import LinkLimits
    from smartpos.host.pipeline import HostService, Writer
    from smartpos.host.processor import Processor
    from smartpos.host.sandbox import HostRuntime
    from smartpos.host.server import HostServer
    from smartpos.protocol.profiles import AcquirerProfile
    from smartpos.services.terminal import TerminalService
    from smartpos.terminal.engine import Terminal

__all__ = ["host_runtime", "host_server", "host_service", "pos_app", "terminal_service"]


def host_runtime(settings: Settings, *, durable: bool = True) -> HostRuntime:
    """The host's database (migrated), vault, soft HSM and PAN tokenizer."""
    from smartpos.host.sandbox import open_host

    return open_host(settings, durable=durable)


def host_service(
    rt: HostRuntime,
    profile: AcquirerProfile | str,
    *,
    writer: Writer | None = None,
    writer_lock: ProcessLock | None = None,
    max_batch: int = 256,
    after_commit: Callable[[list[Context]], None] | None = None,
    processor: Processor | None = None,
) -> HostService:
    """The host's request pipeline on ``rt`` for ``profile``: its own writer (holding
    ``writer_lock``) or, in a front-end process, the ``writer`` it forwards to.
    ``processor``: one with injected clock and codes (the protocol examples). The processor
    verifies PIN blocks under the profile's PIN scheme (docs/pin-security.md)."""
    from smartpos.host.pipeline import HostService
    from smartpos.host.processor import fingerprinted
    from smartpos.protocol.profiles import KeyDelivery, resolve_profile

    # A name: built in, or in the data directory's profiles.toml (the host's directory is
    # inside it).
    prof = resolve_profile(profile, rt.host_dir.parent) if isinstance(profile, str) else profile
    return HostService(
        rt.engine,
        processor
        or rt.processor(
            fingerprinted(prof.codec.supported_fields),
            pin_scheme=prof.pin_scheme,
            ksn_field=prof.ksn_field,
            keys_at_signon=prof.key_delivery == KeyDelivery.SIGNON_F62,
        ),
        rt.hsm,
        prof,
        writer=writer,
        writer_lock=writer_lock,
        max_batch=max_batch,
        after_commit=after_commit,
    )


def host_server(
    settings: Settings,
    service: HostService,
    *,
    tls: bool,
    limits: LinkLimits | None = None,
) -> HostServer:
    """The TCP server for ``service``, with the host's certificate when ``tls``."""
    from smartpos.host.server import HostServer
    from smartpos.host.tls import ensure_certificate, server_context

    ssl_ctx: ssl.SSLContext | None = (
        server_context(*ensure_certificate(settings.host_dir)) if tls else None
    )
    return HostServer(service, ssl_context=ssl_ctx, limits=limits)


def terminal_service(
    settings: Settings, *, factory: Callable[[], Terminal] | None = None
) -> TerminalService:
    """The terminal service on the provisioned terminal of ``settings``."""
    from smartpos.services.terminal import TerminalService

    return TerminalService.open(settings, factory=factory)


def pos_app(settings: Settings, service: TerminalService, *, demo: bool = False) -> FastAPI:
    """The cashier app on ``service``, with the POS database of ``settings`` (migrated) and
    its services. ``demo``: the sandbox's test cards in the simulated reader, the demo
    logins on the login screen and the SMS outbox on the second-factor screen."""
    from smartpos.db.pos import open_pos_db
    from smartpos.security.permissions import Permissions
    from smartpos.security.service import Security
    from smartpos.store.catalog import Catalog
    from smartpos.store.orders import Orders
    from smartpos.store.payments import Payments
    from smartpos.store.shifts import Shifts
    from smartpos.terminal.setup import read_identity
    from smartpos.web.app import create_app
    from smartpos.web.pos import Pos

    db = open_pos_db(settings)
    pos = Pos(
        settings=settings,
        terminal=service,
        db=db,
        catalog=Catalog(db),
        orders=Orders(db),
        payments=Payments(db, timezone=settings.timezone),
        shifts=Shifts(db),
        security=Security(
            db,
            idle_lock_minutes=settings.idle_lock_minutes,
            # The merchant's own matrix and limits, if they wrote one (docs/staff-security.md).
            permissions=Permissions.load(settings.home / "permissions.toml"),
        ),
        identity=read_identity(settings),
        pin_pad_shuffled=settings.pin_pad_layout == "shuffled",
    )
    if demo:
        from smartpos.host.testcards import CATALOGUE
        from smartpos.security.seed import DEMO_LOGINS

        pos.test_cards = list(CATALOGUE)
        pos.demo_logins = [login.describe() for login in DEMO_LOGINS]
        pos.show_outbox = True
    return create_app(pos)
