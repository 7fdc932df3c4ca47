"""Browser tests: Playwright driving Debian's chromium against a running demo (the sandbox
host, the terminal and the cashier app in one process, as the README's run command starts
them), each test in a fresh browser context (its own cookies)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from smartpos.bench.browser import CHROMIUM, FLAGS
from tests.test_cli import SMARTPOS, _free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)


@dataclass
class Demo:
    home: Path
    url: str
    process: subprocess.Popen[str]
    output: list[str]

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            out, _ = self.process.communicate(timeout=30)
            self.output.append(out)
        return "".join(self.output)


def start(home: Path, *args: str, until: str = "Press Ctrl-C") -> Demo:
    env = {**os.environ, "SMARTPOS_HOME": str(home), "COLUMNS": "300"}
    process = subprocess.Popen(
        [*SMARTPOS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while not lines or until not in lines[-1]:
        assert time.monotonic() < deadline, "".join(lines)
        line = process.stdout.readline()
        assert line, "exited early:\n" + "".join(lines)
        lines.append(line)
    url = next(
        line.split()[-1] for line in lines if "http://" in line and line.split()[-1][:4] == "http"
    )
    return Demo(home, url, process, lines)


def start_demo(home: Path) -> Demo:
    return start(home, "demo", "--port", str(_free_port()), "--pos-port", str(_free_port()))


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = start_demo(tmp_path_factory.mktemp("demo") / "home")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Module-scoped: while Playwright's sync API runs, its event loop is the thread's, and
    the tests that call ``asyncio.run`` (most of the suite) cannot run in that worker."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()
