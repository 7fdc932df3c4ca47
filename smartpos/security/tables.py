"""Tables of the POS database (smartpos.db.pos)."""

from __future__ import annotations

from smartpos.db.pos import metadata

__all__ = ["metadata"]
