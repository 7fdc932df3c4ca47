"""Products from a CSV file, as a shop keeps them in Excel: all of the file or nothing.

Every row is checked first, by the catalog's own rules; if any row is wrong nothing is
written and the report lists each fault by line and column (docs/catalog.md, "CSV import").
Otherwise one transaction inserts the new SKUs, updates the known ones and records each
change of stock as an ``import`` stock move.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Final, NamedTuple

from sqlalchemy import Engine, bindparam, insert, select, update

from smartpos.money import Money, MoneyError
from smartpos.store.catalog import (
    CatalogError,
    check_barcode,
    check_name,
    check_price_minor,
    check_sku,
    check_tax_code,
    check_tax_rate_bp,
    check_unit,
)
from smartpos.store.catalog_tables import categories, products, stock_moves

__all__ = [
    "COLUMNS",
    "ERRORS_MAX",
    "FILE_MAX_BYTES",
    "ROWS_MAX",
    "ImportReport",
    "RowError",
    "import_products",
]

FILE_MAX_BYTES: Final = 20 * 1024 * 1024
ROWS_MAX: Final = 200_000
ERRORS_MAX: Final = 100  # beyond, the file is wrong as a whole: more would not help
STOCK_MAX: Final = 10_000_000
COLUMNS: Final = (
    "sku",
    "barcode",
    "name_zh",
    "name_en",
    "category",
    "price",
    "unit",
    "tax_code",
    "tax_rate",
    "stock",
)
_REQUIRED: Final = frozenset({"sku", "name_zh", "name_en", "category", "price"})
_DEFAULT_UNIT: Final = "pcs"
_DEFAULT_TAX_RATE_BP: Final = 1300


class RowError(NamedTuple):
    """One fault: the file's line (1 = the header), the column's name ("" for the whole
    row or file) and what is wrong."""

    line: int
    column: str
    message: str


@dataclass
class ImportReport:
    inserted: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0  # all faults found, also those beyond ERRORS_MAX not listed
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add(self, line: int, column: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < ERRORS_MAX:
            self.errors.append(RowError(line, column, message))


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    values: dict[str, Any]  # the products columns
    stock_qty: int | None  # None: the file leaves stock as it is


def import_products(
    engine: Engine, source: str | bytes | IO[bytes] | IO[str], *, dry_run: bool = False
) -> ImportReport:
    """Import products from CSV ``source`` (text, bytes or an open file).

    Bytes are UTF-8 (with or without BOM) or else GB18030 (Excel's "CSV" on Chinese
    Windows). The header names the columns of ``COLUMNS`` in any order; sku, name_zh,
    name_en, category (a category code) and price (yuan, ``12.50``; a decimal comma is
    refused) are required. A known SKU is updated, a new one inserted; a stock value sets
    the stock through an ``import`` stock move. If any row is wrong, or the file is larger
    than ``FILE_MAX_BYTES`` or has more than ``ROWS_MAX`` rows, nothing is written and the
    report's ``errors`` say where and why. ``dry_run`` checks and counts, writing nothing.
    """
    report = ImportReport(dry_run=dry_run)
    text = _text(source, report)
    if text is None:
        return report
    with engine.connect() as conn:
        category_ids = dict(conn.execute(select(categories.c.code, categories.c.id)).all())
        known = {
            r.sku: (r.id, r.barcode)
            for r in conn.execute(select(products.c.id, products.c.sku, products.c.barcode))
        }
    rows = list(_checked_rows(text, category_ids, known, report))
    if not report.ok:
        return report
    new = [r for r in rows if r.values["sku"] not in known]
    old = [r for r in rows if r.values["sku"] in known]
    report.inserted, report.updated = len(new), len(old)
    if dry_run or not rows:
        return report
    with engine.begin() as conn:
        if new:
            conn.execute(insert(products), [{**r.values, "stock_qty": 0} for r in new])
        if old:
            conn.execute(
                update(products).where(products.c.id == bindparam("pid")),
                [{**r.values, "pid": known[r.values["sku"]][0]} for r in old],
            )
        # Stock as it is now, in this transaction: a sale since the check above counts.
        now = {
            r.sku: (r.id, int(r.stock_qty))
            for r in conn.execute(select(products.c.sku, products.c.id, products.c.stock_qty))
        }
        moves = list(_stock_moves(rows, now))
        if moves:
            conn.execute(
                update(products)
                .where(products.c.id == bindparam("pid"))
                .values(stock_qty=products.c.stock_qty + bindparam("delta")),
                [{"pid": m["product_id"], "delta": m["delta_qty"]} for m in moves],
            )
            conn.execute(insert(stock_moves), moves)
    return report


def _text(source: str | bytes | IO[bytes] | IO[str], report: ImportReport) -> str | None:
    """The file's text, or None with the reason in ``report``."""
    data: str | bytes = (
        source if isinstance(source, str | bytes) else source.read(FILE_MAX_BYTES + 1)
    )
    too_big = len(data.encode() if isinstance(data, str) else data) > FILE_MAX_BYTES
    if too_big:
        report.add(0, "", f"the file is larger than {FILE_MAX_BYTES // (1024 * 1024)} MB")
        return None
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    report.add(0, "", "the file is neither UTF-8 nor GB18030 text")
    return None


def _checked_rows(
    text: str,
    category_ids: dict[str, int],
    known: dict[str, tuple[int, str | None]],
    report: ImportReport,
) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        report.add(1, "", "the file is empty: a header line is needed")
        return
    except csv.Error as exc:
        report.add(1, "", f"not CSV: {exc}")
        return
    unknown = [h for h in header if h not in COLUMNS]
    missing = sorted(_REQUIRED - set(header))
    doubled = sorted({h for h in header if header.count(h) > 1})
    for h in unknown:
        report.add(1, h, f"unknown column (the columns are {', '.join(COLUMNS)})")
    for h in missing:
        report.add(1, h, "required column missing from the header")
    for h in doubled:
        report.add(1, h, "column named twice")
    if not report.ok:
        return
    first_line_of_sku: dict[str, int] = {}
    first_line_of_barcode: dict[str, int] = {}
    barcode_owner = {barcode: sku for sku, (_, barcode) in known.items() if barcode}
    line = reader.line_num
    count = 0
    while True:
        start = line + 1  # a quoted field may span lines: report where the row starts
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            report.add(start, "", f"not CSV: {exc}")
            return
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue  # blank lines, as Excel leaves at the end
        count += 1
        if count > ROWS_MAX:
            report.add(start, "", f"more than {ROWS_MAX:,} rows: split the file")
            return
        if len(cells) > len(header):
            report.add(start, "", f"{len(cells)} columns, the header has {len(header)}")
            continue
        record = dict(zip(header, (c.strip() for c in cells), strict=False))
        row = _checked(start, record, category_ids, report)
        if row is None:
            continue
        sku, barcode = row.values["sku"], row.values["barcode"]
        if sku in first_line_of_sku:
            report.add(start, "sku", f"{sku} is already on line {first_line_of_sku[sku]}")
            continue
        first_line_of_sku[sku] = start
        if barcode is not None:
            if barcode in first_line_of_barcode:
                where = first_line_of_barcode[barcode]
                report.add(start, "barcode", f"{barcode} is already on line {where}")
                continue
            first_line_of_barcode[barcode] = start
            owner = barcode_owner.get(barcode)
            if owner is not None and owner != sku:
                report.add(start, "barcode", f"{barcode} is product {owner}'s")
                continue
        yield row


def _checked(
    line: int, record: dict[str, str], category_ids: dict[str, int], report: ImportReport
) -> _Row | None:
    """The row as product values, or None with each fault in ``report``."""
    values: dict[str, Any] = {}
    faults = report.error_count

    def take(column: str, check: Callable[[str], Any]) -> Any:
        try:
            return check(record.get(column, ""))
        except (CatalogError, MoneyError, ValueError) as exc:
            report.add(line, column, exc.message if isinstance(exc, CatalogError) else str(exc))
            return None

    values["sku"] = take("sku", check_sku)
    values["barcode"] = take("barcode", lambda s: check_barcode(s) if s else None)
    values["name_zh"] = take("name_zh", lambda s: check_name("name_zh", s))
    values["name_en"] = take("name_en", lambda s: check_name("name_en", s))
    values["category_id"] = take("category", lambda s: _category(s, category_ids))
    values["price_minor"] = take("price", lambda s: check_price_minor(Money.parse(s).amount_minor))
    values["unit"] = take("unit", lambda s: check_unit(s or _DEFAULT_UNIT))
    values["tax_code"] = take("tax_code", lambda s: check_tax_code(s or None))
    values["tax_rate_bp"] = take("tax_rate", _tax_rate_bp)
    values["active"] = True  # a product in the shop's list is on sale
    stock_qty = take("stock", _stock)
    if report.error_count > faults:
        return None
    return _Row(line, values, stock_qty)


def _category(code: str, category_ids: dict[str, int]) -> int:
    if not code:
        raise ValueError("a category code is needed")
    if code not in category_ids:
        raise ValueError(f"unknown category {code!r} (known: {', '.join(sorted(category_ids))})")
    return category_ids[code]


def _tax_rate_bp(text: str) -> int:
    """A VAT rate in percent (``13``, ``9``, ``13%``, ``1.5``) as basis points."""
    if not text:
        return _DEFAULT_TAX_RATE_BP
    digits = text.removesuffix("%").strip()
    whole, point, frac = digits.partition(".")
    if not (whole.isascii() and whole.isdigit()) or (point and not frac.isdigit()):
        raise ValueError(f"{text!r}: a percentage such as 13 or 9")
    if len(frac) > 2:
        raise ValueError(f"{text!r}: at most two decimals")
    return check_tax_rate_bp(int(whole) * 100 + int(frac.ljust(2, "0") or 0))


def _stock(text: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{text!r}: a whole number of items, 0 or more")
    qty = int(text)
    if qty > STOCK_MAX:
        raise ValueError(f"above {STOCK_MAX:,}")
    return qty


def _stock_moves(rows: list[_Row], now: dict[str, tuple[int, int]]) -> Iterator[dict[str, Any]]:
    """An ``import`` move for each row whose stock differs from the stock it has now."""
    at = datetime.now(UTC)
    for row in rows:
        product_id, before = now[row.values["sku"]]
        if row.stock_qty is not None and row.stock_qty != before:
            yield {
                "product_id": product_id,
                "delta_qty": row.stock_qty - before,
                "reason": "import",
                "ref": f"csv line {row.line}",
                "at": at,
            }
