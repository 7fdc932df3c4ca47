"""Every command reports one result schema (docs/cli.md): a session through every command
with --json, successes and failures alike, each output validated against the schema, and
docs/cli.md kept in step with what the commands really print."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from smartpos.commandline.result import CommandResult
from tests.test_cli import GOOD, cli, home, host, js  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _documented() -> dict[str, tuple[set[str], set[str]]]:
    """``### `smartpos <command>` `` sections: (the ``data`` keys always there, the keys an
    option adds), from their "JSON `data`: …" and "JSON `data` with …: …" lines."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for section in re.split(r"^### ", DOC.read_text(), flags=re.M)[1:]:
        name = re.match(r"`smartpos ([a-z ]+)`", section)
        if name is None:
            continue
        keys: tuple[set[str], set[str]] = (set(), set())
        for line in section.splitlines():
            listed = re.match(r"JSON `data`( with [^:]*)?: (.*)$", line)
            if listed:
                keys[bool(listed.group(1))].update(re.findall(r"`([a-z_0-9]+)`", listed.group(2)))
        found[name.group(1)] = keys
    return found


def test_the_documented_schema_is_the_schema() -> None:
    block = re.search(r"```json\n(\{.*?\})\n```", DOC.read_text(), flags=re.S)
    assert block is not None
    assert json.loads(block.group(1)) == CommandResult.model_json_schema()


def test_every_command_reports_one_schema(home: Path, host: int) -> None:  # noqa: F811
    seen: dict[str, list[dict[str, Any]]] = {}

    def run(*args: str, ok: bool = True, at: Path = home, **entered: str) -> dict[str, Any]:
        done = cli(at, *args, "--json", ok=ok, **entered)
        result = CommandResult.model_validate_json(done.stdout).model_dump()
        assert result["ok"] == (done.returncode == 0), (result, done.returncode)
        seen.setdefault(result["command"], []).append(result)
        return result

    run("version")
    run("host", "cards")
    run("terminal", "signon")
    run("terminal", "echo")
    sale = run("terminal", "sale", "--amount", "12.34", "--pin", card=GOOD.pan, pin="123456")
    run("terminal", "sale", "--amount", "9000.51", "--pin", card=GOOD.pan, pin="123456", ok=False)
    run("terminal", "balance", "--pin", card=GOOD.pan, pin="123456")
    other = run("terminal", "sale", "--amount", "3", "--pin", card=GOOD.pan, pin="123456")
    run("terminal", "void", "--stan", other["data"]["stan"])
    run("terminal", "void", "--stan", "999999", ok=False)
    run("terminal", "refund", "--rrn", sale["data"]["rrn"], "--amount", "2", card=GOOD.pan)
    run("terminal", "reversals")
    run("terminal", "selftest")
    run("terminal", "settle")
    run("host", "check")
    run("terminal", "sale", "--amount", "1,2", ok=False)
    run("bench", "host", "--terminals", "1", "--seconds", "0.3", "--warmup", "0", "--no-bare")
    run("bench", "service", "--sales", "10", "--warmup", "0")
    run("terminal", "sale", "--amount", "1", "--pin", "--print", card=GOOD.pan, pin="123456")

    # Not under a running host's feet; on data of its own, it provisions.
    assert run("host", "init", ok=False)["code"] == "locked"
    other = home.parent / "other-home"
    init = run("host", "init", at=other)["data"]
    run(
        "terminal",
        "provision",
        *("--tid", init["tid"], "--mid", init["mid"], "--tmk", init["tmk"]),
        *("--kcv", init["tmk_kcv"], "--fingerprint", init["host_fingerprint"]),
        *("--port", str(host)),
        at=other,
    )
    run("terminal", "provision", "--tid", "1", "--mid", "2", "--tmk", "3", "--kcv", "4", ok=False)

    documented = _documented()
    for command, results in seen.items():
        assert command in documented, f"docs/cli.md has no section for {command}"
        always, optional = documented[command]
        for result in results:
            if result["result"] == "error":
                assert result["data"] == {}, result
            else:
                assert always <= set(result["data"]) <= always | optional, (command, result)
    # host serve and demo print no JSON; bench fuzz takes tens of seconds and its result is
    # held to its documented keys by tests/bench/test_fuzz.py
    # bench cli starts dozens of processes; tests/bench/test_cli_bench.py holds its keys
    assert set(documented) - set(seen) <= {"host serve", "demo", "bench fuzz", "bench cli"}
