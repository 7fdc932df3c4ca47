"""The demo store and the synthetic catalogs: believable, valid, the same every run."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from smartpos.config import Settings
from smartpos.db.pos import open_pos_db
from smartpos.store.catalog import Catalog, check_barcode, check_tax_code, gtin_check_digit
from smartpos.store.catalog_tables import products
from smartpos.store.seed import generate_products, seed_demo_catalog


def _engine(path: Path) -> Engine:
    return open_pos_db(Settings(home=path), durable=False)


def _rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(products).order_by(products.c.sku))]


def test_the_demo_store_is_believable_and_valid(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    added = seed_demo_catalog(engine)
    cat = Catalog(engine)
    assert 300 <= added <= 400 and cat.count() == added
    assert 10 <= len(cat.categories()) <= 14
    everything = [p for c in cat.categories() for p in cat.search("", category_id=c.id, limit=200)]
    assert len(everything) == added
    for p in everything:
        assert p.barcode is not None and len(p.barcode) == 13 and p.barcode.startswith("69")
        assert check_barcode(p.barcode) == p.barcode
        assert int(p.barcode[-1]) == gtin_check_digit(p.barcode[:-1])
        assert check_tax_code(p.tax_code) == p.tax_code
        assert 50 <= p.price_minor <= 200_00 and p.stock_qty > 0
        assert p.name_zh and p.name_en.isascii()
    assert len({p.name_zh for p in everything}) == added
    water = cat.search("矿泉水 550ml")[0]
    assert (water.name_en, water.price_minor, water.tax_rate_bp) == (
        "Mineral water 550 ml",
        200,
        1300,
    )
    fruit = next(c for c in cat.categories() if c.code == "fruit")
    assert {p.tax_rate_bp for p in cat.search("", category_id=fruit.id)} == {900}


def test_seeding_is_idempotent_and_deterministic(tmp_path: Path) -> None:
    one, two = _engine(tmp_path / "a"), _engine(tmp_path / "b")
    first = seed_demo_catalog(one)
    assert seed_demo_catalog(one) == 0
    assert Catalog(one).count() == first
    seed_demo_catalog(two)
    assert _rows(one) == _rows(two)


def test_generated_products_are_unique_valid_and_reported(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    seen: list[tuple[int, int]] = []
    assert (
        generate_products(engine, 1200, batch=500, progress=lambda d, t: seen.append((d, t)))
        == 1200
    )
    assert seen == [(500, 1200), (1000, 1200), (1200, 1200)]
    generate_products(engine, 300)  # continues after the first ones
    rows = _rows(engine)
    assert len(rows) == 1500
    with engine.connect() as conn:
        got = conn.execute(select(products.c.sku, products.c.barcode, products.c.name_zh)).all()
    assert len({r.sku for r in got}) == len({r.barcode for r in got}) == 1500
    assert all(check_barcode(r.barcode) == r.barcode for r in got)
    assert len({r.name_zh for r in got}) == 1500  # names vary too
    other = _engine(tmp_path / "other")
    generate_products(other, 1500)
    assert _rows(other) == rows
