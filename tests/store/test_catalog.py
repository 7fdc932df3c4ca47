"""The catalog: search as the sell screen uses it, the product rules, stock moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from smartpos.store.catalog import (
    QUERY_MAX_CHARS,
    Catalog,
    CatalogError,
    Category,
    Product,
    check_barcode,
    gtin_check_digit,
)
from smartpos.store.seed import generate_products
from tests.posdb import pos_database


def _ean13(body12: str) -> str:
    return body12 + str(gtin_check_digit(body12))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with pos_database(request.param, tmp_path, "smartpos_catalog") as eng:
        yield eng


@pytest.fixture
def shop(engine: Engine) -> tuple[Catalog, Category, Category]:
    """Drinks and snacks, with a few products whose names test the ordering."""
    cat = Catalog(engine)
    drinks = cat.add_category("drinks", "饮料", "Drinks", sort=1)
    snacks = cat.add_category("snacks", "零食", "Snacks", sort=2)
    for sku, zh, en, category, barcode in [
        ("D1", "矿泉水 550ml", "Mineral water 550 ml", drinks, _ean13("692000000001")),
        ("D2", "可乐 330ml", "Cola 330 ml", drinks, _ean13("692000000002")),
        ("D3", "无糖可乐 330ml", "Zero sugar cola 330 ml", drinks, None),
        ("D4", "苏打水 100%", "Soda water 100% natural", drinks, None),
        ("D5", "苏打水 100ml", "Soda water 100 ml", drinks, None),
        ("S1", "薯片 原味 70g", "Potato chips original 70 g", snacks, _ean13("692000000003")),
        ("S2", "可乐味糖", "Cola candy", snacks, None),
        ("S3", "饼干 a_b", "Crackers a_b", snacks, None),
        ("S4", "饼干 axb", "Crackers axb", snacks, None),
    ]:
        cat.add_product(
            sku=sku,
            name_zh=zh,
            name_en=en,
            category_id=category.id,
            price_minor=300,
            barcode=barcode,
        )
    return cat, drinks, snacks


def _skus(found: list[Product]) -> list[str]:
    return [p.sku for p in found]


def test_search_finds_a_chinese_substring(shop: tuple[Catalog, Category, Category]) -> None:
    cat, _, _ = shop
    assert _skus(cat.search("泉")) == ["D1"]
    # Names starting with the query first, then those containing it.
    assert _skus(cat.search("可乐")) == ["D2", "S2", "D3"]


def test_search_ignores_case_in_english(shop: tuple[Catalog, Category, Category]) -> None:
    cat, _, _ = shop
    assert _skus(cat.search("COLA")) == _skus(cat.search("cola"))
    # English name starting with it first (by English name), then containing it.
    assert _skus(cat.search("cola")) == ["D2", "S2", "D3"]
    assert _skus(cat.search("mInErAl")) == ["D1"]


def test_an_exact_barcode_or_sku_comes_first(shop: tuple[Catalog, Category, Category]) -> None:
    cat, _, _ = shop
    barcode = _ean13("692000000003")
    assert _skus(cat.search(barcode)) == ["S1"]
    assert _skus(cat.search("  " + barcode + " ")) == ["S1"]
    assert _skus(cat.search("S2")) == ["S2"]
    by_code = cat.by_barcode(barcode)
    assert by_code is not None and by_code.sku == "S1"
    assert cat.by_barcode(_ean13("692000000009")) is None


def test_percent_and_underscore_are_literal(shop: tuple[Catalog, Category, Category]) -> None:
    cat, _, _ = shop
    assert _skus(cat.search("100%")) == ["D4"]
    assert _skus(cat.search("a_b")) == ["S3"]
    assert _skus(cat.search("%")) == ["D4"]
    assert _skus(cat.search("_")) == ["S3"]


def test_inactive_products_are_not_found(shop: tuple[Catalog, Category, Category]) -> None:
    cat, _, _ = shop
    d2 = cat.search("D2")[0]
    cat.update_product(d2.id, active=False)
    assert "D2" not in _skus(cat.search("可乐"))
    assert "D2" not in _skus(cat.search(""))
    assert cat.by_barcode(_ean13("692000000002")) is None
    got = cat.get(d2.id)
    assert got is not None and not got.active  # still there for old orders


def test_category_filter_and_empty_query(shop: tuple[Catalog, Category, Category]) -> None:
    cat, drinks, snacks = shop
    assert _skus(cat.search("可乐", category_id=snacks.id)) == ["S2"]
    assert set(_skus(cat.search("", category_id=drinks.id))) == {"D1", "D2", "D3", "D4", "D5"}
    assert len(cat.search("")) == 9
    assert [c.code for c in cat.categories()] == ["drinks", "snacks"]
    assert cat.categories()[0].name("zh_CN") == "饮料"
    assert cat.categories()[0].name("en") == "Drinks"


def test_limit_and_offset_page_through_the_same_order(
    shop: tuple[Catalog, Category, Category],
) -> None:
    cat, _, _ = shop
    everything = _skus(cat.search("", limit=50))
    assert _skus(cat.search("", limit=4)) == everything[:4]
    assert _skus(cat.search("", limit=4, offset=4)) == everything[4:8]
    ranked = _skus(cat.search("a", limit=50))
    assert _skus(cat.search("a", limit=2, offset=1)) == ranked[1:3]


def test_search_refuses_what_it_cannot_answer(shop: tuple[Catalog, Category, Category]) -> None:
    cat, _, _ = shop
    assert cat.search("x" * QUERY_MAX_CHARS) == []
    with pytest.raises(ValueError, match="longer"):
        cat.search("x" * (QUERY_MAX_CHARS + 1))
    with pytest.raises(ValueError, match="limit"):
        cat.search("", limit=0)
    with pytest.raises(ValueError, match="control"):
        cat.search("可乐\nx")


def test_search_in_a_large_catalog_pages_in_order(engine: Engine) -> None:
    """Generated products: every page is in the documented order and pages do not overlap."""
    generate_products(engine, 2000, batch=700)
    cat = Catalog(engine)
    assert cat.count() == 2000
    everything = cat.search("water", limit=200)
    assert len(everything) > 40
    assert all("water" in p.name_en.lower() for p in everything)
    assert len({p.id for p in everything}) == len(everything)
    assert (
        cat.search("water", limit=20) + cat.search("water", limit=20, offset=20)
        == (everything[:40])
    )
    # The English prefix group ("Water…") before the substring group ("…water…").
    starts = [p.name_en.lower().startswith("water") for p in everything]
    assert starts == sorted(starts, reverse=True) and starts[0]


def test_product_rules() -> None:
    assert check_barcode("6901234567892") == "6901234567892"
    assert check_barcode("12345670") == "12345670"  # EAN-8
    assert check_barcode("PLU4011") == "PLU4011"  # internal code
    for bad in ("6901234567890", "123", "12ab!", "abc"):
        with pytest.raises(CatalogError) as exc:
            check_barcode(bad)
        assert exc.value.field == "barcode"


def test_add_product_checks_every_field(shop: tuple[Catalog, Category, Category]) -> None:
    cat, drinks, _ = shop
    ok = {
        "sku": "N1",
        "name_zh": "绿茶",
        "name_en": "Green tea",
        "category_id": drinks.id,
        "price_minor": 300,
    }
    for field, value, blamed in [
        ("price_minor", -1, "price"),
        ("price_minor", 1.5, "price"),
        ("name_zh", " ", "name_zh"),
        ("name_en", "x" * 121, "name_en"),
        ("barcode", "6901234567890", "barcode"),
        ("sku", "D1", "sku"),  # taken
        ("category_id", 999, "category"),
        ("tax_code", "123", "tax_code"),
    ]:
        with pytest.raises(CatalogError) as exc:
            cat.add_product(**{**ok, field: value})  # type: ignore[arg-type]
        assert exc.value.field == blamed, (field, value)
    made = cat.add_product(**ok)  # type: ignore[arg-type]
    assert cat.get(made.id) == made and made.name("zh_CN") == "绿茶"


def test_update_product_changes_only_what_is_given(
    shop: tuple[Catalog, Category, Category],
) -> None:
    cat, _, _ = shop
    d1 = cat.search("D1")[0]
    after = cat.update_product(d1.id, price_minor=250, name_en="Spring water 550 ml")
    assert after.price_minor == 250 and after.name_zh == d1.name_zh
    assert _skus(cat.search("spring")) == ["D1"]  # the search key follows the name
    with pytest.raises(CatalogError):
        cat.update_product(d1.id, barcode=_ean13("692000000002"))  # D2's
    with pytest.raises(LookupError):
        cat.update_product(10_000, price_minor=1)


def test_adjust_stock_commits_with_the_callers_transaction(
    shop: tuple[Catalog, Category, Category], engine: Engine
) -> None:
    cat, _, _ = shop
    d1 = cat.search("D1")[0]
    with engine.begin() as conn:
        assert cat.adjust_stock(conn, d1.id, 10, reason="import", ref="csv-1") == 10
        assert cat.adjust_stock(conn, d1.id, -3, reason="sale", ref="order-7") == 7
    got = cat.get(d1.id)
    assert got is not None and got.stock_qty == 7
    assert [(m.delta_qty, m.reason, m.ref) for m in cat.stock_moves(d1.id)] == [
        (-3, "sale", "order-7"),
        (10, "import", "csv-1"),
    ]
    # The payment fails after the stock move: both are undone.
    with pytest.raises(RuntimeError), engine.begin() as conn:
        cat.adjust_stock(conn, d1.id, -1, reason="sale", ref="order-8")
        raise RuntimeError("payment refused")
    got = cat.get(d1.id)
    assert got is not None and got.stock_qty == 7 and len(cat.stock_moves(d1.id)) == 2
    with engine.begin() as conn:
        with pytest.raises(CatalogError):
            cat.adjust_stock(conn, d1.id, 1, reason="gift", ref=None)
        with pytest.raises(LookupError):
            cat.adjust_stock(conn, 10_000, 1, reason="count", ref=None)


def test_the_catalog_bench_runs_on_a_small_catalog() -> None:
    """``python -m smartpos.bench.catalog`` end to end, small: numbers for every kind."""
    from smartpos.bench.catalog import render, run_catalog_bench

    result = run_catalog_bench(600, samples=3)
    assert result["products"] == 600 and result["backend"] == "sqlite"
    assert set(result["search"]) == {"chinese", "english", "scan", "by_barcode", "no_match"}
    assert all(q["n"] >= 3 for q in result["search"].values())
    assert "p95 ms" in render(result)
