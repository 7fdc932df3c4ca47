"""``python -m smartpos.bench.catalog``: the sell screen's search over a large catalog.

What the cashier app's server will see, in process, through ``Catalog``:

* a fresh POS database (SQLite in a temporary directory, durable as in the shop; or an
  empty database at ``--db-url``), the demo store plus synthetic products up to
  ``--products`` (``generate_products``, progress shown);
* **open**: the sell screen's first page, ``categories()`` and ``search("")`` (40
  products), first on a new database connection, then warm;
* **keystrokes**: words typed a character at a time, as the screen searches on each key —
  Chinese (矿 → 矿泉 → 矿泉水, …) and English (c → co → col → cola, …) — barcode scans
  (``search`` with an EAN-13 that exists), ``by_barcode``, and queries that match nothing
  (the worst case: the whole search index is read). Rounds of all of them, interleaved,
  until each kind has ``--samples`` timings; p50 / p95 (nearest rank) / max in ms.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from smartpos.config import Settings
from smartpos.store.catalog import Catalog
from smartpos.store.catalog_tables import products
from smartpos.store.seed import generate_products, seed_demo_catalog

__all__ = ["main", "run_catalog_bench"]

PRODUCTS_MAX = 2_000_000
_OPEN_ROUNDS = 20
_TYPED = {
    "chinese": ("矿泉水", "可乐", "牛奶", "薯片", "方便面", "洗发水"),
    "english": ("cola", "water", "milk", "chips", "noodles", "shampoo"),
}
_NO_MATCH = ("zqxj", "无此商品", "9999999999999x")


def _quantiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"n": len(ordered), "p50_ms": q(0.50), "p95_ms": q(0.95), "max_ms": q(1.0)}


def _timed_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _open_engine(url: str | None, home: Path) -> Engine:
    from smartpos.db.engine import make_engine
    from smartpos.db.migrate import upgrade
    from smartpos.db.pos import open_pos_db

    if url is None:
        return open_pos_db(Settings(home=home), durable=True)
    engine = make_engine(url)
    upgrade(engine, "pos")
    return engine


def _keystrokes() -> list[tuple[str, str]]:
    """(kind, query) of every keystroke: each prefix of each typed word."""
    return [
        (kind, word[:n])
        for kind, words in _TYPED.items()
        for word in words
        for n in range(1, len(word) + 1)
    ]


def run_catalog_bench(
    n_products: int,
    *,
    samples: int = 200,
    db_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the catalog, measure, return the numbers (also what ``--json`` prints)."""
    if not 1 <= n_products <= PRODUCTS_MAX:
        raise ValueError(f"products must be 1..{PRODUCTS_MAX:,}")
    say = progress or (lambda _line: None)
    with tempfile.TemporaryDirectory(prefix="smartpos-catalog-bench-") as tmp:
        engine = _open_engine(db_url, Path(tmp))
        try:
            if Catalog(engine).count():
                raise ValueError("the database already has products: give an empty one")
            started = time.perf_counter()
            demo = seed_demo_catalog(engine)
            generate_products(
                engine,
                max(0, n_products - demo),
                progress=lambda done, total: say(f"  generated {done:,} / {total:,}"),
            )
            build_s = time.perf_counter() - started
            result = _measure(engine, samples)
            result.update(
                backend=engine.dialect.name,
                products=Catalog(engine).count(),
                build_s=round(build_s, 1),
            )
            return result
        finally:
            engine.dispose()


def _measure(engine: Engine, samples: int) -> dict[str, Any]:
    def first_page(cat: Catalog) -> None:
        cat.categories()
        cat.search("", limit=40)

    # The first open after a restart of the pool: a new database connection.
    engine.dispose()
    open_first_ms = _timed_ms(lambda: first_page(Catalog(engine)))
    cat = Catalog(engine)
    open_warm = [_timed_ms(lambda: first_page(cat)) for _ in range(_OPEN_ROUNDS)]

    with engine.connect() as conn:
        # Barcodes spread over the catalog: every 97th product's.
        barcodes = [
            b
            for b in conn.execute(
                select(products.c.barcode).where(products.c.id % 97 == 0).limit(samples)
            ).scalars()
            if b is not None
        ]
    timings: dict[str, list[float]] = {
        "chinese": [],
        "english": [],
        "scan": [],
        "by_barcode": [],
        "no_match": [],
    }
    keys = _keystrokes()
    round_no = 0
    while min(len(t) for t in timings.values()) < samples:
        for kind, query in keys:
            timings[kind].append(_timed_ms(functools.partial(cat.search, query)))
        code = barcodes[round_no % len(barcodes)]
        timings["scan"].append(_timed_ms(functools.partial(cat.search, code)))
        timings["by_barcode"].append(_timed_ms(functools.partial(cat.by_barcode, code)))
        for query in _NO_MATCH:
            timings["no_match"].append(_timed_ms(functools.partial(cat.search, query)))
        round_no += 1
    everything = [ms for kind in ("chinese", "english", "no_match") for ms in timings[kind]]
    return {
        "open_first_ms": round(open_first_ms, 2),
        "open_warm": _quantiles(open_warm),
        "search": {kind: _quantiles(t) for kind, t in timings.items()},
        "keystrokes_all": _quantiles(everything),
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"catalog search: {result['products']:,} products on {result['backend']} "
        f"(built in {result['build_s']} s)",
        f"open (categories + first 40): first {result['open_first_ms']} ms, "
        f"warm p50 {result['open_warm']['p50_ms']} ms / max {result['open_warm']['max_ms']} ms",
        f"{'query kind':<16}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}",
    ]
    rows = {**result["search"], "all keystrokes": result["keystrokes_all"]}
    for kind, q in rows.items():
        lines.append(
            f"{kind:<16}{q['n']:>6}{q['p50_ms']:>10.2f}{q['p95_ms']:>10.2f}{q['max_ms']:>10.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartpos.bench.catalog")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200, help="timings per query kind")
    parser.add_argument("--db-url", help="an empty PostgreSQL database instead of SQLite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.samples <= 100_000:
        parser.error("--samples must be 1..100,000")
    try:
        result = run_catalog_bench(
            args.products,
            samples=args.samples,
            db_url=args.db_url,
            progress=None if args.json else lambda line: print(line, file=sys.stderr),
        )
    except ValueError as exc:
        parser.error(str(exc))
    out(json.dumps(result) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
