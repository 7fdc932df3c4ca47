"""The parts of the ``smartpos`` command that every command shares (docs/cli.md).

* ``result``: the one result schema every command reports, as JSON or for people;
* ``app``: the Typer application that turns every failure into one line, never a traceback;
* ``entry``: card data and PIN from a hidden prompt or standard input, never from argv.
"""
