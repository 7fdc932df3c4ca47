"""The command line starts light (docs/benchmarks.md, "CLI start-up"): what each path imports,
checked in fresh processes — not timed, the modules loaded are what is held.

* ``import smartpos.cli`` (every command, ``--help``) loads no database, migration, model,
  printer or test library;
* a real ``terminal sale --json`` against a real host loads the terminal and its database
  layer (so the check is not vacuous) but neither pydantic (settings, result schema, Typer's
  coercion) nor Alembic (the database is current) nor the printer's library;
* the shortcut past Typer's pydantic coercion (smartpos.commandline.app) is in place and
  gives Typer's own values and messages for every option it takes over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer._coercion import build_runtime_param

from smartpos.cli import app
from smartpos.commandline.app import _plain, _plain_coercion, _PlainCoercion
from tests.test_cli import GOOD, cli, home, host  # noqa: F401 - fixtures

# Libraries no start-up of a terminal command needs (by top-level package).
HEAVY = {
    "alembic",
    "mako",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "dotenv",
    "escpos",
    "usb",
    "serial",
    "psycopg",
    "psycopg_binary",
    "hypothesis",
    "pytest",
}
_REPORT = """
import json, sys
{run}
top = sorted({{m.split(".")[0] for m in sys.modules}})
print(json.dumps({{"top": top, "all": sorted(sys.modules)}}), file=sys.stderr)
"""


def loaded_by(run: str, env: dict[str, str], entered: str = "") -> tuple[Any, set[str], set[str]]:
    """Run ``run`` in a fresh Python; its stdout, and the top-level packages and the modules
    it had loaded at the end."""
    done = subprocess.run(
        [sys.executable, "-c", _REPORT.format(run=run)],
        env=env,
        input=entered,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return done.stdout, set(report["top"]), set(report["all"])


def clean_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPOS_")}
    return {**env, "SMARTPOS_HOME": str(data)}


class RichLoaded(Exception):
    """rich was imported where nothing needs it."""


def without_rich(top: set[str]) -> None:
    if "rich" in top:
        raise RichLoaded(sorted(top))


def test_importing_the_command_line_loads_nothing_heavy(tmp_path: Path) -> None:
    _, top, modules = loaded_by("import smartpos.cli", clean_env(tmp_path))
    assert {"smartpos.cli", "smartpos.commandline.app", "typer"} <= modules  # it ran
    assert top & (HEAVY | {"sqlalchemy", "pyemv", "cryptography", "asyncio"}) == set()


def test_importing_the_command_line_loads_no_rich(tmp_path: Path) -> None:
    _, top, _ = loaded_by("import smartpos.cli", clean_env(tmp_path))
    without_rich(top)


SALE = """
from smartpos.cli import app
status = app.run(["terminal", "sale", "--amount", "12.34", "--pin", "--json"])
"""


def sold(data: Path) -> tuple[dict[str, Any], set[str], set[str]]:
    cli(data, "terminal", "signon")
    out, top, modules = loaded_by(SALE, clean_env(data), f"{GOOD.pan}\n{GOOD.pin}\n")
    result = json.loads(out)
    assert result["result"] == "approved", result
    # The path really ran: the terminal, its link and its database were used.
    assert {"smartpos.terminal.engine", "smartpos.terminal.link", "sqlalchemy"} <= modules
    assert "smartpos.db.migrate" in modules
    return result, top, modules


@pytest.mark.integration
def test_a_sale_loads_no_pydantic_no_alembic_no_printer(home: Path, host: int) -> None:  # noqa: F811
    _, top, modules = sold(home)
    assert top & HEAVY == set()
    assert "typer._adapters" not in modules  # Typer's pydantic coercion was not used


@pytest.mark.integration
def test_a_json_sale_loads_no_rich(home: Path, host: int) -> None:  # noqa: F811
    _, top, _ = sold(home)
    without_rich(top)


def _parameters(command: Any) -> list[tuple[str, Any, Any]]:
    found = []
    for sub_name, sub in getattr(command, "commands", {}).items():
        found += [(f"{sub_name} {n}".strip(), c, p) for n, c, p in _parameters(sub)]
    found += [("", command, p) for p in getattr(command, "params", ())]
    return found


VALUES = (None, "", "abc", "1", "1.00", "-1", "9" * 40, "١٢", "终端", "\x1b[2J", "1e3", "12,34")
VALUES += ("123456789012", "10000001", "0123456789ABCDEF0123456789ABCDEF", "sandbox", "3012")
VALUES += (True, False, b"bytes")


def outcome(coercion: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        return "value", coercion.coerce(value, param=param, ctx=ctx)
    except typer.BadParameter as exc:
        return "usage error", exc.format_message()
    except Exception as exc:  # e.g. a parser's own defect: it must be the same defect
        return type(exc).__name__, str(exc)


def test_the_shortcut_gives_typers_values_and_messages() -> None:
    command = typer.main.get_command(app)
    _plain_coercion(command)
    taken = 0
    for path, owner, param in _parameters(command):
        ours = param.__dict__.get("_runtime_param")
        if not isinstance(ours, _PlainCoercion):
            continue
        taken += 1
        ctx = typer.Context(owner)
        typers = build_runtime_param(param.type_descriptor)
        for value in VALUES:
            expected = outcome(typers, value, param, ctx)
            assert outcome(ours, value, param, ctx) == expected, (path, param.name, value)
    assert taken >= 25  # the options of options.py, and the plain ones, were taken over


def test_the_shortcut_is_in_place_for_the_sale() -> None:
    """If a Typer release keeps its coercion elsewhere, this says so (the CLI still works,
    through pydantic, only slower)."""
    command = typer.main.get_command(app)
    _plain_coercion(command)
    sale = command.commands["terminal"].commands["sale"]  # type: ignore[attr-defined]
    kinds = {p.name: type(p.__dict__.get("_runtime_param")) for p in sale.params}
    assert kinds["amount"] is _PlainCoercion and kinds["expiry"] is _PlainCoercion
    assert kinds["pin"] is _PlainCoercion
    helper = sale.get_help_option(typer.Context(sale))
    assert type(helper.__dict__.get("_runtime_param")) is _PlainCoercion
    assert _plain(helper) is helper


ARGVS = [
    [],
    ["--help"],
    ["terminal"],
    ["terminal", "--help"],
    ["terminal", "sale", "--help"],
    ["terminal", "sael", "--amount", "1"],
    ["termnal", "sale"],
    ["terminal", "sale"],
    ["terminal", "sale", "--amount"],
    ["terminal", "sale", "--amount", "1", "--bogus"],
    ["host", "cards", "--help"],
    ["version", "--help"],
    ["version", "extra"],
    ["--json", "version"],
    ["bench"],
    ["bench", "host", "--terminals", "0", "--json"],
]


@pytest.mark.parametrize("argv", ARGVS, ids=[" ".join(a) or "(none)" for a in ARGVS])
def test_building_only_the_named_command_changes_no_output(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The app builds only the group and command the words name (smartpos.commandline.app):
    help, usage errors and suggestions are those of the whole application."""
    import smartpos.commandline.app as app_module

    monkeypatch.setenv("SMARTPOS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO(""))
    narrowed = app.run(argv), capsys.readouterr()
    monkeypatch.setattr(app_module, "_named_only", lambda whole, words: whole)
    whole = app.run(argv), capsys.readouterr()
    assert narrowed == whole
    assert whole[1].out + whole[1].err  # something was said


def test_only_the_named_command_is_built() -> None:
    from smartpos.commandline.app import _named_only

    words = ["terminal", "sale", "--amount", "1"]
    command: Any = typer.main.get_command(_named_only(app, words))
    assert list(command.commands) == ["terminal"]
    assert list(command.commands["terminal"].commands) == ["sale"]
    whole: Any = typer.main.get_command(app)
    assert len(whole.commands) > 3 and len(whole.commands["terminal"].commands) > 5
    assert list(typer.main.get_command(_named_only(app, ["version"])).commands) == ["version"]  # type: ignore[attr-defined]
