"""`smartpos demo`, the README's first command: it starts, says how to run a sale, and every
command it suggests works as its comment says, in the order printed, pasted into a shell
as it is (card and PIN piped in, never on the command line); Ctrl-C stops it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_cli import SMARTPOS, _free_port, cli, data

pytestmark = pytest.mark.integration


def _in_shell(home: Path, line: str) -> subprocess.CompletedProcess[str]:
    """Run ``line`` in bash, as a person pastes it, with ``smartpos`` the command under test."""
    define = f'smartpos() {{ {shlex.join(SMARTPOS)} "$@"; }}'
    return subprocess.run(
        ["bash", "-c", f"{define}\n{line}"],
        env={**os.environ, "SMARTPOS_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_demo_starts_and_every_suggested_command_works(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    env = {**os.environ, "SMARTPOS_HOME": str(home), "COLUMNS": "300"}
    demo = subprocess.Popen(
        [*SMARTPOS, "demo", "--port", str(_free_port()), "--pos-port", str(_free_port())],
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
        start = next(i for i, line in enumerate(lines) if line.startswith("In another shell"))
        url = next(ln.split()[-1] for ln in lines if ln.startswith("The cashier app:"))
        with urllib.request.urlopen(url + "selftest", timeout=30) as page:
            html = page.read().decode()
        assert 'data-testid="check-host_link" data-status="ok"' in html, html
        tries = [line.strip() for line in lines[start + 1 :]]
        tries = [t for t in tries if t.startswith(("smartpos ", "printf "))]
        assert any("smartpos terminal sale" in t for t in tries), text
        for suggestion in tries:
            assert "--card" not in suggestion and "--pin 1" not in suggestion, suggestion

        def sale() -> dict[str, str]:
            args = ["--amount", "30.00", "--pin", "--json"]
            done = cli(home, "terminal", "sale", *args, card="6212340000000001", pin="123456")
            out: dict[str, str] = data(done)
            return out

        for suggestion in tries:
            command, _, comment = suggestion.partition("#")
            if "<trace of a sale>" in command:
                command = command.replace("<trace of a sale>", sale()["stan"])
            if "<RRN of a sale>" in command:
                command = command.replace("<RRN of a sale>", sale()["rrn"])
            done = _in_shell(home, command)
            assert "Traceback" not in done.stderr, (suggestion, done.stderr)
            expected = comment.strip()
            if expected.isdigit():  # "# 51": declined with that response code
                assert done.returncode == 1 and expected in done.stdout, (suggestion, done)
            else:
                assert done.returncode == 0, (suggestion, done.stdout, done.stderr)
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=20)
    assert demo.returncode == 0 and "host stopped" in out, out
