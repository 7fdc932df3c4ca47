"""The result every command reports: one schema, printed as one JSON object or for people.

A command returns a :class:`Reply`; the app (``smartpos.commandline.app``) adds the command's
name and prints it — with ``--json`` as one :class:`CommandResult` object on one line of
standard output, otherwise as the reply's lines. Errors that stop a command take the same
shape (``result: "error"``). docs/cli.md documents the schema and each command's ``data``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console, RenderableType

from smartpos.logs import scrub

__all__ = ["ERROR_CODES", "CommandResult", "Reply", "ResultWord", "emit"]

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
_CODE_PATTERN = "^([0-9A-Z]{2}|" + "|".join(ERROR_CODES) + ")$"


class CommandResult(BaseModel):
    """The result of one smartpos command: the same shape for every command (docs/cli.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool = Field(description="the command did what was asked (exit status 0)")
    command: str = Field(pattern=r"^[a-z]+( [a-z]+)*$", description="e.g. 'terminal sale'")
    result: ResultWord = Field(description="one word for the outcome")
    code: str | None = Field(
        pattern=_CODE_PATTERN,
        description="the host's response code, or why it is not ok (ERROR_CODES); null if ok"
        " and no host answered",
    )
    message: str = Field(min_length=1, pattern=r"^[^\n]*$", description="one line for people")
    data: dict[str, Any] = Field(
        description="what the command reports (per command; empty for an error); amounts are"
        " integers in minor units named ..._minor, with the currency beside them"
    )

    @model_validator(mode="after")
    def _consistent(self) -> CommandResult:
        if self.ok != (self.result == "approved") and self.result in ("approved", "declined"):
            raise ValueError("an approval is ok, a decline is not")
        if self.ok and self.result == "error":
            raise ValueError("an error is not ok")
        if not self.ok and self.code is None:
            raise ValueError("a result that is not ok says why in code")
        for key, value in self.data.items():
            if key.endswith("_minor") and not (value is None or type(value) is int):
                raise ValueError(f"{key} must be an integer number of minor units")
        return self


@dataclass(frozen=True)
class Reply:
    """What a command hands back: its result, and the lines a person sees instead of JSON
    (default: the message). The exit status is 0 exactly when ``ok``; a failure may pick
    its status (2 for usage errors)."""

    ok: bool
    result: ResultWord
    message: str
    code: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    lines: Sequence[RenderableType] = ()
    exit_code: int = -1  # -1: 0 when ok, else 1

    def __post_init__(self) -> None:
        if self.ok != (self.status == 0):
            raise ValueError("a reply exits with status 0 exactly when it is ok")

    @property
    def status(self) -> int:
        if self.exit_code < 0:
            return 0 if self.ok else 1
        return self.exit_code


def _one_line(text: str) -> str:
    # Library messages can span lines or carry a card number; a result never does.
    return scrub(" ".join(text.split())) or "(no message)"


def emit(reply: Reply, command: str, as_json: bool, out: Console, err: Console) -> int:
    """Print ``reply`` of ``command`` (JSON on stdout, or its lines; an error without lines
    as one ``error:`` line on stderr) and return the exit status."""
    message = _one_line(reply.message)
    if as_json:
        result = CommandResult(
            ok=reply.ok,
            command=command or "smartpos",
            result=reply.result,
            code=reply.code,
            message=message,
            data=dict(reply.data),
        )
        print(json.dumps(result.model_dump(), ensure_ascii=False), flush=True)
    elif reply.lines:
        for line in reply.lines:
            out.print(scrub(line) if isinstance(line, str) else line)
    elif reply.ok:
        out.print(message, markup=False, highlight=False)
    else:
        err.print("[red]error:[/red] ", end="")
        err.print(message, markup=False, highlight=False)
    return reply.status
