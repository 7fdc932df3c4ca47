"""Typed dependencies of the routes (``PosDep``, and the session ones in security)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from smartpos.web.pos import Pos

__all__ = ["PosDep", "get_pos"]


def get_pos(request: Request) -> Pos:
    pos: Pos = request.app.state.pos
    return pos


PosDep = Annotated[Pos, Depends(get_pos)]
