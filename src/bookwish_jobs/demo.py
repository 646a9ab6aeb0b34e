"""``--demo``: seed a few users, stores and orders, queue one job of each kind, wait."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update

from bookwish_jobs import names
from bookwish_jobs.db import Database
from bookwish_jobs.fakes import FakeSquare
from bookwish_jobs.models import NodeTables, new_id, utcnow
from bookwish_jobs.producers import Producers
from bookwish_jobs.service import Service
from pyqueue import Job, Worker

SQUARE_STORE = "demo-square-store"
BOOK_STORE = "demo-book-nook"
SQUARE_TOKEN = "demo-square-token"  # accepted by the local stand-in for Square
CUSTOMER = "demo-alice"


def demo_square() -> FakeSquare:
    """A local stand-in for Square, with counts for the demo store's catalog.

    The account has a second location and counts in other states, which the sync
    leaves out: the demo store is tied to ``DEMO-LOC`` and only ``IN_STOCK`` is for sale.
    """
    def count(i: int, quantity: int, state: str = "IN_STOCK", location: str = "DEMO-LOC"
              ) -> dict[str, str]:
        return {"catalog_object_id": f"DEMO-ITEM-{i}", "catalog_object_type": "ITEM_VARIATION",
                "state": state, "location_id": location, "quantity": str(quantity)}

    counts = [count(i, q) for i, q in enumerate((7, 3, 12, 1, 5))] + [
        count(0, 2, state="RESERVED_FOR_SALE"), count(2, 1, state="WASTE"),
        count(1, 40, location="DEMO-WAREHOUSE"),
    ]
    return FakeSquare(tokens={SQUARE_TOKEN}, counts=counts, page_size=2)


def seed(db: Database) -> dict[str, Any]:
    """Fixed demo entities (created once) plus one stale and one fresh order per run."""
    run = str(int(time.time() * 1000))
    t = db.node
    with db.transaction() as s:
        if s.execute(select(t.user.c.id).where(t.user.c.id == CUSTOMER)).first() is None:
            s.execute(insert(t.user), [{"id": CUSTOMER, "email": "alice@example.com"},
                                       {"id": "demo-owner", "email": "owner@booknook.example"}])
            s.execute(insert(t.push_token), [
                {"userId": CUSTOMER, "token": "ExponentPushToken[demo-phone]"},
                {"userId": CUSTOMER, "token": "ExponentPushToken[demo-tablet]"}])
            s.execute(insert(t.store).values(**_store(
                t, id=SQUARE_STORE, name="Corner Books", email="hello@corner.example",
                inventorySource="square", squareAccessToken=SQUARE_TOKEN,
                square_location_id="DEMO-LOC")))
            s.execute(insert(t.store).values(**_store(
                t, id=BOOK_STORE, name="The Book Nook", ownerId="demo-owner")))
            s.execute(insert(t.inventory), [
                {"id": f"demo-inv-{i}", "storeId": SQUARE_STORE,
                 "square_item_id": f"DEMO-ITEM-{i}", "quantity": 4} for i in range(4)])
            s.execute(insert(t.inventory).values(id="demo-nook-1", storeId=BOOK_STORE,
                                                 quantity=3))
        stale, fresh = new_id(), new_id()
        s.execute(insert(t.order), [
            {"id": stale, "orderNumber": f"BW-{run}-1", "storeId": BOOK_STORE,
             "userId": CUSTOMER, "status": "pending", "paymentStatus": "pending",
             "createdAt": utcnow() - timedelta(minutes=45)},
            {"id": fresh, "orderNumber": f"BW-{run}-2", "storeId": BOOK_STORE,
             "userId": CUSTOMER, "status": "paid", "paymentStatus": "paid",
             "createdAt": utcnow()}])
        s.execute(insert(t.order_item), [
            {"orderId": fresh, "inventoryId": "demo-nook-1", "order_item_title": "Dune",
             "quantity": 2},
            {"orderId": stale, "inventoryId": "demo-nook-1", "order_item_title": "Dune",
             "quantity": 1}])
        reserved = t.inventory.c.reservedQuantity
        s.execute(update(t.inventory).where(t.inventory.c.id == "demo-nook-1")
                  .values(reservedQuantity=reserved + 1))
        return {"stale_order": stale, "paid_order": fresh, "paid_number": f"BW-{run}-2"}


def _store(t: NodeTables, *, name: str, square_location_id: str | None = None,
           **values: Any) -> dict[str, Any]:
    # The open columns go in only where the table has them (the demo runs on any schema).
    if "store_name" in t.store.c:
        values["store_name"] = name
    if "square_location_id" in t.store.c:
        values["square_location_id"] = square_location_id
    return values


async def run_demo(producers: Producers, db: Database, service: Service,
                   timeout: float = 60.0) -> dict[str, Any]:
    """Queue one job per queue and wait for each; returns ``{queue: outcome}``.

    Completion is observed through the workers' own events (registered before the
    jobs are added), because completed jobs are removed at once (remove on complete).
    """
    loop = asyncio.get_running_loop()
    outcomes: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}

    def settle(key: tuple[str, str], outcome: dict[str, Any]) -> None:
        future = outcomes.setdefault(key, loop.create_future())
        if not future.done():
            future.set_result(outcome)

    def watch(name: str, worker: Worker) -> None:
        def completed(job: Job[Any], result: Any) -> None:
            settle((name, job.id), {"completed": True, "result": result})

        def failed(job: Job[Any], exc: BaseException, final: bool) -> None:
            if final:
                settle((name, job.id),
                       {"completed": False, "error": str(exc) or type(exc).__name__})

        worker.on("completed", completed)
        worker.on("failed", failed)

    for name, qw in service.workers.items():
        watch(name, qw.worker)

    seeded = await asyncio.to_thread(seed, db)
    await producers.queue_store_order_for_digest(BOOK_STORE, seeded["paid_order"], True)
    await producers.queue_order_for_ops_digest(seeded["paid_order"])
    job_ids = {
        names.NOTIFICATIONS: await producers.queue_notification(
            notification_id=f"demo-{seeded['paid_order']}", user_id=CUSTOMER,
            type="order_update", title="Your order is ready <3",
            body="Pick it up at The Book Nook & enjoy!", order_id=seeded["paid_order"],
            order_number=seeded["paid_number"]),
        names.SQUARE_SYNC: await producers.trigger_store_sync(SQUARE_STORE),
        names.RESERVATION_CLEANUP: await producers.run_reservation_cleanup(),
        names.ORDER_DIGEST: await producers.run_order_digest(),
    }
    results: dict[str, Any] = {}
    for queue_name, job_id in job_ids.items():
        future = outcomes.setdefault((queue_name, job_id), loop.create_future())
        try:
            results[queue_name] = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            results[queue_name] = {"completed": False, "error": f"not done after {timeout}s"}
    return results
