"""Bad input to any command gets one clear line — JSON under --json — and changes nothing.

Every option of every command (found by walking the real command tree, so a new option is
covered the day it is added) gets letters, nothing, a negative number, a huge number,
other scripts' digits and letters, control characters and an exponent; the value is
refused with a usage error naming the option, never a traceback and never an "internal
error" (which would mean a check is missing). A few cases run in a real process too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from smartpos.cli import app
from smartpos.commandline.result import CommandResult

BAD_VALUES = ("abc", "", "-1", "9" * 40, "١٢", "终端", "\x1b[2J", "1e3", "nan")
# The options and values a well-formed command still needs (each case spoils one option).
REQUIRED = {
    "terminal provision": [
        *("--tid", "10000001", "--mid", "898310048160001"),
        *("--tmk", "0123456789ABCDEF0123456789ABCDEF", "--kcv", "01234567"),
    ],
    "terminal sale": ["--amount", "1.00"],
    "terminal refund": ["--rrn", "123456789012", "--amount", "1.00"],
    "terminal void": ["--stan", "1"],
}
# Values that are right for an option (a merchant may be called "abc"): not bad input.
ACCEPTED = (
    {("--merchant", v) for v in ("abc", "-1", "9" * 40, "١٢", "终端", "1e3", "nan")}
    | {("--host", v) for v in ("abc", "-1", "9" * 40, "1e3", "nan")}
    # An order reference is the caller's own name for a payment: any printable ASCII.
    | {("--order", v) for v in ("abc", "-1", "9" * 40, "1e3", "nan")}
    | {
        ("--seconds", "1e3"),
        ("--rate", "1e3"),
        ("--flood-rate", "1e3"),
        ("--rss-limit-mb", "1e3"),
    }
)


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    subs = getattr(command, "commands", None)
    if subs is None:
        yield " ".join(path), command
        return
    for name, sub in subs.items():
        yield from _commands(sub, (*path, name))


def _cases() -> Iterator[Any]:
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            takes_value = not getattr(param, "is_flag", False) and param.expose_value
            if not takes_value or param.name == "help":
                continue
            option = max(param.opts, key=len)
            for value in BAD_VALUES:
                if (option, value) in ACCEPTED:
                    continue
                required = list(REQUIRED.get(path, []))
                if option in required:  # replace the required value
                    i = required.index(option)
                    del required[i : i + 2]
                has_json = any("--json" in p.opts for p in command.params)
                yield pytest.param(
                    [*path.split(), *required, option, value],
                    has_json,
                    id=f"{path} {option}={value!r}",
                )


def _snapshot(home: Path) -> dict[str, str]:
    """Every file's content; a database's as its SQL dump (which includes its WAL). Empty
    lock files (a process's flock, made by the first command that takes it) hold no data."""

    def content(path: Path) -> bytes:
        if path.suffix != ".db":
            return path.read_bytes()
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return "\n".join(conn.iterdump()).encode()

    return {
        str(p.relative_to(home)): hashlib.sha256(content(p)).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file()
        and not p.name.endswith(("-wal", "-shm"))
        and not (p.name.endswith(".lock") and p.stat().st_size == 0)
    }


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SMARTPOS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return tmp_path / "home"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = app.run(argv)
    out, err = capsys.readouterr()
    return status, out, err


def _assert_one_error_line(status: int, out: str, err: str, as_json: bool) -> dict[str, Any]:
    assert status != 0 and "Traceback" not in out + err
    if as_json:
        assert err == "" and len(out.splitlines()) == 1, (out, err)
        result = CommandResult.model_validate_json(out).model_dump()
    else:
        assert out == "" and len(err.splitlines()) == 1 and err.startswith("error: "), (out, err)
        result = {"message": err.removeprefix("error: "), "code": None}
    assert "internal error" not in result["message"], result
    return result


@pytest.mark.parametrize(("argv", "has_json"), list(_cases()))
def test_a_bad_option_value_is_one_usage_error(
    argv: list[str], has_json: bool, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(home) if home.exists() else {}
    for as_json in (False, True) if has_json else (False,):
        status, out, err = _run([*argv, *(["--json"] if as_json else [])], capsys)
        result = _assert_one_error_line(status, out, err, as_json)
        assert status == 2, (status, out, err)
        option = argv[-2]
        assert option in result["message"], result
        if as_json:
            assert (result["ok"], result["result"], result["code"]) == (False, "error", "usage")
    after = _snapshot(home) if home.exists() else {}
    assert after == before


@pytest.mark.parametrize(
    "argv",
    [
        ["nosuchcommand"],
        ["terminal", "sale"],  # --amount missing
        ["terminal", "sale", "--amount"],  # its value missing
        ["terminal", "sale", "--amount", "1", "--card", "6212340000000001"],  # gone: stdin
        ["terminal", "sale", "--amount", "1", "--pin", "123456"],  # --pin takes no value
        ["terminal", "void"],  # neither --stan nor --invoice
        ["terminal", "void", "--stan", "1", "--invoice", "1"],  # both
        ["host", "check", "extra"],
        ["terminal", "sale", "--amount", "1", "--chip", "--tap"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_a_malformed_command_line_is_one_error(
    argv: list[str], home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for as_json in (False, True):
        status, out, err = _run([*argv, *(["--json"] if as_json else [])], capsys)
        _assert_one_error_line(status, out, err, as_json)
    assert not home.exists() or _snapshot(home) == {}


def _provisioned(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A terminal provisioned against a host database (no host process: nothing is sent)."""
    status, out, _ = _run(["host", "init", "--json"], capsys)
    assert status == 0
    init = json.loads(out)["data"]
    argv = ["terminal", "provision", "--tid", init["tid"], "--mid", init["mid"]]
    argv += ["--tmk", init["tmk"], "--kcv", init["tmk_kcv"]]
    argv += ["--fingerprint", init["host_fingerprint"]]
    assert _run(argv, capsys)[0] == 0


@pytest.mark.parametrize(
    ("entered", "says"),
    [
        ("", "no card on standard input"),
        ("\n", "no card entered"),
        ("x" * 300 + "\n", "too long"),
        ("abc\n", "card not accepted"),
        ("6212340000000002\n", "Luhn"),
        (b"\xff\xfe\n", "not text"),  # not UTF-8
    ],
)
def test_no_card_is_one_error(
    entered: str | bytes, says: str, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    _provisioned(home, capsys)
    before = _snapshot(home)
    raw = entered if isinstance(entered, bytes) else entered.encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    status, out, err = _run(["terminal", "sale", "--amount", "1", "--json"], capsys)
    result = _assert_one_error_line(status, out, err, True)
    assert says in result["message"] and result["code"] == "refused", result
    assert _snapshot(home) == before


def test_ctrl_c_at_the_prompt_is_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _provisioned(home, capsys)

    class Interrupted(io.StringIO):
        def readline(self, size: int | None = -1) -> str:
            raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stdin", Interrupted())
    status, out, err = _run(["terminal", "sale", "--amount", "1", "--json"], capsys)
    result = _assert_one_error_line(status, out, err, True)
    assert (status, result["code"], result["message"]) == (130, "cancelled", "cancelled")


@pytest.mark.parametrize(
    "argv", [[*path.split(), "--help"] for path, _ in _commands(typer.main.get_command(app))]
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(argv, capsys)
    assert status == 0 and "Usage" in out and err == "", (out, err)


def test_a_bad_setting_is_one_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMARTPOS_HOST_PORT", "abc")
    status, out, err = _run(["host", "check", "--json"], capsys)
    result = _assert_one_error_line(status, out, err, True)
    assert result["code"] == "config" and "SMARTPOS_HOST_PORT" in result["message"], result


SMARTPOS = [sys.executable, "-c", "from smartpos.cli import app; app()"]


@pytest.mark.integration
@pytest.mark.parametrize(
    "argv",
    [
        ["terminal", "void", "--stan", "abc"],
        ["terminal", "void", "--stan", "1.5", "--json"],
        ["terminal", "sale", "--amount", "12,34"],
        ["host", "serve", "--port", "99999"],
    ],
    ids=" ".join,
)
def test_in_a_real_process(argv: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "SMARTPOS_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [*SMARTPOS, *argv], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr, done
    if "--json" in argv:
        assert json.loads(done.stdout)["code"] == "usage" and done.stderr == ""
    else:
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
