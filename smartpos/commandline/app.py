"""The ``smartpos`` Typer application: every failure is one clear line, never a traceback.

Typer (Click) would print usage errors as a framed block and let any other exception end
in a traceback — with the local variables, which can hold a PAN or a PIN. :class:`App`
runs the command itself and turns each failure into one :class:`Reply` (``result:
"error"``): JSON on stdout under ``--json``, else one ``error:`` line on stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console

from smartpos.commandline.result import Reply, emit

__all__ = ["App", "UserError", "console", "err"]

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("smartpos.cli")

EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h)
EXIT_CANCELLED = 130  # as a shell reports Ctrl-C


class UserError(Exception):
    """A failure the person can fix, with a message that says how. ``code`` is one of
    ``result.ERROR_CODES``; nothing was changed by the command that raises it."""

    def __init__(self, message: str, *, code: str = "refused", exit_code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code, self.exit_code = message, code, exit_code


class App(typer.Typer):
    """``typer.Typer`` whose ``app()`` prints results and failures itself (see module doc)."""

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        argv = list(args[0] if args else kwargs.get("args") or sys.argv[1:])
        sys.exit(self.run(argv))

    def run(self, argv: list[str]) -> int:
        """Run the command ``argv`` names, print its result, return the exit status."""
        command = typer.main.get_command(self)
        path = _command_path(command, argv)
        as_json = _wants_json(argv)
        try:
            returned = command.main(argv, prog_name="smartpos", standalone_mode=False)
            if isinstance(returned, Reply):
                return emit(returned, path, as_json, console, err)
        except BaseException as exc:
            if isinstance(exc, SystemExit):
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":
                return EXIT_USAGE  # Click printed the help while raising it
            if os.environ.get("SMARTPOS_DEBUG") == "1":
                log.error("%s failed", path or "smartpos", exc_info=exc)  # scrubbed
            return emit(failure(exc), path, as_json, console, err)
        if returned == EXIT_CANCELLED:  # Typer turned a Ctrl-C into this status, silently
            return emit(failure(KeyboardInterrupt()), path, as_json, console, err)
        return returned if isinstance(returned, int) else 0


def _wants_json(argv: Sequence[str]) -> bool:
    # Read from the command line itself: a usage error needs it before any command runs.
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in options


def _command_path(command: Any, argv: Sequence[str]) -> str:
    """``["terminal", "sale", "--amount", "1"]`` → ``"terminal sale"`` (as far as it goes)."""
    words: list[str] = []
    for arg in argv:
        if arg.startswith("-"):
            continue  # the groups take no options with values
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            break
        words.append(arg)
        command = sub
    return " ".join(words)


def failure(exc: BaseException) -> Reply:
    """The one-line error result for an exception that stopped a command."""
    if isinstance(exc, UserError):
        return _error(exc.message, exc.code, exc.exit_code)
    if isinstance(exc, typer.TyperException):  # Click's usage errors
        exit_code = getattr(exc, "exit_code", EXIT_USAGE)
        code = "usage" if exit_code == EXIT_USAGE else "refused"
        return _error(exc.format_message(), code, exit_code)
    if isinstance(exc, (KeyboardInterrupt, EOFError, typer.Abort)):
        return _error("cancelled", "cancelled", EXIT_CANCELLED)
    known = _known(exc)
    if known is not None:
        return known
    return _error(
        f"internal error ({type(exc).__name__}: {exc}): a defect in smartpos, please report"
        " it; SMARTPOS_DEBUG=1 logs the traceback",
        "internal",
        EXIT_INTERNAL,
    )


def _error(message: str, code: str, exit_code: int) -> Reply:
    return Reply(False, "error", message, code=code, exit_code=max(exit_code, 1))


def _known(exc: BaseException) -> Reply | None:
    """Errors of smartpos and its libraries that say what is wrong in their message."""
    # Imported here: the modules are loaded already when they raised, and a plain
    # `smartpos --help` should not import the whole system.
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError

    from smartpos.db.lock import AlreadyLocked
    from smartpos.files import UnsafeFileError
    from smartpos.terminal.engine import TerminalError

    if isinstance(exc, ValidationError) and exc.title == "Settings":
        problem = exc.errors()[0]
        name = "SMARTPOS_" + "_".join(str(p) for p in problem["loc"]).upper()
        return _error(f"setting {name}: {problem['msg']}", "config", 1)
    if isinstance(exc, AlreadyLocked):
        return _error(f"{exc}: is another host (or the demo) running on this data?", "locked", 1)
    if isinstance(exc, UnsafeFileError):
        return _error(str(exc), "files", 1)
    if isinstance(exc, OperationalError):
        return _error(f"database unavailable: {exc.orig}", "unavailable", 1)
    if isinstance(exc, OSError) and exc.filename is not None:
        return _error(f"cannot use {exc.filename}: {exc.strerror}", "files", 1)
    if isinstance(exc, TerminalError) or (isinstance(exc, ValueError) and _is_domain_error(exc)):
        return _error(str(exc), "refused", 1)
    return None


def _is_domain_error(exc: ValueError) -> bool:
    """smartpos's own input errors (card, PIN, amount, key, profile, message: CardError,
    PinError, MoneyError, …) have messages written for people; a bare ValueError from
    elsewhere is a defect."""
    return type(exc).__module__.startswith("smartpos.")
