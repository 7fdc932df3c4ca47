"""A CSV import from the screen: a cashier needs a manager's PIN; a file with one bad row
imports nothing and says which line; the good file imports every row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Demo
from tests.e2e.steps import demo_login, start_selling

HEADER = "sku,barcode,name_zh,name_en,category,price,unit,tax_code,tax_rate,stock\n"
GOOD_ROWS = (
    "IMP-0001,,测试茶饮 500ml,Test tea 500 ml,drinks,4.50,bottle,,13,10\n"
    "IMP-0002,,测试饼干 100g,Test biscuits 100 g,snacks,6.80,pack,,13,5\n"
)
BAD_ROW = "IMP-0003,,测试果汁,Test juice,drinks,abc,bottle,,13,1\n"


def _upload(page: Any, path: Path, *, override: bool) -> None:
    page.get_by_test_id("csv-file").set_input_files(str(path))
    page.get_by_test_id("import").click()
    if override:
        manager = demo_login("manager")
        page.get_by_test_id("override-file").set_input_files(str(path))
        page.get_by_test_id("override-staff").fill(manager.staff_no)
        page.get_by_test_id("override-pin").fill(manager.pin)
        page.get_by_test_id("override-ok").click()


def test_a_bad_row_imports_nothing_and_the_good_file_everything(
    demo: Demo, page: Any, tmp_path: Path
) -> None:
    start_selling(page, demo.url)
    page.goto(demo.url + "catalog/import")
    before = int(page.get_by_test_id("product-count").inner_text())
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + GOOD_ROWS + BAD_ROW, encoding="utf-8")
    _upload(page, bad, override=True)
    expect(page.get_by_test_id("import-refused")).to_be_visible()
    error = page.get_by_test_id("import-error").first
    expect(error).to_contain_text("4")  # the header is line 1: the bad row is line 4
    expect(error).to_contain_text("price")
    expect(page.get_by_test_id("product-count")).to_have_text(str(before))
    good = tmp_path / "good.csv"
    good.write_bytes((HEADER + GOOD_ROWS).encode("gb18030"))  # as Chinese Excel saves it
    _upload(page, good, override=True)
    expect(page.get_by_test_id("import-ok")).to_be_visible()
    expect(page.get_by_test_id("product-count")).to_have_text(str(before + 2))
    page.goto(demo.url + "sell")
    page.get_by_test_id("search").fill("测试茶饮")
    expect(page.get_by_test_id("product-IMP-0001")).to_be_visible()
