"""The ``smartpos`` Typer application: every failure is one clear line, never a traceback.

Typer (Click) would print usage errors as a framed block and let any other exception end
in a traceback — with the local variables, which can hold a PAN or a PIN. :class:`App`
runs the command itself and turns each failure into one :class:`Reply` (``result:
"error"``): JSON on stdout under ``--json``, else one ``error:`` line on stderr.

Every command starts through this module, so it imports little: the rich consoles
(:data:`console`, :data:`err`) are made when something is first printed for people, and the
errors of other modules are recognised without importing them (:func:`_known`).
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from smartpos.commandline.result import Reply, emit
from smartpos.config import SettingsError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["App", "LazyConsole", "UserError", "console", "err"]

log = logging.getLogger("smartpos.cli")

EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h)
EXIT_CANCELLED = 130  # as a shell reports Ctrl-C


class LazyConsole:
    """A rich ``Console`` made on first use, with these options: ``--json`` prints no lines
    for people, and importing rich would cost it ~25 ms. Anything of the console's can be
    used through it (``.print``, ``.file``…)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def print(self, *objects: Any, **options: Any) -> None:
        self.console.print(*objects, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


console = LazyConsole(soft_wrap=True)
err = LazyConsole(stderr=True, soft_wrap=True)


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
        command = typer.main.get_command(_named_only(self, argv))
        _plain_coercion(command)
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


def _named_only(app: typer.Typer, words: Sequence[str]) -> typer.Typer:
    """``app`` with only the group or command ``words[0]`` names, within that group only what
    ``words[1]`` names, and so on, as far as the words name them — ``app`` itself if the
    first word names nothing.

    Typer builds every command of the application from its signature on each run, ~12 ms
    (three times that on a busy machine), and a ``terminal sale`` needs one of them. Help,
    usage errors and suggestions stay those of the whole application: at the level where a
    word names nothing (``--help``, an option, a typo, no word) every group and command is
    kept. Shell completion (``_SMARTPOS_COMPLETE``) gets the whole application."""
    if not words or "_SMARTPOS_COMPLETE" in os.environ:
        return app
    word, rest = words[0], words[1:]
    for group in app.registered_groups:
        if group.name == word and group.typer_instance is not None:
            narrowed = copy.copy(group)
            narrowed.typer_instance = _named_only(group.typer_instance, rest)
            return _keeping(app, [narrowed], [])
    for info in app.registered_commands:
        name = info.name or (info.callback and typer.main.get_command_name(info.callback.__name__))
        if name == word:
            return _keeping(app, [], [info])
    return app


def _keeping(app: typer.Typer, groups: list[Any], commands: list[Any]) -> typer.Typer:
    kept = copy.copy(app)
    kept.registered_groups, kept.registered_commands = groups, commands
    return kept


class _PlainCoercion:
    """Typer's coercion of a command-line value, without Typer's detour through pydantic,
    for the parameters where pydantic adds nothing: options with their own ``parser``
    (smartpos.commandline.options) and plain ``str`` and ``bool`` parameters.

    Typer (0.29) coerces every parameter value through a pydantic ``TypeAdapter`` — even a
    missing one, even one it only hands to the option's parser, even ``--help``'s: importing
    pydantic and building the adapters cost ~110 ms of each ``terminal sale``. For these
    parameters the outcome is plain: nothing stays nothing, text stays text, a flag stays a
    flag, and the parser gives the value or raises the usage error (``typer.BadParameter``,
    which pydantic let through unchanged). Anything else — a parser that raises
    ``ValueError``, a value of another type, a multi-value option — goes Typer's way, so the
    result is Typer's in every case. If a Typer release keeps a parameter's coercion
    elsewhere, nothing is replaced and Typer coerces as usual (only slower:
    tests/test_cli_startup.py notices)."""

    def __init__(self, parser: Any, annotation: Any) -> None:
        self.parser, self.annotation = parser, annotation

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if not (param.multiple or param.nargs != 1):
            if value is None:
                return None
            if self.parser is not None:
                try:
                    return self.parser(value)
                except ValueError:
                    pass  # Typer words the message (through pydantic)
            elif type(value) is self.annotation:
                return value
        from typer._coercion import build_runtime_param

        return build_runtime_param(param.type_descriptor).coerce(value, param=param, ctx=ctx)


def _plain_coercion(command: Any) -> None:
    """Give each parameter of ``command`` and its subcommands that :class:`_PlainCoercion`
    can coerce one, where Typer has not built its own coercion yet — ``--help`` too, which
    each command makes when it is first asked for it."""
    for param in getattr(command, "params", ()):
        _plain(param)
    make_help = getattr(command, "get_help_option", None)
    if make_help is not None:

        def help_option(ctx: Any) -> Any:
            return _plain(make_help(ctx))

        command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _plain_coercion(sub)


def _plain(param: Any) -> Any:
    descriptor = getattr(param, "type_descriptor", None)
    parser = getattr(getattr(descriptor, "parameter_info", None), "parser", None)
    annotation = getattr(descriptor, "annotation", None)
    plain = parser is not None or annotation in (str, bool)
    unbuilt = getattr(param, "_runtime_param", False) is None  # False: not Typer's layout
    if plain and unbuilt and getattr(descriptor, "file_annotation", None) is None:
        param._runtime_param = _PlainCoercion(parser, annotation)
    return param


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
    if isinstance(exc, SettingsError):
        return _error(str(exc), "config", 1)
    # Each class is looked up only if its module is loaded: an exception of a module that was
    # never imported cannot have been raised, and a plain `smartpos --help` or a setting's
    # error should not import the database layer to find that out.
    if _is(exc, "smartpos.db.lock", "AlreadyLocked"):
        return _error(f"{exc}: is another host (or the demo) running on this data?", "locked", 1)
    if _is(exc, "smartpos.files", "UnsafeFileError"):
        return _error(str(exc), "files", 1)
    if _is(exc, "sqlalchemy.exc", "OperationalError"):
        return _error(f"database unavailable: {getattr(exc, 'orig', exc)}", "unavailable", 1)
    if isinstance(exc, OSError) and exc.filename is not None:
        return _error(f"cannot use {exc.filename}: {exc.strerror}", "files", 1)
    if _is(exc, "smartpos.terminal.engine", "TerminalError") or (
        isinstance(exc, ValueError) and _is_domain_error(exc)
    ):
        return _error(str(exc), "refused", 1)
    return None


def _is(exc: BaseException, module: str, name: str) -> bool:
    """``isinstance(exc, module.name)``; false, without importing ``module``, if it is not
    loaded (whatever raises the error has imported it: the terminal's modules all go
    through ``smartpos.terminal.engine``, which exports ``TerminalError``)."""
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(cls, type) and isinstance(exc, cls)


def _is_domain_error(exc: ValueError) -> bool:
    """smartpos's own input errors (card, PIN, amount, key, profile, message: CardError,
    PinError, MoneyError, …) have messages written for people; a bare ValueError from
    elsewhere is a defect."""
    return type(exc).__module__.startswith("smartpos.")
