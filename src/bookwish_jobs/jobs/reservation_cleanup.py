"""``reservation-cleanup``: cancel orders still pending 30 minutes after creation.

Each order is released in one transaction that starts with
``UPDATE "Order" SET status='cancelled' ... WHERE id=:id AND status='pending'``:
only when that changed exactly one row are its items' reservations released, so
an order paid meanwhile is left alone and no order is released twice. The
reserved quantity is lowered with a floor at zero.

The result is the design's ``{releasedOrders, releasedItems}``: the orders cancelled
and, as Node counts them, their items that have an inventory row (an item whose
quantity is 0 or less counts but changes no reservation).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, case, select, update

from bookwish_jobs.context import AppContext
from bookwish_jobs.logs import log_event
from bookwish_jobs.models import utcnow
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
    """Cancel one pending order and release its items; returns how many of its items
    have an inventory row, or None when the order was no longer pending."""
    order, item, inventory = ctx.db.node.order, ctx.db.node.order_item, ctx.db.node.inventory
    order_stamp = {"updated_at": utcnow()} if "updated_at" in order.c else {}
    inventory_stamp = {"updated_at": utcnow()} if "updated_at" in inventory.c else {}
    with ctx.db.transaction() as s:
        changed = cast("CursorResult[Any]", s.execute(
            update(order)
            .where(order.c.id == order_id, order.c.status == "pending")
            .values(status="cancelled", paymentStatus="failed", **order_stamp)
        ))
        if changed.rowcount != 1:
            return None
        items = s.execute(
            select(item.c.inventoryId, item.c.quantity)
            .where(item.c.orderId == order_id, item.c.inventoryId.is_not(None))
        ).all()
        for inventory_id, quantity in items:
            if quantity is None or quantity <= 0:
                continue
            reserved = inventory.c.reservedQuantity
            s.execute(
                update(inventory).where(inventory.c.id == inventory_id)
                .values(reservedQuantity=case((reserved > quantity, reserved - quantity),
                                              else_=0), **inventory_stamp)
            )
        return len(items)


def process(job: JobHandle[ReservationCleanupPayload], ctx: AppContext,
            report: Report = NO_REPORT) -> dict[str, int]:
    cutoff = utcnow() - PENDING_TTL
    order = ctx.db.node.order
    with ctx.db.transaction() as s:
        candidates = list(s.scalars(
            select(order.c.id).where(order.c.status == "pending", order.c.createdAt < cutoff)
            .order_by(order.c.createdAt)
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
    result = {"releasedOrders": released_orders, "releasedItems": released_items}
    report.progress(100)
    report.log(f"released {released_orders} orders, {released_items} items")
    log_event("reservation.cleanup_completed", job_id=job.id, candidates=len(candidates),
              **result)
    return result
