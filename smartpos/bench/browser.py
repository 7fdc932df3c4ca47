"""The cashier app measured in a real browser (Debian's chromium through Playwright, a dev
dependency): a demo on a fresh data directory, optionally with a catalog of N products, then

- the sell screen: from navigation to the products shown (ms), several times;
- search per keystroke: from the request htmx sends to the results swapped in (ms), typing
  Chinese and English words one character at a time;
- Pay: from tapping Pay (after the PIN) to the approved screen (ms), over N card sales.

``python -m smartpos.bench.browser --products 100000 --sales 30`` (docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUERIES = ("矿泉水", "薯片", "cola", "water", "牛奶", "chips")
CARD = "6212340000000001"
PIN = "123456"

# Stamps each htmx request to #products and the swap of its answer.
_PROBE = """
window.__lat = [];
document.addEventListener('htmx:beforeRequest', e => {
  if (e.detail.target && e.detail.target.id === 'products') window.__t0 = performance.now();
});
document.addEventListener('htmx:afterSwap', e => {
  if (e.detail.target && e.detail.target.id === 'products' && window.__t0 !== undefined) {
    window.__lat.push(performance.now() - window.__t0); window.__t0 = undefined;
  }
});
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _row(name: str, values: list[float]) -> str:
    return (
        f"{name:<34} n={len(values):<4} p50 {statistics.median(values):7.1f} ms"
        f"   p95 {_pct(values, 0.95):7.1f} ms   max {max(values):7.1f} ms"
    )


def _start_demo(home: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "SMARTPOS_HOME": str(home), "COLUMNS": "300"}
    cmd = [sys.executable, "-c", "from smartpos.cli import app; app()", "demo"]
    cmd += ["--port", str(_free_port()), "--pos-port", str(_free_port())]
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    url = ""
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if line.startswith("The cashier app:"):
            url = line.split()[-1]
        if "Press Ctrl-C" in line:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the demo did not start")
    return proc, url


def _catalog(home: Path, products: int) -> None:
    from smartpos.config import Settings
    from smartpos.db.pos import open_pos_db
    from smartpos.store.seed import generate_products

    engine = open_pos_db(Settings(home=home))
    try:
        t0 = time.perf_counter()
        generate_products(engine, products)
        print(f"catalog: {products:,} products generated in {time.perf_counter() - t0:.1f} s")
    finally:
        engine.dispose()


def _wait_for_more(page: Any, n: int, timeout_s: float = 10.0) -> None:
    """Until the probe has more than ``n`` stamps (polled: the page's CSP allows no eval,
    which ``wait_for_function`` needs)."""
    deadline = time.monotonic() + timeout_s
    while page.evaluate("window.__lat.length") <= n:
        if time.monotonic() > deadline:
            raise TimeoutError("no search answer")
        page.wait_for_timeout(2)


def run(products: int, sales: int, opens: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    from smartpos.security.seed import DEMO_LOGINS

    cashier = next(login for login in DEMO_LOGINS if login.role == "cashier")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        proc, url = _start_demo(home)  # the first start makes the databases and the store
        try:
            if products:
                _catalog(home, products)
            results: dict[str, list[float]] = {"open": [], "keystroke": [], "pay": []}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url + "lang/zh_CN?next=/login")
                page.get_by_test_id("identifier").fill(cashier.staff_no)
                page.get_by_test_id("password").fill(cashier.password)
                page.get_by_test_id("login").click()
                page.wait_for_load_state()
                if page.url.endswith("/shift"):
                    page.get_by_test_id("float").fill("500")
                    page.get_by_test_id("open-shift").click()
                page.wait_for_url("**/sell")
                for _ in range(opens):
                    t0 = time.perf_counter()
                    page.goto(url + "sell")
                    page.locator("[data-testid^=product-]").first.wait_for()
                    results["open"].append((time.perf_counter() - t0) * 1000)
                page.evaluate(_PROBE)  # through the devtools protocol: CSP allows no inline script
                search = page.get_by_test_id("search")
                for query in QUERIES:
                    search.fill("")
                    for i in range(1, len(query) + 1):
                        n = page.evaluate("window.__lat.length")
                        search.fill(query[:i])
                        _wait_for_more(page, n)
                results["keystroke"] = list(page.evaluate("window.__lat"))
                search.fill("")
                for _ in range(sales):
                    for d in "1234":
                        page.locator(f'#keypad .key[data-key="{d}"]').click()
                    page.get_by_test_id("add-amount").click()
                    page.get_by_test_id("line-1").wait_for()
                    page.get_by_test_id("pay-card").click()
                    page.get_by_test_id("test-card").select_option(CARD)
                    page.get_by_test_id("insert").click()
                    for d in PIN:
                        page.get_by_test_id(f"pin-key-{d}").click()
                    page.get_by_test_id("pin-dots").filter(has_text="●" * len(PIN)).wait_for()
                    t0 = time.perf_counter()
                    page.get_by_test_id("pay").click()
                    page.get_by_test_id("approved").wait_for()
                    results["pay"].append((time.perf_counter() - t0) * 1000)
                    page.get_by_test_id("new-sale").click()
                    page.wait_for_url("**/sell")
                    page.get_by_test_id("total").wait_for()
                browser.close()
            return results
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--sales", type=int, default=30)
    parser.add_argument("--opens", type=int, default=10)
    args = parser.parse_args(argv)
    results = run(args.products, args.sales, args.opens)
    print(_row("sell screen open", results["open"]))
    print(_row("search, request to results shown", results["keystroke"]))
    print(_row("Pay to approved screen", results["pay"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
