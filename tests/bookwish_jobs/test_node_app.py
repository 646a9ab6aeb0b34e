"""With the real other side: the BookWish Node app's job code (``node/app.js``, real Node
Bull 4.16.5) on the same Redis and the Prisma-made PostgreSQL as bookwish_jobs.

- Jobs, schedules and digest entries made by the Node app complete on the Python
  worker with the right database effects, and both sides' schedules are one.
- Jobs made by the Python producers are taken by Node's ``queue.process(fn)``.
- Node and Python workers on the same queues at once lose and double nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bookwish_jobs import names
from bookwish_jobs.context import AppContext
from bookwish_jobs.fakes import FakeExpo, FakeSquare
from bookwish_jobs.producers import Producers
from bookwish_jobs.service import Service
from pyqueue import Queue

from .conftest import SQUARE_TOKEN, SmtpSink, run_job
from .helpers import add_inventory, add_item, add_order, add_store, add_user, column, get
from .node_app import NodeWorker, node_database, repeat_keys, run_node
from .prisma import DESIGN, PRISMA_VARIANTS, Variant

pg_only = pytest.mark.parametrize("database", PRISMA_VARIANTS, indirect=True)
ONE_SCHEDULE_EACH = {
    names.NOTIFICATIONS: [],
    names.SQUARE_SYNC: ["__default__:square-sync-sq:::0 * * * *"],
    names.RESERVATION_CLEANUP: ["__default__:reservation-cleanup-recurring:::*/15 * * * *"],
    names.ORDER_DIGEST: ["__default__::::0 6 * * *"],
}
# Where the Python producers' job options differ from the design's (node/app.js), and why:
# docs/bookwish/node-differences.md. A timeout on every job; the digest retried as the
# other jobs are; a manual Square sync with the queue's backoff and removeOnFail (unused
# with one attempt, and Bull's default anyway).
OPTION_DIFFERENCES = {
    names.NOTIFICATIONS: {"timeout": (30_000, None)},
    names.SQUARE_SYNC: {"timeout": (300_000, None), "removeOnFail": (False, None),
                        "backoff": ({"type": "exponential", "delay": 60_000}, None)},
    names.RESERVATION_CLEANUP: {"timeout": (120_000, None)},
    names.ORDER_DIGEST: {"timeout": (600_000, None), "attempts": (3, 1),
                         "backoff": ({"type": "exponential", "delay": 60_000}, None)},
}
NODE_NOTIFICATION = {"notificationId": "n1", "userId": "u1", "type": "order_update",
                     "title": "Your order is ready", "body": "Pick it up <today>",
                     "orderId": "paid", "orderNumber": "N-paid"}


@dataclass
class Finished:
    completed: dict[tuple[str, str], Any] = field(default_factory=dict)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, predicate: Any, timeout: float = 30.0) -> None:
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), timeout)


@asynccontextmanager
async def python_workers(ctx: AppContext, redis_url: str) -> AsyncIterator[Finished]:
    """The bookwish_jobs service (all four queues), recording what it finished."""
    service = Service(ctx, redis_url)
    finished = Finished()
    await service.start()
    for name, qw in service.workers.items():
        def done(job: Any, result: Any, name: str = name) -> None:
            finished.completed[(name, job.id)] = result
            finished.changed.set()

        def fail(job: Any, exc: BaseException, name: str = name) -> None:
            finished.failed.append((name, job.id, str(exc)))
            finished.changed.set()
        qw.worker.on("completed", done)
        qw.worker.on("failed", fail)
    try:
        yield finished
    finally:
        await service.close()


def seed(ctx: AppContext) -> None:
    add_user(ctx.db, "u1", "reader@example.com", ["tokA", "tokB"])
    add_user(ctx.db, "owner", "owner@nook.example")
    add_store(ctx.db, "nook", store_name="The Nook", ownerId="owner")
    add_store(ctx.db, "sq", store_name="Square Books", inventorySource="square",
              squareAccessToken=SQUARE_TOKEN, square_location_id="L1")
    add_store(ctx.db, "plain", store_name="Manual Books", inventorySource="manual")
    add_inventory(ctx.db, "i1", "sq", square_item_id="A", quantity=1)
    add_inventory(ctx.db, "dune", "nook", quantity=3, reservedQuantity=2)
    add_order(ctx.db, "stale", "nook", age_minutes=45, items=[("dune", 2)], user_id="u1")
    add_order(ctx.db, "paid", "nook", status="paid", user_id="u1")


async def delayed_counts(redis_url: str) -> dict[str, int]:
    out = {}
    for name in names.QUEUE_NAMES:
        async with Queue(name, redis_url) as queue:
            out[name] = await queue.get_delayed_count()
    return out


@pg_only
async def test_node_app_jobs_and_schedules_complete_on_the_python_worker(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo, smtp: tuple[SmtpSink, int],
    square: FakeSquare, variant: Variant,
) -> None:
    seed(ctx)
    square.counts = [{"catalog_object_id": "A", "location_id": "L1", "state": "IN_STOCK",
                      "quantity": "7"}]
    producers = Producers(bw_redis_url, ctx.db)
    try:
        # Start-up on both sides, Node first (the app is already running), then Python.
        node_db = node_database(ctx.db.url, variant.schema_prisma)
        events = run_node({
            "action": "produce", "redisUrl": bw_redis_url, **node_db,
            "schedule": True, "notifications": [NODE_NOTIFICATION], "syncStores": ["sq"],
            "storeDigest": [["nook", "paid", True]], "opsDigest": ["paid"],
            "cleanup": True, "digest": True,
        })
        await producers.schedule_all()
        run_node({"action": "produce", "redisUrl": bw_redis_url, **node_db, "schedule": True})
        await producers.schedule_all()
    finally:
        await producers.close()
    assert repeat_keys(bw_redis_url) == ONE_SCHEDULE_EACH
    # One pending instance per schedule, plus nothing else delayed: no doubled ticks.
    assert await delayed_counts(bw_redis_url) == {
        names.NOTIFICATIONS: 0, names.SQUARE_SYNC: 1, names.RESERVATION_CLEANUP: 1,
        names.ORDER_DIGEST: 1}
    added = {(e["queue"], e["jobId"]) for e in events if e["event"] == "added"}
    assert len(added) == 4
    stamped = {table: "updated_at" in ctx.db.node.by_name(table).c
               for table in ("Order", "Inventory")}
    before = {("Order", "stale"): get(ctx.db, "Order", "stale"),
              ("Inventory", "i1"): get(ctx.db, "Inventory", "i1"),
              ("Inventory", "dune"): get(ctx.db, "Inventory", "dune")}
    async with python_workers(ctx, bw_redis_url) as finished:
        await finished.until(lambda: added <= set(finished.completed) or finished.failed)
    assert finished.failed == []
    results = {queue: finished.completed[(queue, job_id)] for queue, job_id in added}
    # notifications: both devices and, for a critical type, the email.
    assert sorted(m["to"] for m in expo.messages) == ["tokA", "tokB"]
    # The design's data, {notificationId, type}: nothing more.
    assert expo.messages[0]["data"] == {"notificationId": "n1", "type": "order_update"}
    mails = {m["To"]: m for m in smtp[0].messages}
    assert mails["reader@example.com"]["Subject"] == "Your order is ready"
    # square-sync: Square's count written to the store's row.
    assert results[names.SQUARE_SYNC]["updated"] == 1
    assert get(ctx.db, "Inventory", "i1").quantity == 7
    # reservation-cleanup: the stale order cancelled and its reservation released.
    assert results[names.RESERVATION_CLEANUP] == {"releasedOrders": 1, "releasedItems": 1}
    stale = get(ctx.db, "Order", "stale")
    assert (stale.status, stale.paymentStatus) == ("cancelled", "failed")
    assert get(ctx.db, "Order", "paid").status == "paid"
    assert get(ctx.db, "Inventory", "dune").reservedQuantity == 0
    # Each row Python changed got a new @updatedAt where the model has one, as Prisma's
    # client sets it (the renamed schema has it on Order only, as modifiedAt).
    assert stamped == {"Order": True, "Inventory": variant.id == "prisma"}
    for (table, key), old in before.items():
        if stamped[table]:
            assert get(ctx.db, table, key).updated_at > old.updated_at
    # order-digest: the entries Node inserted were mailed and marked processed.
    assert "[SPECIAL ORDER]" in mails["owner@nook.example"].as_string()
    assert "ops@bookwish.test" in mails
    assert column(ctx.db, "OrderDigestQueue", "processed") == [True]
    assert column(ctx.db, "BookwishOpsDigestQueue", "processed") == [True]


async def test_node_worker_takes_the_python_producers_jobs(bw_redis_url: str) -> None:
    producers = Producers(bw_redis_url)
    try:
        python_ids = {
            names.NOTIFICATIONS: await producers.queue_notification(
                notification_id="n1", user_id="u1", type="order_update", title="Ready",
                body="b", order_id="o1"),
            names.SQUARE_SYNC: await producers.trigger_store_sync("sq"),
            names.RESERVATION_CLEANUP: await producers.run_reservation_cleanup(),
            names.ORDER_DIGEST: await producers.run_order_digest(),
        }
    finally:
        await producers.close()
    node_made = run_node({"action": "produce", "redisUrl": bw_redis_url,
                          "notifications": [NODE_NOTIFICATION], "syncStores": ["sq"],
                          "cleanup": True, "digest": True})
    node_ids = {e["queue"]: e["jobId"] for e in node_made if e["event"] == "added"}
    worker = NodeWorker(bw_redis_url, expect=8)
    try:
        completed = worker.wait_for("completed", 8)
    finally:
        worker.stop()
    assert worker.of("failed") == []
    assert {(e["queue"], e["jobId"]) for e in completed} == \
        set(python_ids.items()) | set(node_ids.items())
    processed = {(e["queue"], e["jobId"]): e for e in worker.of("processed")}
    for queue, job_id in python_ids.items():
        ours, theirs = processed[(queue, job_id)], processed[(queue, node_ids[queue])]
        assert ours["name"] == theirs["name"] == "__default__"
        differ = {k: (ours["opts"].get(k), theirs["opts"].get(k))
                  for k in {*ours["opts"], *theirs["opts"]} - {"timestamp", "jobId"}
                  if ours["opts"].get(k) != theirs["opts"].get(k)}
        assert differ == OPTION_DIFFERENCES[queue], queue
    assert processed[(names.NOTIFICATIONS, python_ids[names.NOTIFICATIONS])]["data"] == {
        "notificationId": "n1", "userId": "u1", "type": "order_update", "title": "Ready",
        "body": "b", "orderId": "o1"}
    assert processed[(names.SQUARE_SYNC, python_ids[names.SQUARE_SYNC])]["data"] == \
        {"storeId": "sq"}
    assert processed[(names.SQUARE_SYNC, python_ids[names.SQUARE_SYNC])]["opts"]["attempts"] == 1
    assert processed[(names.RESERVATION_CLEANUP,
                      python_ids[names.RESERVATION_CLEANUP])]["data"] == {}
    assert processed[(names.ORDER_DIGEST, python_ids[names.ORDER_DIGEST])]["data"] == \
        {"type": "daily"}


# One schema: 120 jobs through both fleets is about Redis; the notifications read the same
# User and PushToken columns in every variant (kept to one to spare CI six seconds).
@pytest.mark.parametrize("database", ["prisma"], indirect=True)
async def test_node_and_python_workers_at_once_lose_and_double_nothing(
    ctx: AppContext, bw_redis_url: str, expo: FakeExpo
) -> None:
    users = 60
    for i in range(users):
        add_user(ctx.db, f"u{i}", f"reader{i}@example.com", [f"tok{i}"])
    add_store(ctx.db, "sq", name="Square Books", inventorySource="square",
              squareAccessToken=SQUARE_TOKEN)

    def notification(i: int) -> dict[str, Any]:
        return {"notificationId": f"n{i}", "userId": f"u{i % users}", "type": "wishlist_match",
                "title": "In stock", "body": f"book {i}"}

    node_worker = NodeWorker(bw_redis_url, workMs=15, maxSeconds=90)
    node_worker.wait_for("ready")
    producers = Producers(bw_redis_url, ctx.db)
    try:
        async with python_workers(ctx, bw_redis_url) as finished:
            node_side = asyncio.to_thread(run_node, {
                "action": "produce", "redisUrl": bw_redis_url,
                **node_database(ctx.db.url, DESIGN.schema_prisma), "schedule": True,
                "notifications": [notification(i) for i in range(0, 120, 2)]})

            async def python_side() -> list[str]:
                await producers.schedule_all()
                ids = []
                for i in range(1, 120, 2):
                    data = notification(i)
                    ids.append(await producers.queue_notification(
                        notification_id=data["notificationId"], user_id=data["userId"],
                        type=data["type"], title=data["title"], body=data["body"]))
                return ids

            node_events, python_ids = await asyncio.gather(node_side, python_side())
            node_ids = [e["jobId"] for e in node_events if e["event"] == "added"]
            every = set(node_ids) | set(python_ids)
            assert len(every) == 120

            def python_done() -> set[str]:
                return {j for q, j in finished.completed if q == names.NOTIFICATIONS}

            def all_done() -> bool:
                node_done = {e["jobId"] for e in node_worker.of("completed")}
                return every <= node_done | python_done()

            while not all_done():  # the Node worker's progress arrives by pipe, not event
                await asyncio.sleep(0.1)
                assert not finished.failed
    finally:
        await producers.close()
        node_worker.stop()
    by_node = [e["jobId"] for e in node_worker.of("completed")]
    by_python = [j for q, j in finished.completed if q == names.NOTIFICATIONS]
    assert node_worker.of("failed") == []
    assert finished.failed == []
    assert len(by_node) == len(set(by_node))
    assert set(by_node).isdisjoint(by_python)  # no job ran on both sides
    assert set(by_node) | set(by_python) == every  # none lost
    assert by_node, "the Node worker took no job"
    assert by_python, "the Python worker took no job"
    # Each Python-processed notification pushed exactly once to its user's device.
    pushed = sorted(m["data"]["notificationId"] for m in expo.messages)
    assert len(pushed) == len(set(pushed)) == len(by_python)
    assert repeat_keys(bw_redis_url) == ONE_SCHEDULE_EACH


def _next_six_am(tz: str, now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    six = local.replace(hour=6, minute=0, second=0, microsecond=0)
    return six if six > local else six + timedelta(days=1)


def _instances_after_both_declared(node_tz: str, python_tz: str) -> int:
    """Node declares first; pyqueue then refuses a tick older than the one the repeat
    set points at (a stale scheduler must not re-create a tick). So a second, different
    06:00 is added only when it comes after Node's: which one depends on the time of day."""
    now = datetime.now(UTC)
    node_next, python_next = _next_six_am(node_tz, now), _next_six_am(python_tz, now)
    if node_next == python_next:
        return 1
    return 2 if python_next > node_next else 1


@pytest.mark.parametrize(("node_tz", "python_tz"), [
    ("America/New_York", "America/New_York"),  # same TZ: one digest a day
    ("America/New_York", "UTC"),  # different TZ: two different 06:00s
])
async def test_the_digest_schedule_needs_the_same_tz_on_both_sides(
    bw_redis_url: str, monkeypatch: pytest.MonkeyPatch, node_tz: str, python_tz: str,
) -> None:
    instances = _instances_after_both_declared(node_tz, python_tz)
    monkeypatch.setenv("TZ", node_tz)  # the Node process inherits it
    run_node({"action": "produce", "redisUrl": bw_redis_url, "schedule": True})
    monkeypatch.setenv("TZ", python_tz)  # pyqueue reads TZ when it computes the next tick
    producers = Producers(bw_redis_url)
    try:
        await producers.schedule_order_digest()
        queue = producers.queue(names.ORDER_DIGEST)
        assert [s["key"] for s in await queue.get_repeatable_jobs()] == [
            "__default__::::0 6 * * *"]
        delayed = await queue.get_jobs("delayed")
    finally:
        await producers.close()
    assert len(delayed) == instances
    fire_hours = {datetime.fromtimestamp((j.timestamp + j.delay) / 1000,
                                         ZoneInfo("America/New_York")).hour for j in delayed}
    assert 6 in fire_hours


def stuck_orders(ctx: AppContext, tag: str) -> None:
    """Two abandoned orders of one shape: items with and without an inventory row, one
    of quantity 0, one that holds more than is reserved."""
    add_store(ctx.db, f"{tag}-s", store_name="Nook")
    add_inventory(ctx.db, f"{tag}-i1", f"{tag}-s", reservedQuantity=5)
    add_inventory(ctx.db, f"{tag}-i2", f"{tag}-s", reservedQuantity=1)
    add_order(ctx.db, f"{tag}-a", f"{tag}-s", age_minutes=45,
              items=[(f"{tag}-i1", 2), (f"{tag}-i2", 3)])
    add_order(ctx.db, f"{tag}-b", f"{tag}-s", age_minutes=90, items=[(f"{tag}-i1", 0)])
    add_item(ctx.db, f"{tag}-b", None, 1, "a gift card, no inventory row")
    add_order(ctx.db, f"{tag}-fresh", f"{tag}-s", age_minutes=5, items=[(f"{tag}-i1", 1)])


@pg_only
async def test_the_cleanup_returns_what_the_node_app_returns(
    ctx: AppContext, bw_redis_url: str, variant: Variant,
) -> None:
    """The same data through the design's processor on Node, then through Python."""
    stuck_orders(ctx, "node")
    [added] = [e for e in run_node({"action": "produce", "redisUrl": bw_redis_url,
                                    "cleanup": True}) if e["event"] == "added"]
    node = NodeWorker(bw_redis_url, expect=1, maxSeconds=40,
                      design=node_database(ctx.db.url, variant.schema_prisma))
    try:
        [completed] = node.wait_for("completed")
    finally:
        node.stop()
    assert completed["jobId"] == added["jobId"]
    node_result = completed["result"]
    stuck_orders(ctx, "py")
    outcome = await run_job(ctx, bw_redis_url, names.RESERVATION_CLEANUP, {})
    assert node_result == outcome.value == {"releasedOrders": 2, "releasedItems": 3}
    for tag in ("node", "py"):
        assert [get(ctx.db, "Order", f"{tag}-{o}").status for o in ("a", "b", "fresh")] == [
            "cancelled", "cancelled", "pending"]
        assert get(ctx.db, "Inventory", f"{tag}-i1").reservedQuantity == 3
    # The one difference (docs/bookwish/node-differences.md): Node's decrement takes a
    # reservation below zero, Python stops at zero.
    assert get(ctx.db, "Inventory", "node-i2").reservedQuantity == -2
    assert get(ctx.db, "Inventory", "py-i2").reservedQuantity == 0
