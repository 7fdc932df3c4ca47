"""The result every command reports: one schema, printed as one JSON object or for people.

A command returns a :class:`Reply`; the app (``smartpos.commandline.app``) adds the command's
name and prints it — with ``--json`` as one :class:`CommandResult` object on one line of
standard output, otherwise as the reply's lines. Errors that stop a command take the same
shape (``result: "error"``). docs/cli.md documents the schema and each command's ``data``.

``CommandResult`` is the schema as a pydantic model: the JSON Schema in docs/cli.md is
generated from it and the tests validate every command's output with it. Printing a result
does not use it: importing pydantic and building the model cost ~125 ms, a third of a
``terminal sale`` (docs/benchmarks.md, "CLI start-up"), so :func:`emit` checks the same rules
by hand (:func:`checked`; tests/test_cli_result.py holds the two to the same verdicts and the
same bytes) and the model is built only when something asks for it. Rich is not imported
either unless lines for people are printed.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, get_args

from smartpos.logs import scrub

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import RenderableType

__all__ = [
    "ERROR_CODES",
    "CommandResult",  # noqa: F822 - made on first use, by the module's __getattr__
    "Printer",
    "Reply",
    "ResultWord",
    "SchemaError",
    "checked",
    "emit",
]

ResultWord = Literal[
    "ok",
    "approved",
    "declined",
    "error",
    "balanced",
    "uploaded",
    "not_balanced",
    "already_settled",
    "pending",
]
_RESULT_WORDS = frozenset(get_args(ResultWord))

# Codes of results that are not a host's answer (those carry its two-character response
# code). Each says who has to act; docs/cli.md explains them.
ERROR_CODES: dict[str, str] = {
    "usage": "the command line is wrong: an unknown option, a missing or malformed value",
    "refused": "the request was refused before anything was sent; nothing changed",
    "incomplete": "sent, but not completed (no or untrusted answer, or the card refused it);"
    " data.reversal says whether it was reversed",
    "inconsistent": "the ledger does not balance: data.problems lists what is wrong",
    "locked": "another process holds the data (a host already runs on it)",
    "unavailable": "a network resource is unavailable (the port is taken, the host is down)",
    "config": "a setting (SMARTPOS_*) is invalid",
    "files": "the data directory or one of its files is not safe to use",
    "cancelled": "the person at the keyboard cancelled (Ctrl-C, end of input)",
    "internal": "a defect in smartpos; nothing is shown but this line (SMARTPOS_DEBUG=1 shows"
    " the traceback)",
}
# The schema's patterns, each held by the model and by `checked` alike.
_COMMAND_PATTERN = r"^[a-z]+( [a-z]+)*$"
_CODE_PATTERN = "^([0-9A-Z]{2}|" + "|".join(ERROR_CODES) + ")$"
_MESSAGE_PATTERN = r"^[^\n]*$"
_FIELDS = ("ok", "command", "result", "code", "message", "data")


class SchemaError(Exception):
    """A result that breaks the schema: a defect in the command that made it (reported as an
    internal error, so deliberately not a ``ValueError``, which is the person's input)."""


def _matches(pattern: str, text: str) -> bool:
    # The schema's patterns are anchored (^…$) for JSON Schema; in Python `$` would also
    # match before a final newline, so the whole text has to match the inside.
    return re.fullmatch(pattern[1:-1], text) is not None


def _inconsistency(ok: bool, result: str, code: str | None, data: Mapping[str, Any]) -> str | None:
    """What makes a result contradict itself (None if nothing): the rules the schema's field
    types cannot say."""
    if ok != (result == "approved") and result in ("approved", "declined"):
        return "an approval is ok, a decline is not"
    if ok and result == "error":
        return "an error is not ok"
    if not ok and code is None:
        return "a result that is not ok says why in code"
    for key, value in data.items():
        if key.endswith("_minor") and not (value is None or type(value) is int):
            return f"{key} must be an integer number of minor units"
    return None


def checked(result: Mapping[str, Any]) -> dict[str, Any]:
    """``result`` as the schema's object (its fields in the schema's order), or
    :class:`SchemaError` saying what breaks it — the verdict of :class:`CommandResult`."""
    if set(result) != set(_FIELDS):
        raise SchemaError(f"a result has exactly the fields {', '.join(_FIELDS)}")
    ok, command, word, code, message, data = (result[name] for name in _FIELDS)
    problem = None
    if type(ok) is not bool:
        problem = "ok is true or false"
    elif not (isinstance(command, str) and _matches(_COMMAND_PATTERN, command)):
        problem = f"command {command!r} is not lowercase words"
    elif word not in _RESULT_WORDS:
        problem = f"result {word!r} is not one of the result words"
    elif not (code is None or (isinstance(code, str) and _matches(_CODE_PATTERN, code))):
        problem = f"code {code!r} is neither a response code nor one of ERROR_CODES"
    elif not (isinstance(message, str) and message and _matches(_MESSAGE_PATTERN, message)):
        problem = "message is one line of text"
    elif not (isinstance(data, dict) and all(isinstance(k, str) for k in data)):
        problem = "data is an object"
    else:
        problem = _inconsistency(ok, word, code, data)
    if problem is not None:
        raise SchemaError(problem)
    return {name: result[name] for name in _FIELDS}


def _plain(value: Any) -> Any:
    """What JSON cannot hold as it is: dataclasses become objects (as the model dumped them)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_json(result: Mapping[str, Any]) -> str:
    """The one line a ``--json`` command prints for ``result`` (checked first)."""
    return json.dumps(checked(result), ensure_ascii=False, default=_plain)


@cache
def _command_result_model() -> type[BaseModel]:
    from pydantic import BaseModel, ConfigDict, Field, model_validator

    class CommandResult(BaseModel):
        """The result of one smartpos command: the same shape for every command (docs/cli.md)."""

        model_config = ConfigDict(extra="forbid", frozen=True)

        ok: bool = Field(description="the command did what was asked (exit status 0)")
        command: str = Field(pattern=_COMMAND_PATTERN, description="e.g. 'terminal sale'")
        result: ResultWord = Field(description="one word for the outcome")
        code: str | None = Field(
            pattern=_CODE_PATTERN,
            description="the host's response code, or why it is not ok (ERROR_CODES); null if"
            " ok and no host answered",
        )
        message: str = Field(
            min_length=1, pattern=_MESSAGE_PATTERN, description="one line for people"
        )
        data: dict[str, Any] = Field(
            description="what the command reports (per command; empty for an error); amounts"
            " are integers in minor units named ..._minor, with the currency beside them"
        )

        @model_validator(mode="after")
        def _consistent(self) -> CommandResult:
            problem = _inconsistency(self.ok, self.result, self.code, self.data)
            if problem is not None:
                raise ValueError(problem)
            return self

    CommandResult.__module__ = __name__
    CommandResult.__qualname__ = "CommandResult"
    return CommandResult


def __getattr__(name: str) -> Any:
    # `CommandResult` is built (pydantic imported) the first time it is named.
    if name == "CommandResult":
        return _command_result_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Lines: TypeAlias = "Sequence[RenderableType]"


@dataclass(frozen=True)
class Reply:
    """What a command hands back: its result, and the lines a person sees instead of JSON
    (default: the message) — or a function that makes them, called only when they are
    printed (their markup needs rich, which ``--json`` never loads). The exit status is 0
    exactly when ``ok``; a failure may pick its status (2 for usage errors)."""

    ok: bool
    result: ResultWord
    message: str
    code: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    lines: Lines | Callable[[], Lines] = ()
    exit_code: int = -1  # -1: 0 when ok, else 1

    def __post_init__(self) -> None:
        if self.ok != (self.status == 0):
            raise ValueError("a reply exits with status 0 exactly when it is ok")

    @property
    def status(self) -> int:
        if self.exit_code < 0:
            return 0 if self.ok else 1
        return self.exit_code

    def people_lines(self) -> Lines:
        """The lines for people (made now if the reply holds a function for them)."""
        return self.lines() if callable(self.lines) else self.lines


class Printer(Protocol):
    """Where lines for people go: a rich ``Console`` (or one made on first use)."""

    def print(
        self,
        *objects: Any,
        end: str = "\n",
        markup: bool | None = None,
        highlight: bool | None = None,
    ) -> None: ...


def _one_line(text: str) -> str:
    # Library messages can span lines or carry a card number; a result never does.
    return scrub(" ".join(text.split())) or "(no message)"


def emit(reply: Reply, command: str, as_json: bool, out: Printer, err: Printer) -> int:
    """Print ``reply`` of ``command`` (JSON on stdout, or its lines; an error without lines
    as one ``error:`` line on stderr) and return the exit status."""
    message = _one_line(reply.message)
    if as_json:
        result = {
            "ok": reply.ok,
            "command": command or "smartpos",
            "result": reply.result,
            "code": reply.code,
            "message": message,
            "data": dict(reply.data),
        }
        print(to_json(result), flush=True)
        return reply.status
    lines = reply.people_lines()
    if lines:
        for line in lines:
            out.print(scrub(line) if isinstance(line, str) else line)
    elif reply.ok:
        out.print(message, markup=False, highlight=False)
    else:
        err.print("[red]error:[/red] ", end="")
        err.print(message, markup=False, highlight=False)
    return reply.status
