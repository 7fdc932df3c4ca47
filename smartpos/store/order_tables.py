"""Order tables: orders (the cart lives here), their lines, their payments; shifts."""

from __future__ import annotations

from smartpos.db.pos import metadata

__all__ = ["metadata"]
