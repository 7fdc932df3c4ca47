"""The store's catalog: categories and products, found by barcode, SKU or name, and their stock.

``Catalog`` is what the cashier app and the orders service call. Search is a substring
match on the Chinese and English names (docs/catalog.md, "Search"): with 100,000 products a
keystroke is answered in a few milliseconds on SQLite (docs/benchmarks.md), so no separate
full-text index is kept. The rules a product must follow (price, names, barcode, tax) live
here as ``check_*`` functions, shared with the CSV import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)

from smartpos.store.catalog_tables import (
    SEARCH_KEY_SEPARATOR,
    categories,
    products,
    stock_moves,
)

__all__ = [
    "NAME_MAX_CHARS",
    "QUERY_MAX_CHARS",
    "SEARCH_LIMIT_MAX",
    "STOCK_REASONS",
    "Catalog",
    "CatalogError",
    "Category",
    "Product",
    "StockMove",
    "check_barcode",
    "check_name",
    "check_price_minor",
    "check_sku",
    "check_tax_code",
    "check_tax_rate_bp",
    "check_unit",
    "gtin_check_digit",
]

QUERY_MAX_CHARS: Final = 64
SEARCH_LIMIT_MAX: Final = 200
SEARCH_OFFSET_MAX: Final = 10_000  # nobody pages 250 screens deep; bounds the sort's work
NAME_MAX_CHARS: Final = 120
UNIT_MAX_CHARS: Final = 16
PRICE_MAX_MINOR: Final = 99_999_999  # ¥999,999.99: above is a typo, not a product
STOCK_REASONS: Final = frozenset({"sale", "return", "exchange", "import", "count", "adjust"})
REF_MAX_CHARS: Final = 64

_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_INTERNAL_CODE = re.compile(r"[A-Za-z0-9]{4,32}")
_GTIN_LENGTHS = frozenset({8, 12, 13, 14})
GTIN_MIN_DIGITS: Final = min(_GTIN_LENGTHS)
_CATEGORY_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class CatalogError(ValueError):
    """A product or category that breaks a catalog rule; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Category:
    id: int
    code: str
    name_zh: str
    name_en: str
    sort: int

    def name(self, lang: str) -> str:
        """The Chinese name for ``zh_CN``, the English one for any other language."""
        return self.name_zh if lang == "zh_CN" else self.name_en


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    sku: str
    barcode: str | None
    name_zh: str
    name_en: str
    category_id: int
    price_minor: int
    unit: str
    tax_code: str | None
    tax_rate_bp: int
    stock_qty: int
    active: bool

    def name(self, lang: str) -> str:
        """The Chinese name for ``zh_CN``, the English one for any other language."""
        return self.name_zh if lang == "zh_CN" else self.name_en


@dataclass(frozen=True, slots=True)
class StockMove:
    id: int
    product_id: int
    delta_qty: int
    reason: str
    ref: str | None
    at: datetime


# --- the rules ------------------------------------------------------------------------------


def gtin_check_digit(body: str) -> int:
    """The GS1 check digit of ``body`` (a GTIN without its last digit): weights 3,1,3,…
    from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def check_barcode(code: str) -> str:
    """``code`` if it is a barcode the store can sell by, else ``CatalogError``.

    All digits and 8, 12, 13 or 14 long: a GTIN (EAN-8, UPC-A, EAN-13, GTIN-14) whose check
    digit must be right — a misread or mistyped digit is caught here, not at the till. Any
    other 4–32 ASCII letters and digits: the store's own internal code, taken as it is.
    """
    if code.isascii() and code.isdigit() and len(code) in _GTIN_LENGTHS:
        if gtin_check_digit(code[:-1]) != int(code[-1]):
            raise CatalogError("barcode", f"{code}: wrong check digit (a misread digit?)")
        return code
    if not _INTERNAL_CODE.fullmatch(code):
        raise CatalogError(
            "barcode", "an EAN/UPC (8, 12, 13 or 14 digits) or 4–32 letters and digits"
        )
    return code


def check_sku(sku: str) -> str:
    if not _SKU.fullmatch(sku):
        raise CatalogError("sku", "1–32 ASCII letters, digits, '.', '_' or '-'")
    return sku


def check_name(field: str, name: str) -> str:
    """``name`` without surrounding spaces; not empty, at most ``NAME_MAX_CHARS``."""
    name = name.strip()
    if not name:
        raise CatalogError(field, "must not be empty")
    if len(name) > NAME_MAX_CHARS:
        raise CatalogError(field, f"at most {NAME_MAX_CHARS} characters")
    if not name.isprintable():
        raise CatalogError(field, "control characters are not allowed")
    return name


def check_price_minor(price_minor: object) -> int:
    # bool is an int to Python, never a price.
    if not isinstance(price_minor, int) or isinstance(price_minor, bool):
        raise CatalogError("price", "must be an integer number of minor units (fen)")
    if price_minor < 0:
        raise CatalogError("price", "must not be negative")
    if price_minor > PRICE_MAX_MINOR:
        raise CatalogError("price", f"above {PRICE_MAX_MINOR // 100:,} yuan")
    return price_minor


def check_unit(unit: str) -> str:
    unit = unit.strip()
    if not unit or len(unit) > UNIT_MAX_CHARS or not unit.isprintable():
        raise CatalogError("unit", f"1–{UNIT_MAX_CHARS} printable characters")
    return unit


def check_tax_code(tax_code: str | None) -> str | None:
    """A 税收分类编码 is 19 digits (the e-fapiao's goods classification); absent is allowed."""
    if tax_code is None or tax_code == "":
        return None
    if not (tax_code.isascii() and tax_code.isdigit() and len(tax_code) == 19):
        raise CatalogError("tax_code", "19 digits (税收分类编码)")
    return tax_code


def check_tax_rate_bp(tax_rate_bp: int) -> int:
    if isinstance(tax_rate_bp, bool) or not 0 <= tax_rate_bp <= 10_000:
        raise CatalogError("tax_rate", "between 0 and 100 %")
    return tax_rate_bp


def _check_stock_reason(reason: str) -> None:
    if reason not in STOCK_REASONS:
        raise CatalogError("reason", f"one of {', '.join(sorted(STOCK_REASONS))}")


_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_MAX_CHAR: Final = "\U0010ffff"


def _like_escaped(text: str) -> str:
    r"""``text`` for a LIKE pattern with ``\`` as the escape: ``%`` and ``_`` match
    themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- the service ----------------------------------------------------------------------------

_PRODUCT_COLUMNS = (
    products.c.id,
    products.c.sku,
    products.c.barcode,
    products.c.name_zh,
    products.c.name_en,
    products.c.category_id,
    products.c.price_minor,
    products.c.unit,
    products.c.tax_code,
    products.c.tax_rate_bp,
    products.c.stock_qty,
    products.c.active,
)


def _product(row: Row[*tuple[Any, ...]]) -> Product:
    return Product(
        id=row.id,
        sku=row.sku,
        barcode=row.barcode,
        name_zh=row.name_zh,
        name_en=row.name_en,
        category_id=row.category_id,
        price_minor=int(row.price_minor),
        unit=row.unit,
        tax_code=row.tax_code,
        tax_rate_bp=row.tax_rate_bp,
        stock_qty=int(row.stock_qty),
        active=bool(row.active),
    )


class _Unset:
    """The default of ``update_product``'s optional fields: "leave as it is" (None is a
    value for the barcode and the tax code)."""


UNSET: Final = _Unset()


class Catalog:
    """Categories and products of one store's POS database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Only SQLite is sure to order text by code point (PostgreSQL's collation may not).
        self._binary_order = engine.dialect.name == "sqlite"

    # --- reading ---

    def categories(self) -> list[Category]:
        """All categories in the order the sell screen shows them (``sort``, then code)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(categories).order_by(categories.c.sort, categories.c.code)
            ).all()
        return [Category(r.id, r.code, r.name_zh, r.name_en, r.sort) for r in rows]

    def get(self, product_id: int) -> Product | None:
        """The product with this id, active or not."""
        with self._engine.connect() as conn:
            row = conn.execute(select(*_PRODUCT_COLUMNS).where(products.c.id == product_id)).first()
        return None if row is None else _product(row)

    def by_barcode(self, code: str) -> Product | None:
        """The active product with this barcode (what a scan finds), or None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(*_PRODUCT_COLUMNS).where(
                    products.c.barcode == code.strip(), products.c.active.is_(True)
                )
            ).first()
        return None if row is None else _product(row)

    def count(self, *, active_only: bool = False) -> int:
        query = select(func.count()).select_from(products)
        if active_only:
            query = query.where(products.c.active.is_(True))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def search(
        self,
        query: str,
        *,
        category_id: int | None = None,
        limit: int = 40,
        offset: int = 0,
    ) -> list[Product]:
        """Active products matching ``query``, best first, at most ``limit`` from ``offset``.

        The order: a product whose barcode or SKU equals the query (barcode first); then
        those whose Chinese name starts with it, by Chinese name; then those whose English
        name starts with it, by English name; then those whose Chinese or English name
        contains it, by Chinese name. A query of 8 or more digits that is a barcode or SKU
        finds that product alone (a scan). Letters A-Z match either case; ``%`` and ``_`` match
        themselves. An empty query lists ``category_id`` (or everything) by Chinese name.
        Raises ``ValueError`` for a query longer than ``QUERY_MAX_CHARS`` or with control
        characters, a ``limit`` outside 1..``SEARCH_LIMIT_MAX`` or an ``offset`` outside
        0..``SEARCH_OFFSET_MAX``.
        """
        text = query.strip()
        if len(text) > QUERY_MAX_CHARS:
            raise ValueError(f"search text longer than {QUERY_MAX_CHARS} characters")
        if not text.isprintable():
            raise ValueError("search text with control characters")
        if not 1 <= limit <= SEARCH_LIMIT_MAX:
            raise ValueError(f"limit must be 1..{SEARCH_LIMIT_MAX}")
        if not 0 <= offset <= SEARCH_OFFSET_MAX:
            raise ValueError(f"offset must be 0..{SEARCH_OFFSET_MAX}")
        base: list[ColumnElement[bool]] = [products.c.active.is_(True)]
        if category_id is not None:
            base.append(products.c.category_id == category_id)
        with self._engine.connect() as conn:
            if text:
                ids = self._ranked_ids(conn, text, base, offset + limit)[offset:]
            else:
                ids = list(
                    conn.execute(
                        select(products.c.id)
                        .where(*base)
                        .order_by(products.c.search_key, products.c.id)
                        .limit(limit)
                        .offset(offset)
                    ).scalars()
                )
            if not ids:
                return []
            rows = conn.execute(select(*_PRODUCT_COLUMNS).where(products.c.id.in_(ids)))
            by_id = {r.id: _product(r) for r in rows}
        return [by_id[i] for i in ids]

    def _ranked_ids(
        self, conn: Connection, text: str, base: list[ColumnElement[bool]], need: int
    ) -> list[int]:
        """The ids of the first ``need`` matches of ``text``, in search order.

        Each group is one walk of an index in the order it is shown, stopped at what the
        page still needs: a query matching thousands of products reads a few dozen index
        entries, and one matching nothing reads the narrow (active, search_key) index once
        — no sort of all the matches (docs/catalog.md, "Search")."""
        exact = conn.execute(
            select(products.c.id, products.c.barcode).where(
                *base, or_(products.c.barcode == text, products.c.sku == text)
            )
        ).all()
        found = [row.id for row in sorted(exact, key=lambda row: row.barcode != text)]
        if found and text.isdigit() and len(text) >= GTIN_MIN_DIGITS:
            # A scanned barcode: the cashier wants that product, not names with the digits.
            return found
        key, key_en = products.c.search_key, products.c.search_en
        needle = text.translate(_ASCII_LOWER)  # lower() in SQLite lowers A-Z only
        escaped = _like_escaped(needle)
        starts = escaped + "%"
        sep = SEARCH_KEY_SEPARATOR
        groups: list[tuple[ColumnElement[bool], Any]] = [
            (self._starts_with(key, needle, starts), key),
            (and_(self._starts_with(key_en, needle, starts), key.not_like(starts, "\\")), key_en),
            (
                and_(
                    key.like("%" + escaped + "%", escape="\\"),
                    key.not_like(starts, escape="\\"),
                    key.not_like("%" + sep + starts, escape="\\"),
                ),
                key,
            ),
        ]
        for condition, order in groups:
            if len(found) >= need:
                break
            # The exact matches may turn up again in a group: ask for that many more.
            more = conn.execute(
                select(products.c.id)
                .where(*base, condition)
                .order_by(order, products.c.id)
                .limit(need - len(found) + len(exact))
            ).scalars()
            found.extend(pid for pid in more if pid not in found[: len(exact)])
        return found[:need]

    def _starts_with(self, column: Any, needle: str, pattern: str) -> ColumnElement[bool]:
        like: ColumnElement[bool] = column.like(pattern, escape="\\")
        if not self._binary_order:
            return like
        # SQLite compares text as UTF-8 bytes, so the strings starting with the needle are
        # one range of the index; the LIKE alone would be tested on every entry.
        return and_(column >= needle, column < needle + _MAX_CHAR, like)

    def stock_moves(self, product_id: int, *, limit: int = 100) -> list[StockMove]:
        """The latest ``limit`` stock moves of a product, newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(stock_moves)
                .where(stock_moves.c.product_id == product_id)
                .order_by(stock_moves.c.id.desc())
                .limit(limit)
            ).all()
        return [
            StockMove(r.id, r.product_id, int(r.delta_qty), r.reason, r.ref, r.at) for r in rows
        ]

    # --- writing ---

    def add_category(self, code: str, name_zh: str, name_en: str, *, sort: int = 0) -> Category:
        """A new category; ``code`` is lower-case ASCII (``drinks``), unique."""
        if not _CATEGORY_CODE.fullmatch(code):
            raise CatalogError("code", "1–32 lower-case letters, digits, '_' or '-'")
        values = {
            "code": code,
            "name_zh": check_name("name_zh", name_zh)[:80],
            "name_en": check_name("name_en", name_en)[:80],
            "sort": sort,
        }
        with self._engine.begin() as conn:
            new_id = conn.execute(
                insert(categories).values(values).returning(categories.c.id)
            ).scalar_one()
        return Category(new_id, code, str(values["name_zh"]), str(values["name_en"]), sort)

    def add_product(
        self,
        *,
        sku: str,
        name_zh: str,
        name_en: str,
        category_id: int,
        price_minor: int,
        barcode: str | None = None,
        unit: str = "pcs",
        tax_code: str | None = None,
        tax_rate_bp: int = 1300,
        stock_qty: int = 0,
        active: bool = True,
    ) -> Product:
        """A new product, checked by the ``check_*`` rules (``CatalogError`` names the field
        at fault); a SKU or barcode already used raises ``CatalogError`` too."""
        values: dict[str, Any] = {
            "sku": check_sku(sku),
            "barcode": None if barcode is None else check_barcode(barcode),
            "name_zh": check_name("name_zh", name_zh),
            "name_en": check_name("name_en", name_en),
            "category_id": category_id,
            "price_minor": check_price_minor(price_minor),
            "unit": check_unit(unit),
            "tax_code": check_tax_code(tax_code),
            "tax_rate_bp": check_tax_rate_bp(tax_rate_bp),
            "stock_qty": stock_qty,
            "active": active,
        }
        with self._engine.begin() as conn:
            self._check_free(conn, values["sku"], values["barcode"], None)
            self._check_category(conn, category_id)
            new_id = conn.execute(
                insert(products).values(values).returning(products.c.id)
            ).scalar_one()
        return Product(id=new_id, **values)

    def update_product(
        self,
        product_id: int,
        *,
        name_zh: str | _Unset = UNSET,
        name_en: str | _Unset = UNSET,
        category_id: int | _Unset = UNSET,
        price_minor: int | _Unset = UNSET,
        barcode: str | _Unset | None = UNSET,
        unit: str | _Unset = UNSET,
        tax_code: str | _Unset | None = UNSET,
        tax_rate_bp: int | _Unset = UNSET,
        active: bool | _Unset = UNSET,
    ) -> Product:
        """Change the given fields (checked as in ``add_product``) and return the product as
        it now is. Stock changes only through ``adjust_stock``; the SKU never changes."""
        changes: dict[str, Any] = {}
        if not isinstance(name_zh, _Unset):
            changes["name_zh"] = check_name("name_zh", name_zh)
        if not isinstance(name_en, _Unset):
            changes["name_en"] = check_name("name_en", name_en)
        if not isinstance(category_id, _Unset):
            changes["category_id"] = category_id
        if not isinstance(price_minor, _Unset):
            changes["price_minor"] = check_price_minor(price_minor)
        if not isinstance(barcode, _Unset):
            changes["barcode"] = None if barcode is None else check_barcode(barcode)
        if not isinstance(unit, _Unset):
            changes["unit"] = check_unit(unit)
        if not isinstance(tax_code, _Unset):
            changes["tax_code"] = check_tax_code(tax_code)
        if not isinstance(tax_rate_bp, _Unset):
            changes["tax_rate_bp"] = check_tax_rate_bp(tax_rate_bp)
        if not isinstance(active, _Unset):
            changes["active"] = active
        with self._engine.begin() as conn:
            if changes.get("barcode") is not None:
                self._check_free(conn, None, changes["barcode"], product_id)
            if "category_id" in changes:
                self._check_category(conn, changes["category_id"])
            if changes:
                done = conn.execute(
                    update(products).where(products.c.id == product_id).values(changes)
                )
                if done.rowcount == 0:
                    raise LookupError(f"no product {product_id}")
            row = conn.execute(select(*_PRODUCT_COLUMNS).where(products.c.id == product_id)).first()
        if row is None:
            raise LookupError(f"no product {product_id}")
        return _product(row)

    @staticmethod
    def adjust_stock(
        conn: Connection, product_id: int, delta_qty: int, *, reason: str, ref: str | None
    ) -> int:
        """Change a product's stock by ``delta_qty`` on the caller's connection and record
        the move; returns the new stock. Nothing is committed here: the caller's
        transaction (an order's payment, an import) commits or rolls back both together.

        Stock may go below zero: a sale of goods the count missed must not be refused at
        the till; the next count corrects it.
        """
        _check_stock_reason(reason)
        if isinstance(delta_qty, bool) or not isinstance(delta_qty, int) or delta_qty == 0:
            raise CatalogError("delta_qty", "a non-zero integer")
        if ref is not None and len(ref) > REF_MAX_CHARS:
            raise CatalogError("ref", f"at most {REF_MAX_CHARS} characters")
        new_qty = conn.execute(
            update(products)
            .where(products.c.id == product_id)
            .values(stock_qty=products.c.stock_qty + delta_qty)
            .returning(products.c.stock_qty)
        ).scalar_one_or_none()
        if new_qty is None:
            raise LookupError(f"no product {product_id}")
        conn.execute(
            insert(stock_moves).values(
                product_id=product_id,
                delta_qty=delta_qty,
                reason=reason,
                ref=ref,
                at=datetime.now(UTC),
            )
        )
        return int(new_qty)

    @staticmethod
    def _check_free(
        conn: Connection, sku: str | None, barcode: str | None, product_id: int | None
    ) -> None:
        """A SKU or barcode another product already has is refused with the field named
        (the unique constraint would only say "IntegrityError")."""
        for field, column, value in (
            ("sku", products.c.sku, sku),
            ("barcode", products.c.barcode, barcode),
        ):
            if value is None:
                continue
            other = conn.execute(select(products.c.id).where(column == value)).scalar()
            if other is not None and other != product_id:
                raise CatalogError(field, f"{value} is already product {other}'s")

    @staticmethod
    def _check_category(conn: Connection, category_id: int) -> None:
        if conn.execute(select(categories.c.id).where(categories.c.id == category_id)).first():
            return
        raise CatalogError("category", f"no category {category_id}")
