"""Catalog tables: categories, products (names in Chinese and English, barcode, price in
minor units, tax classification for e-fapiao) and the stock moves that change stock."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from smartpos.db.pos import metadata

__all__ = ["SEARCH_KEY_SEPARATOR", "categories", "products", "stock_moves"]

SEARCH_KEY_SEPARATOR = "\n"
# A literal newline inside the SQL string: portable, where char(10) / chr(10) are not.
SEARCH_KEY_SQL = "lower(name_zh) || '\n' || lower(name_en)"

categories = Table(
    "categories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("name_zh", String(80), nullable=False),
    Column("name_en", String(80), nullable=False),
    Column("sort", Integer, nullable=False, default=0),
)

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sku", String(32), nullable=False, unique=True),
    Column("barcode", String(32), unique=True),  # EAN-13 / UPC-A / internal; may be absent
    Column("name_zh", String(120), nullable=False),
    Column("name_en", String(120), nullable=False),
    Column("category_id", Integer, ForeignKey("categories.id"), nullable=False, index=True),
    Column("price_minor", BigInteger, nullable=False),
    Column("unit", String(16), nullable=False, default="pcs"),
    Column("tax_code", String(19)),  # 税收分类编码 (19 digits)
    Column("tax_rate_bp", Integer, nullable=False, default=1300),  # basis points: 13 % = 1300
    Column("stock_qty", BigInteger, nullable=False, default=0),
    Column("active", Boolean, nullable=False, default=True),
    # What search matches against, kept by the database itself (so no writer can forget
    # it): the names in lower case, Chinese first, joined by a newline, which no query
    # contains, so a match never spans both names (docs/catalog.md, "Search").
    Column("search_key", String(241), Computed(SEARCH_KEY_SQL, persisted=True)),
    Column("search_en", String(120), Computed("lower(name_en)", persisted=True)),
)
# Search walks these in order and stops at the page's last product: covering for the
# substring walk (active, search_key, id) and the Chinese-prefix range; the English-prefix
# range; a category's list.
Index("ix_products_search_key", products.c.active, products.c.search_key)
Index("ix_products_search_en", products.c.active, products.c.search_en)
Index(
    "ix_products_category_search",
    products.c.category_id,
    products.c.active,
    products.c.search_key,
)

# Every change of stock, with why (sale, return, exchange, import, count) and its reference.
stock_moves = Table(
    "stock_moves",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("product_id", Integer, ForeignKey("products.id"), nullable=False, index=True),
    Column("delta_qty", BigInteger, nullable=False),
    Column("reason", String(16), nullable=False),
    Column("ref", String(64)),
    Column("at", DateTime(timezone=True), nullable=False),
)
