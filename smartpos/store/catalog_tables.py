"""Catalog tables: categories, products (names in Chinese and English, barcode, price in
minor units, tax classification for e-fapiao) and the stock moves that change stock."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
)

from smartpos.db.pos import metadata

__all__ = ["categories", "products", "stock_moves"]

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
