"""The JSON API (OpenAPI at ``/api/openapi.json``): the same services the screens use, for
other front ends and for tests. Authenticated by the session cookie; every change carries
the session's CSRF token in ``X-CSRF-Token``. Errors are ``{"detail": {"code", "message"}}``
with 4xx statuses; nothing a request can send makes a 5xx."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from smartpos.store.errors import StoreError
from smartpos.web.deps import OperatorDep, PosDep, allowed
from smartpos.web.i18n import current_lang

router = APIRouter(prefix="/api", tags=["cashier"])


def _refused(exc: StoreError, status: int = 422) -> HTTPException:
    return HTTPException(status, {"code": str(exc.code), "message": exc.text(current_lang())})


class NewOrder(BaseModel):
    id: str = Field(min_length=8, max_length=56, pattern=r"^[A-Za-z0-9_-]+$")


class NewLine(BaseModel):
    product_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    qty: int = Field(default=1, ge=1, le=9999)
    amount_minor: int | None = Field(default=None, ge=1, le=99_999_999)
    label: str = Field(default="", max_length=60)


class CashPayment(BaseModel):
    tendered_minor: int = Field(ge=0, le=99_999_999_999)


@router.get("/me")
async def me(op: OperatorDep) -> dict[str, Any]:
    """Who is logged in, in which operator mode."""
    return {"staff_no": op.staff_no, "name": op.name, "role": op.role, "mode": op.mode}


@router.get("/catalog/search")
async def search(
    request: Request,
    pos: PosDep,
    op: OperatorDep,
    q: Annotated[str, Query(max_length=64)] = "",
    category_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 40,
) -> list[dict[str, Any]]:
    """Products whose name, barcode or code matches ``q`` (searched on the server)."""
    allowed(request, op, "sell")
    try:
        found = pos.catalog.search(q, category_id=category_id, limit=limit)
    except ValueError as exc:
        raise HTTPException(422, {"code": "bad_query", "message": str(exc)}) from None
    return [
        {
            "id": p.id,
            "sku": p.sku,
            "barcode": p.barcode,
            "name_zh": p.name_zh,
            "name_en": p.name_en,
            "price_minor": p.price_minor,
            "stock_qty": p.stock_qty,
        }
        for p in found
    ]


@router.post("/orders", status_code=201)
async def create_order(
    request: Request, pos: PosDep, op: OperatorDep, body: NewOrder
) -> dict[str, Any]:
    """Create an order with the id the client chose (the same id again: the same order)."""
    allowed(request, op, "sell")
    shift = pos.shifts.current(op.staff_id)
    try:
        order = pos.orders.create(
            body.id, staff_id=op.staff_id, shift_id=shift.id if shift else None
        )
    except StoreError as exc:
        raise _refused(exc) from None
    return order.to_dict()


@router.get("/orders/{order_id}")
async def get_order(
    request: Request, pos: PosDep, op: OperatorDep, order_id: str
) -> dict[str, Any]:
    allowed(request, op, "lookup")
    try:
        return pos.payments.details(order_id).to_dict()
    except StoreError as exc:
        raise _refused(exc, 404) from None


@router.post("/orders/{order_id}/lines")
async def add_line(
    request: Request, pos: PosDep, op: OperatorDep, order_id: str, body: NewLine
) -> dict[str, Any]:
    """Add a product (``product_id``, ``qty``) or a keyed amount (``amount_minor``)."""
    allowed(request, op, "sell")
    try:
        if body.product_id is not None:
            order = pos.orders.add_product(order_id, body.product_id, body.qty)
        elif body.amount_minor is not None:
            order = pos.orders.add_amount(order_id, body.amount_minor, body.label or "Amount")
        else:
            raise HTTPException(422, {"code": "bad_line", "message": "product_id or amount"})
    except StoreError as exc:
        raise _refused(exc) from None
    return order.to_dict()


@router.post("/orders/{order_id}/cash")
async def pay_cash(
    request: Request, pos: PosDep, op: OperatorDep, order_id: str, body: CashPayment
) -> dict[str, Any]:
    """Pay the order in cash; a repeated request returns the same payment and change."""
    allowed(request, op, "sell")
    try:
        payment, change_minor = pos.payments.pay_cash(
            order_id, body.tendered_minor, staff_id=op.staff_id
        )
    except StoreError as exc:
        raise _refused(exc) from None
    return {"payment": payment.to_dict(), "change_minor": change_minor}


@router.get("/orders")
async def find_orders(
    request: Request,
    pos: PosDep,
    op: OperatorDep,
    last4: Annotated[str | None, Query(pattern=r"^[0-9]{4}$")] = None,
    rrn: Annotated[str | None, Query(pattern=r"^[0-9]{12}$")] = None,
    receipt_no: Annotated[str | None, Query(max_length=20)] = None,
    amount_minor: Annotated[int | None, Query(ge=0, le=99_999_999_999)] = None,
    method: Annotated[str | None, Query(pattern=r"^(card|cash|qr)$")] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """After-sale lookup, newest first."""
    allowed(request, op, "lookup")
    try:
        found = pos.orders.search(
            last4=last4,
            rrn=rrn,
            receipt_no=receipt_no,
            amount_minor=amount_minor,
            method=method,
            status=status,
            limit=limit,
        )
    except StoreError as exc:
        raise _refused(exc) from None
    return [o.to_dict() for o in found]


@router.get("/shifts/current")
async def current_shift(pos: PosDep, op: OperatorDep) -> dict[str, Any] | None:
    shift = pos.shifts.current(op.staff_id)
    return None if shift is None else pos.shifts.report(shift.id).to_dict()
