"""``reservation-cleanup``: cancel orders still pending 30 minutes after creation.

Each order is released in one transaction that starts with
``UPDATE "Order" SET status='cancelled' ... WHERE id=:id AND status='pending'``:
only when that changed exactly one row are its items' reservations released, so
an order paid meanwhile is left alone and no order is released twice. The
reserved quantity is lowered with a floor at zero.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, case, select, update

from bookwish_jobs.context import AppContext
from bookwish_jobs.logs import log_event
from bookwish_jobs.models import Inventory, Order, OrderItem, utcnow
from bookwish_jobs.payloads import ReservationCleanupPayload
from bookwish_jobs.progress import NO_REPORT, Report
from pyqueue import Backoff, JobHandle, JobOptions

# Orders still pending this long after creation have been abandoned at checkout.
PENDING_TTL = timedelta(minutes=30)
OPTIONS = JobOptions(
    attempts=3,
    backoff=Backoff(type="exponential", delay=30_000),
    remove_on_complete=True,
    remove_on_fail=False,
    timeout=120_000,
)


def release_order(ctx: AppContext, order_id: str) -> int | None:
    """Cancel one pending order and release its items; None when it was no longer pending."""
    with ctx.db.transaction() as s:
        changed = cast("CursorResult[Any]", s.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == "pending")
            .values(status="cancelled", paymentStatus="failed", updatedAt=utcnow())
            .execution_options(synchronize_session=False)
        ))
        if changed.rowcount != 1:
            return None
        items = s.execute(
            select(OrderItem.inventoryId, OrderItem.quantity).where(OrderItem.orderId == order_id)
        ).all()
        released = 0
        for inventory_id, quantity in items:
            if inventory_id is None or quantity <= 0:
                continue
            s.execute(
                update(Inventory)
                .where(Inventory.id == inventory_id)
                .values(reservedQuantity=case(
                    (Inventory.reservedQuantity > quantity, Inventory.reservedQuantity - quantity),
                    else_=0,
                ), updatedAt=utcnow())
                .execution_options(synchronize_session=False)
            )
            released += 1
        return released


def process(job: JobHandle[ReservationCleanupPayload], ctx: AppContext,
            report: Report = NO_REPORT) -> dict[str, int]:
    cutoff = utcnow() - PENDING_TTL
    with ctx.db.transaction() as s:
        candidates = list(s.scalars(
            select(Order.id).where(Order.status == "pending", Order.createdAt < cutoff)
            .order_by(Order.createdAt)
        ))
    report.log(f"{len(candidates)} pending orders older than {PENDING_TTL}")
    released_orders = released_items = 0
    for done, order_id in enumerate(candidates, start=1):
        items = release_order(ctx, order_id)
        if items is not None:
            released_orders += 1
            released_items += items
        if done % 50 == 0:
            report.progress(int(100 * done / len(candidates)))
    result = {"released_orders": released_orders, "released_items": released_items}
    report.progress(100)
    report.log(f"released {released_orders} orders, {released_items} items")
    log_event("reservation.cleanup_completed", job_id=job.id, candidates=len(candidates),
              **result)
    return result
