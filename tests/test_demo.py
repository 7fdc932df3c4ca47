"""`smartpos demo`, the README's first command: it starts, says how to run a sale, and every
command it suggests works as its comment says, in the order printed; Ctrl-C stops it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_cli import SMARTPOS, _free_port, cli, js

pytestmark = pytest.mark.integration


def test_demo_starts_and_every_suggested_command_works(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    env = {**os.environ, "SMARTPOS_HOME": str(home), "COLUMNS": "300"}
    demo = subprocess.Popen(
        [*SMARTPOS, "demo", "--port", str(_free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not lines or "Press Ctrl-C" not in lines[-1]:
            assert time.monotonic() < deadline, "".join(lines)
            line = demo.stdout.readline()
            assert line, "demo exited early:\n" + "".join(lines)
            lines.append(line)
        text = "".join(lines)
        assert "signed on" in text.lower() or "approved" in text.lower(), text
        tries = [line.strip() for line in lines[lines.index("In another shell, try:\n") + 1 :]]
        tries = [t for t in tries if t.startswith("smartpos ")]
        assert any(t.startswith("smartpos terminal sale") for t in tries), text

        def sale_json() -> dict[str, str]:
            args = ["--amount", "30.00", "--card", "6212340000000001", "--pin", "123456"]
            out: dict[str, str] = js(cli(home, "terminal", "sale", *args, "--json"))
            assert out["result"] == "approved", out
            return out

        for suggestion in tries:
            command, _, comment = suggestion.partition("#")
            if "<trace of a sale>" in command:
                command = command.replace("<trace of a sale>", sale_json()["stan"])
            if "<RRN of a sale>" in command:
                command = command.replace("<RRN of a sale>", sale_json()["rrn"])
            args = shlex.split(command)[1:]
            done = cli(home, *args, ok=False)
            expected = comment.strip()
            if expected.isdigit():  # "# 51": declined with that response code
                assert done.returncode == 1 and expected in done.stdout, (suggestion, done)
            else:
                assert done.returncode == 0, (suggestion, done.stdout, done.stderr)
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=20)
    assert demo.returncode == 0 and "host stopped" in out, out
