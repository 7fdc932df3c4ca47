"""``smartpos pos``: the cashier app on this terminal (docs/cashier-app.md); the demo starts
it too (:func:`start_pos`)."""

from __future__ import annotations

import asyncio
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


async def start_pos(settings: Settings, service: TerminalService, sock: socket.socket) -> PosServer:
    """Serve the cashier app on ``sock`` with ``service``; returns once it answers."""
    from smartpos.bootstrap import pos_app
    from smartpos.web.serve import PosServer

    return await PosServer(pos_app(settings, service), sock).start()


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
