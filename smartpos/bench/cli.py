"""``smartpos bench cli``: how long the command line takes, as a cashier's script runs it.

A ``smartpos terminal sale`` is a new process every time: most of its wall time is Python
starting and importing, not the sale (docs/benchmarks.md, "CLI start-up"). This bench
measures it from outside, the way it is used:

* a scratch data directory (``SMARTPOS_HOME``; no other ``SMARTPOS_*`` setting and no
  ``.env`` of the caller's reaches the processes) and ``smartpos demo`` on loopback in it, as
  a subprocess: a real host over TLS with a provisioned, signed-on terminal;
* then, in rounds, one of each: ``smartpos terminal sale --amount 1.00 --pin`` with the card
  and the PIN on standard input (every sale must be approved), ``smartpos terminal --help``
  and ``python -c "import smartpos.cli"`` — each a new process, timed wall-clock from start to
  exit. Rounds interleave the three so a machine busy for a while slows all of them alike;
  one unmeasured round first warms the disk cache and the database;
* the median, p90 (nearest rank), min and max of each, in milliseconds; and the median CPU
  time (user + system) of each, which a busy machine inflates less than the wall time.

The demo is stopped (SIGTERM: it answers what it has read first) and the scratch directory
removed, also when a run fails.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["bench_cli", "main", "render", "summary"]

RUNS_MAX = 400  # the demo terminal's batch holds 500 sales; beyond, settling would be timed
_READY_TIMEOUT_S = 90.0
_COMMAND_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0
_READY = "smartpos demo"  # the demo's first line, printed once the terminal has signed on
_AMOUNT = "1.00"


def _smartpos() -> list[str]:
    """The ``smartpos`` command as people run it: the console script beside this Python if it
    is installed, else the same entry point through ``python -c``."""
    script = Path(sys.executable).with_name("smartpos")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from smartpos.cli import app; app()"]


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SMARTPOS_")}
    env["SMARTPOS_HOME"] = str(home)
    return env


def summary(times_ms: Sequence[float], cpu_ms: Sequence[float] = ()) -> dict[str, float | int]:
    """Median, p90 (nearest rank), min and max of ``times_ms``, rounded to 0.1 ms; with
    ``cpu_ms``, also the median CPU time (user + system)."""
    ordered = sorted(times_ms)
    p90 = ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]
    result: dict[str, float | int] = {
        "runs": len(ordered),
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(p90, 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
    }
    if cpu_ms:
        result["cpu_median_ms"] = round(statistics.median(cpu_ms), 1)
    return result


def _cpu_ms_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def _timed(
    argv: list[str], env: dict[str, str], cwd: Path, entered: str = ""
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall-clock and CPU time of one run of ``argv`` (CPU of the children reaped meanwhile:
    only this one, the demo is reaped at the end)."""
    cpu = _cpu_ms_of_children()
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - argv is this module's: smartpos or this Python
        argv,
        input=entered,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=_COMMAND_TIMEOUT_S,
        check=False,
    )
    return (time.perf_counter() - started) * 1000, _cpu_ms_of_children() - cpu, done


def _free_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _demo(port: int, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """``smartpos demo --port port``, running and ready, stopped on leaving."""
    demo = subprocess.Popen(  # noqa: S603 - the smartpos command, fixed arguments
        [*_smartpos(), "demo", "--port", str(port), "--pos-port", str(_free_tcp_port())],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        _wait_ready(demo, demo.stdout)
        yield demo
    finally:
        _stop(demo)


def _wait_ready(demo: subprocess.Popen[str], out: IO[str]) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    said: list[str] = []
    while time.monotonic() < deadline:
        line = out.readline()
        if not line:  # it exited
            demo.wait(_STOP_TIMEOUT_S)
            raise RuntimeError(f"smartpos demo exited ({demo.returncode}): {''.join(said)}")
        said.append(line)
        if line.startswith(_READY):
            return
    raise RuntimeError(f"smartpos demo not ready after {_READY_TIMEOUT_S:g} s: {''.join(said)}")


def _stop(demo: subprocess.Popen[str]) -> None:
    if demo.poll() is None:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait(_STOP_TIMEOUT_S)
    if demo.stdout is not None:
        demo.stdout.close()


def _approved(done: subprocess.CompletedProcess[str], as_json: bool) -> bool:
    if done.returncode != 0:
        return False
    if as_json:
        return bool(jsonlib.loads(done.stdout).get("result") == "approved")
    return done.stdout.startswith("APPROVED")


def bench_cli(runs: int = 20, port: int = 18583, json: bool = False) -> dict[str, Any]:
    """Time ``runs`` sales, ``runs`` ``terminal --help`` and ``runs`` imports of the CLI,
    each a new process, against a demo host on ``port`` in a scratch data directory.

    ``json``: the sales print ``--json`` (as an integrator's script reads them) instead of
    lines for people. Raises ``RuntimeError`` if the demo does not start or a sale is not
    approved; ``ValueError`` for a ``runs`` or ``port`` out of range."""
    if not 1 <= runs <= RUNS_MAX:
        raise ValueError(f"runs is 1 to {RUNS_MAX}")
    if not 1 <= port <= 65535:
        raise ValueError("port is 1 to 65535")
    from smartpos.host.testcards import CATALOGUE

    card = CATALOGUE[0]  # approved (00) with its PIN
    smartpos = _smartpos()
    sale = [*smartpos, "terminal", "sale", "--amount", _AMOUNT, "--pin"]
    sale += ["--json"] if json else []
    commands: dict[str, tuple[list[str], str]] = {
        "sale": (sale, f"{card.pan}\n{card.pin}\n"),
        "help": ([*smartpos, "terminal", "--help"], ""),
        "import": ([sys.executable, "-c", "import smartpos.cli"], ""),
    }
    home = Path(tempfile.mkdtemp(prefix="smartpos-bench-cli-"))
    env = _environment(home / "home")
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    try:
        with _demo(port, env, home):
            for round_no in range(runs + 1):  # round 0: warm-up, not counted
                for name, (argv, entered) in commands.items():
                    elapsed_ms, cpu_ms, done = _timed(argv, env, home, entered)
                    if done.returncode != 0 or (name == "sale" and not _approved(done, json)):
                        raise RuntimeError(
                            f"{' '.join(argv[-6:])} failed ({done.returncode}):"
                            f" {done.stdout.strip()} {done.stderr.strip()}"
                        )
                    if round_no:
                        times[name].append(elapsed_ms)
                        cpu[name].append(cpu_ms)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "runs": runs,
        "json": json,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        **{name: summary(times[name], cpu[name]) for name in commands},
    }


_LABELS = {
    "sale": "terminal sale --pin",
    "help": "terminal --help",
    "import": "import smartpos.cli",
}


def render(result: dict[str, Any]) -> str:
    """The result as a small table for people (milliseconds)."""
    sale = _LABELS["sale"] + (" --json" if result["json"] else "")
    lines = [
        f"smartpos bench cli — {result['runs']} runs each, Python {result['python']},"
        f" {result['cpus']} CPUs (wall ms: median / p90 / min / max; CPU ms: median)",
    ]
    for name in ("sale", "help", "import"):
        s = result[name]
        label = sale if name == "sale" else _LABELS[name]
        lines.append(
            f"  {label:<28} {s['median_ms']:>7.1f} {s['p90_ms']:>7.1f}"
            f" {s['min_ms']:>7.1f} {s['max_ms']:>7.1f}   {s.get('cpu_median_ms', 0):>7.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    """``python -m smartpos.bench.cli [--runs N] [--port P] [--json]``: run the bench, print
    the table, then the result as one JSON line."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m smartpos.bench.cli")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--port", type=int, default=18583)
    parser.add_argument("--json", action="store_true", help="time sales with --json")
    args = parser.parse_args(argv)
    result = bench_cli(args.runs, args.port, args.json)
    out(render(result))
    out(jsonlib.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
