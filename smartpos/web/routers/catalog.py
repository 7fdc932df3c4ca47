"""Catalog data changes from the screen: a CSV import (docs/catalog.md) — every bad row
reported by its line and column, nothing imported unless every row is good."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse

from smartpos.web.deps import OperatorDep, PosDep, require
from smartpos.web.templates import render

router = APIRouter()
UPLOAD_MAX_BYTES = 20 * 1024 * 1024  # as the importer's own limit


@router.get("/catalog/import", response_class=HTMLResponse, include_in_schema=False)
async def import_page(request: Request, pos: PosDep, op: OperatorDep) -> Any:
    return render(request, "import.html", csrf=op.csrf, report=None, count=pos.catalog.count())


@router.post("/catalog/import", response_class=HTMLResponse, include_in_schema=False)
async def import_csv(
    request: Request,
    pos: PosDep,
    op: OperatorDep,
    file: Annotated[UploadFile, File()],
    dry_run: Annotated[str, Form()] = "",
) -> Any:
    await require(request, op, "catalog_edit", f"CSV import {file.filename or ''}"[:200])
    from smartpos.store.csvimport import import_products

    data = await file.read(UPLOAD_MAX_BYTES + 1)
    report = import_products(pos.db, data, dry_run=bool(dry_run))
    status = 200 if report.ok else 422
    return render(
        request,
        "import.html",
        status_code=status,
        csrf=op.csrf,
        report=report,
        count=pos.catalog.count(),
    )
