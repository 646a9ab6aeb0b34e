"""Producers and start-up scheduling: idempotent, safe from many workers at once."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update

from bookwish_jobs import names
from bookwish_jobs.db import Database
from bookwish_jobs.producers import Producers, SyncProducers
from pyqueue import Backoff, Queue, Repeat

from .helpers import add_store, job_hash


def stores(db: Database) -> None:
    add_store(db, "a", inventorySource="square", squareAccessToken="t-a")
    add_store(db, "b", inventorySource="square", squareAccessToken="t-b")
    add_store(db, "c", inventorySource="square")  # no token: not scheduled
    add_store(db, "d", inventorySource="manual", squareAccessToken="t-d")


async def test_schedules_use_the_node_apps_repeat_keys_once_across_workers(
    database: Database, bw_redis_url: str
) -> None:
    stores(database)
    many = [Producers(bw_redis_url, database) for _ in range(4)]
    try:
        await asyncio.gather(*(p.schedule_all() for p in many))
        await asyncio.gather(*(p.schedule_all() for p in many))
        sync_q = many[0].queue(names.SQUARE_SYNC)
        assert sorted(s["key"] for s in await sync_q.get_repeatable_jobs()) == [
            "__default__:square-sync-a:::0 * * * *", "__default__:square-sync-b:::0 * * * *"]
        assert await sync_q.get_delayed_count() == 2
        cleanup = many[0].queue(names.RESERVATION_CLEANUP)
        assert [s["key"] for s in await cleanup.get_repeatable_jobs()] == [
            "__default__:reservation-cleanup-recurring:::*/15 * * * *"]
        digest = many[0].queue(names.ORDER_DIGEST)
        assert [s["key"] for s in await digest.get_repeatable_jobs()] == [
            "__default__::::0 6 * * *"]
        delayed = await digest.get_job_ids("delayed")
        assert len(delayed) == 1
        stored = job_hash(bw_redis_url, names.ORDER_DIGEST, delayed[0])
        assert (stored["name"], stored["data"]) == ("__default__", '{"type":"daily"}')
    finally:
        for p in many:
            await p.close()


async def test_start_up_removes_the_schedules_of_older_versions(
    database: Database, bw_redis_url: str
) -> None:
    """The keys bookwish_jobs <= 0.1 wrote, as found on a real deployment."""
    stores(database)
    producers = Producers(bw_redis_url, database)
    try:
        old = [
            (names.RESERVATION_CLEANUP, "reservation-cleanup",
             Repeat(every=900_000, job_id="reservation-cleanup"), {"olderThanMinutes": 30}),
            (names.ORDER_DIGEST, "order-digest",
             Repeat(cron="0 6 * * *", tz="UTC", job_id="order-digest"), {"include_ops": True}),
            (names.SQUARE_SYNC, "square-sync",
             Repeat(every=3_600_000, job_id="square-sync-a"), {"store_id": "a"}),
        ]
        for queue_name, job_name, repeat, data in old:
            raw: Queue[Any] = Queue(queue_name, bw_redis_url)
            await raw.add(data, name=job_name, repeat=repeat)
            await raw.close()
        assert [s["key"] for s in await producers.queue(names.ORDER_DIGEST)
                .get_repeatable_jobs()] == ["order-digest:order-digest::UTC:0 6 * * *"]
        await producers.schedule_all()
        for queue_name, keys in {
            names.RESERVATION_CLEANUP: ["__default__:reservation-cleanup-recurring:::*/15 * * * *"],
            names.ORDER_DIGEST: ["__default__::::0 6 * * *"],
            names.SQUARE_SYNC: ["__default__:square-sync-a:::0 * * * *",
                                "__default__:square-sync-b:::0 * * * *"],
        }.items():
            queue = producers.queue(queue_name)
            assert sorted(s["key"] for s in await queue.get_repeatable_jobs()) == keys
            # The old schedules' pending instances went with them.
            assert len(await queue.get_job_ids("delayed")) == len(keys), queue_name
    finally:
        await producers.close()


async def test_store_leaving_square_loses_its_schedule(
    database: Database, bw_redis_url: str
) -> None:
    stores(database)
    producers = Producers(bw_redis_url, database)
    try:
        assert await producers.schedule_square_syncs() == ["square-sync-a", "square-sync-b"]
        store = database.node.store
        with database.transaction() as s:
            s.execute(update(store).where(store.c.id == "a").values(inventorySource="manual"))
        assert await producers.schedule_square_syncs() == ["square-sync-b"]
        queue = producers.queue(names.SQUARE_SYNC)
        assert [s["id"] for s in await queue.get_repeatable_jobs()] == ["square-sync-b"]
        assert await queue.get_delayed_count() == 1
    finally:
        await producers.close()


def test_sync_producers_use_the_queue_options(bw_redis_url: str) -> None:
    producers = SyncProducers(bw_redis_url)
    try:
        job_id = producers.queue_notification(notification_id="n1", user_id="u1",
                                              type="payment_issue", title="t", body="b")
        job = producers.queue(names.NOTIFICATIONS).get_job(job_id)
        assert job is not None
        assert job.opts.attempts == 3
        assert job.opts.backoff == Backoff(type="exponential", delay=2000)
        assert job.data.notification_id == "n1"  # get_job validates against the model
        stored = job_hash(bw_redis_url, names.NOTIFICATIONS, job_id)
        assert stored["name"] == "__default__"
        assert stored["data"] == (
            '{"notificationId":"n1","userId":"u1","type":"payment_issue","title":"t","body":"b"}')
        assert job.opts.remove_on_complete is True
        assert job.opts.remove_on_fail is False
        assert job.opts.timeout == 30_000
        sync_id = producers.trigger_store_sync("s1")
        sync_job = producers.queue(names.SQUARE_SYNC).get_job(sync_id)
        assert sync_job is not None
        assert sync_job.opts.attempts == 1
        stored = job_hash(bw_redis_url, names.SQUARE_SYNC, sync_id)
        assert (stored["name"], stored["data"]) == ("__default__", '{"storeId":"s1"}')
    finally:
        producers.close()


async def test_start_up_declares_only_the_enabled_queues_schedules(
    database: Database, bw_redis_url: str
) -> None:
    stores(database)
    producers = Producers(bw_redis_url, database)
    try:
        await producers.schedule([names.RESERVATION_CLEANUP])
        found = {name: [s["key"] for s in await producers.queue(name).get_repeatable_jobs()]
                 for name in (names.SQUARE_SYNC, names.RESERVATION_CLEANUP, names.ORDER_DIGEST)}
    finally:
        await producers.close()
    assert found == {names.SQUARE_SYNC: [], names.ORDER_DIGEST: [],
                     names.RESERVATION_CLEANUP: [
                         "__default__:reservation-cleanup-recurring:::*/15 * * * *"]}
