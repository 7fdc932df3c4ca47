"""``smartpos pos``: the cashier app on this terminal (docs/cashier-app.md); the demo starts
it too (:func:`start_pos`)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Annotated

import typer

from smartpos.commandline.aio import run
from smartpos.commandline.app import UserError, console
from smartpos.config import Settings, load_settings

if TYPE_CHECKING:
    from smartpos.services.terminal import TerminalService
    from smartpos.web.serve import PosServer

__all__ = ["claim_pos_port", "pos", "start_pos"]


def claim_pos_port(settings: Settings, port: int | None = None) -> socket.socket:
    """The cashier app's listening socket, before anything else starts."""
    from smartpos.web.serve import listen

    port = port or settings.pos_port
    try:
        return listen(settings.pos_bind, port)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {settings.pos_bind}:{port} for the cashier app:"
            f" {exc.strerror or exc} (another one running? choose another --pos-port)",
            code="unavailable",
        ) from None


async def start_pos(
    settings: Settings, service: TerminalService, sock: socket.socket, *, demo: bool = False
) -> PosServer:
    """Serve the cashier app on ``sock`` with ``service``; returns once it answers."""
    from smartpos.bootstrap import pos_app
    from smartpos.web.serve import PosServer

    return await PosServer(pos_app(settings, service, demo=demo), sock).start()


def pos(
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="port (default 8000)")
    ] = None,
) -> None:
    """Run the cashier app on this terminal (its host must be reachable for cards)."""
    from smartpos.bootstrap import terminal_service

    settings = load_settings()
    sock = claim_pos_port(settings, port)

    async def main() -> None:
        import asyncio

        service = terminal_service(settings)
        server = None
        try:
            server = await start_pos(settings, service, sock)
            console.print(f"[bold]smartpos pos[/bold] — the cashier app: {server.url}")
            console.print("Press Ctrl-C to stop it.")
            await asyncio.Event().wait()
        finally:
            if server is not None:
                await server.close()
            await service.close()

    try:
        run(main())
    except KeyboardInterrupt:
        console.print("cashier app stopped")


def seed_demo_store(settings: Settings, merchant_no: str) -> int:
    """The demo's store, on its first start (later starts change nothing): the catalog of a
    Chinese convenience store and a member of staff in each role. Returns the number of
    products in the catalog."""
    from smartpos.db.pos import open_pos_db
    from smartpos.security.seed import seed_demo_staff
    from smartpos.store.catalog import Catalog
    from smartpos.store.seed import seed_demo_catalog

    engine = open_pos_db(settings)
    try:
        seed_demo_catalog(engine)
        seed_demo_staff(engine, merchant_no=merchant_no)
        return Catalog(engine).count()
    finally:
        engine.dispose()
