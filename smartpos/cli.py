"""The ``smartpos`` command: host, terminal, demo and benchmark entry points.

Each command stays thin: it builds its inputs, calls the service layer and prints.
"""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="smartpos — smart POS terminal and acquirer sandbox")


@app.command()
def version() -> None:
    """Print the smartpos version."""
    from smartpos import __version__

    typer.echo(__version__)
