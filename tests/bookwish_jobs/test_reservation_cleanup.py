"""reservation-cleanup: one conditional transaction per order; races and idempotency."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import update

from bookwish_jobs import names
from bookwish_jobs.context import AppContext
from bookwish_jobs.jobs import reservation_cleanup
from bookwish_jobs.jobs.reservation_cleanup import release_order
from bookwish_jobs.payloads import ReservationCleanupPayload

from .conftest import run_job
from .helpers import FakeJob, add_inventory, add_order, add_store, get


def shop(ctx: AppContext) -> None:
    add_store(ctx.db, "s1")
    add_inventory(ctx.db, "i1", "s1", quantity=10, reservedQuantity=5)
    add_inventory(ctx.db, "i2", "s1", quantity=10, reservedQuantity=1)
    add_order(ctx.db, "stale", "s1", age_minutes=45, items=[("i1", 2), ("i2", 3)])
    add_order(ctx.db, "fresh", "s1", age_minutes=5, items=[("i1", 1)])
    add_order(ctx.db, "paid", "s1", age_minutes=90, status="paid", items=[("i1", 1)])


def process(ctx: AppContext) -> Any:
    return reservation_cleanup.process(FakeJob(ReservationCleanupPayload()), ctx)  # type: ignore[arg-type]


async def test_releases_stale_pending_orders_once(ctx: AppContext, bw_redis_url: str) -> None:
    shop(ctx)
    outcome = await run_job(ctx, bw_redis_url, names.RESERVATION_CLEANUP, {})
    assert outcome.state == "completed", outcome.value
    assert outcome.value == {"releasedOrders": 1, "releasedItems": 2}
    stale = get(ctx.db, "Order", "stale")
    assert (stale.status, stale.paymentStatus) == ("cancelled", "failed")
    assert get(ctx.db, "Order", "fresh").status == "pending"
    assert get(ctx.db, "Order", "paid").status == "paid"
    assert get(ctx.db, "Inventory", "i1").reservedQuantity == 3
    # i2 had 1 reserved and the order held 3: floor at zero, never negative.
    assert get(ctx.db, "Inventory", "i2").reservedQuantity == 0
    # Idempotent: a second run (say, a retry) finds nothing to do.
    again = await run_job(ctx, bw_redis_url, names.RESERVATION_CLEANUP, {})
    assert again.value == {"releasedOrders": 0, "releasedItems": 0}
    assert get(ctx.db, "Inventory", "i1").reservedQuantity == 3


def test_order_paid_concurrently_is_never_cancelled(ctx: AppContext) -> None:
    shop(ctx)
    paid = threading.Event()
    release = threading.Event()

    def pay() -> None:
        # The payment webhook's own conditional update, holding its transaction open.
        order = ctx.db.node.order
        with ctx.db.transaction() as s:
            s.execute(update(order).where(order.c.id == "stale", order.c.status == "pending")
                      .values(status="paid", paymentStatus="paid"))
            paid.set()
            release.wait(10)

    payer = threading.Thread(target=pay)
    payer.start()
    assert paid.wait(10)
    result: dict[str, Any] = {}
    cleaner = threading.Thread(target=lambda: result.update(r=release_order(ctx, "stale")))
    cleaner.start()
    cleaner.join(0.5)
    assert cleaner.is_alive()  # blocked on the payment's lock, not reading stale data
    release.set()
    payer.join(10)
    cleaner.join(10)
    assert result["r"] is None
    order = get(ctx.db, "Order", "stale")
    assert (order.status, order.paymentStatus) == ("paid", "paid")
    assert get(ctx.db, "Inventory", "i1").reservedQuantity == 5


def test_concurrent_cleanups_release_each_order_once(ctx: AppContext) -> None:
    shop(ctx)
    add_order(ctx.db, "stale2", "s1", age_minutes=60, items=[("i1", 1)])
    results: list[Any] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        results.append(process(ctx))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(r["releasedOrders"] for r in results) == 2
    assert sum(r["releasedItems"] for r in results) == 3
    assert get(ctx.db, "Inventory", "i1").reservedQuantity == 2  # 5 - 2 - 1, exactly once
    assert get(ctx.db, "Inventory", "i2").reservedQuantity == 0


def test_order_without_items_or_inventory_link(ctx: AppContext) -> None:
    add_store(ctx.db, "s1")
    add_order(ctx.db, "bare", "s1", age_minutes=31)
    assert process(ctx) == {"releasedOrders": 1, "releasedItems": 0}
    assert get(ctx.db, "Order", "bare").status == "cancelled"
