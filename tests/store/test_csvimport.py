"""CSV import: what a shop's Excel file does to the catalog, and every fault it is told of."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import Engine

from smartpos.config import Settings
from smartpos.db.pos import open_pos_db
from smartpos.store.catalog import Catalog, gtin_check_digit
from smartpos.store.csvimport import ERRORS_MAX, FILE_MAX_BYTES, RowError, import_products

HEADER = "sku,barcode,name_zh,name_en,category,price,unit,tax_code,tax_rate,stock\n"
TAX = "1030307000000000000"


def _ean13(body12: str) -> str:
    return body12 + str(gtin_check_digit(body12))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = open_pos_db(Settings(home=tmp_path), durable=False)
    cat = Catalog(eng)
    cat.add_category("drinks", "饮料", "Drinks")
    cat.add_category("fruit", "水果", "Fruit")
    return eng


def _good_rows() -> str:
    return (
        f"W1,{_ean13('692000000011')},矿泉水 550ml,Mineral water 550 ml,drinks,2.00,bottle,"
        f"{TAX},13,24\n"
        f"C1,{_ean13('692000000012')},可乐 330ml,Cola 330 ml,drinks,3,can,{TAX},13%,\n"
        'F1,,香蕉 约1kg,Bananas approx. 1 kg,fruit,"1,007.90",bag,,9,5\n'
    )


def test_a_good_file_inserts_then_updates(engine: Engine) -> None:
    report = import_products(engine, HEADER + _good_rows())
    assert (report.ok, report.inserted, report.updated, report.errors) == (True, 3, 0, [])
    cat = Catalog(engine)
    water = cat.search("W1")[0]
    assert (water.price_minor, water.unit, water.tax_code, water.tax_rate_bp) == (
        200,
        "bottle",
        TAX,
        1300,
    )
    assert water.stock_qty == 24
    assert [(m.delta_qty, m.reason) for m in cat.stock_moves(water.id)] == [(24, "import")]
    banana = cat.search("F1")[0]
    assert (banana.price_minor, banana.tax_rate_bp, banana.barcode) == (100790, 900, None)
    cola = cat.search("C1")[0]
    assert cola.stock_qty == 0 and cat.stock_moves(cola.id) == []

    again = HEADER + f"W1,,矿泉水 550ml,Spring water 550 ml,drinks,2.50,bottle,{TAX},13,20\n"
    report = import_products(engine, again)
    assert (report.ok, report.inserted, report.updated) == (True, 0, 1)
    water = cat.search("W1")[0]
    assert (water.price_minor, water.name_en, water.stock_qty) == (250, "Spring water 550 ml", 20)
    assert [m.delta_qty for m in cat.stock_moves(water.id)] == [-4, 24]
    assert cat.count() == 3


def test_dry_run_counts_and_writes_nothing(engine: Engine) -> None:
    report = import_products(engine, HEADER + _good_rows(), dry_run=True)
    assert (report.ok, report.inserted, report.dry_run) == (True, 3, True)
    assert Catalog(engine).count() == 0


def test_gb18030_bom_and_file_objects(engine: Engine) -> None:
    text = HEADER + _good_rows()
    assert import_products(engine, text.encode("gb18030"), dry_run=True).inserted == 3
    assert import_products(engine, text.encode("utf-8-sig"), dry_run=True).inserted == 3
    assert import_products(engine, "\ufeff" + text, dry_run=True).inserted == 3
    assert import_products(engine, io.BytesIO(text.encode("gb18030"))).inserted == 3
    assert Catalog(engine).search("香蕉")[0].name_en == "Bananas approx. 1 kg"


def test_one_bad_row_among_good_ones_imports_nothing(engine: Engine) -> None:
    rows = _good_rows().splitlines(keepends=True)
    text = HEADER + rows[0] + "X1,,坏,Bad,drinks,abc,,,,\n" + rows[1] + rows[2]
    report = import_products(engine, text)
    assert not report.ok and report.inserted == 0
    assert [(e.line, e.column) for e in report.errors] == [(3, "price")]
    assert "not an amount" in report.errors[0].message
    assert Catalog(engine).count() == 0


@pytest.mark.parametrize(
    ("row", "column", "words"),
    [
        ("X1,,水,Water,drinks,abc,,,,", "price", "not an amount"),
        ("X1,,水,Water,drinks,-1.00,,,,", "price", "negative"),
        ('X1,,水,Water,drinks,"12,34",,,,', "price", "decimal point"),
        ("X1,,水,Water,drinks,1.234,,,,", "price", "decimal places"),
        ("X1,6920000000110,水,Water,drinks,1,,,,", "barcode", "check digit"),
        ("X1,,水,Water,snacks,1,,,,", "category", "unknown category"),
        ("X1,,,Water,drinks,1,,,,", "name_zh", "empty"),
        ("X1,,水," + "W" * 121 + ",drinks,1,,,,", "name_en", "120"),
        ("X 1,,水,Water,drinks,1,,,,", "sku", "letters"),
        ("X1,,水,Water,drinks,1,,123,,", "tax_code", "19 digits"),
        ("X1,,水,Water,drinks,1,,,13.555,", "tax_rate", "two decimals"),
        ("X1,,水,Water,drinks,1,,,abc,", "tax_rate", "percentage"),
        ("X1,,水,Water,drinks,1,,,,-3", "stock", "whole number"),
        ("X1,,水,Water,drinks,1,,,,,extra", "", "11 columns"),
    ],
)
def test_each_fault_is_named_by_line_and_column(
    engine: Engine, row: str, column: str, words: str
) -> None:
    report = import_products(engine, HEADER + _good_rows() + row + "\n")
    assert not report.ok and Catalog(engine).count() == 0
    assert [(e.line, e.column) for e in report.errors] == [(5, column)], report.errors
    assert words in report.errors[0].message


def test_duplicates_within_the_file_and_with_the_catalog(engine: Engine) -> None:
    import_products(engine, HEADER + _good_rows())
    taken = _ean13("692000000011")  # W1's
    text = (
        HEADER
        + "N1,,一,One,drinks,1,,,,\n"
        + "N1,,二,Two,drinks,1,,,,\n"
        + f"N2,{_ean13('692000000099')},三,Three,drinks,1,,,,\n"
        + f"N3,{_ean13('692000000099')},四,Four,drinks,1,,,,\n"
        + f"N4,{taken},五,Five,drinks,1,,,,\n"
    )
    report = import_products(engine, text)
    assert report.errors == [
        RowError(3, "sku", "N1 is already on line 2"),
        RowError(5, "barcode", f"{_ean13('692000000099')} is already on line 4"),
        RowError(6, "barcode", f"{taken} is product W1's"),
    ]
    assert Catalog(engine).count() == 3


def test_header_faults(engine: Engine) -> None:
    report = import_products(engine, "sku,name_zh,colour,price\nA,水,blue,1\n")
    assert {(e.line, e.column) for e in report.errors} == {
        (1, "colour"),
        (1, "name_en"),
        (1, "category"),
    }
    assert import_products(engine, "").errors[0].line == 1


def test_lines_count_quoted_newlines_and_skip_blank_lines(engine: Engine) -> None:
    """A row is reported at the line it starts on; a name may not hold a line break."""
    text = HEADER + '"W1",,"矿泉水\n550ml",Water,drinks,1,,,,\n\nX1,,水,Water,drinks,x,,,,\n'
    assert [(e.line, e.column) for e in import_products(engine, text).errors] == [
        (2, "name_zh"),
        (5, "price"),
    ]


def test_errors_are_capped_and_counted(engine: Engine) -> None:
    rows = "".join(f"X{i},,水,Water,drinks,bad,,,,\n" for i in range(ERRORS_MAX + 20))
    report = import_products(engine, HEADER + rows)
    assert len(report.errors) == ERRORS_MAX and report.error_count == ERRORS_MAX + 20


def test_size_and_encoding_limits(engine: Engine) -> None:
    big = io.BytesIO(b"x" * (FILE_MAX_BYTES + 1))
    assert "larger than" in import_products(engine, big).errors[0].message
    report = import_products(engine, (HEADER + "X1,,\x00,W,drinks,1,,,,\n").encode())
    assert not report.ok
