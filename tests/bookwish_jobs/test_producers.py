"""Producers and start-up scheduling: idempotent, safe from many workers at once."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from bookwish_jobs import names
from bookwish_jobs.db import Database
from bookwish_jobs.models import Store
from bookwish_jobs.producers import Producers, SyncProducers
from pyqueue import Backoff

from .helpers import add_store


def stores(db: Database) -> None:
    add_store(db, "a", inventorySource="square", squareAccessToken="t-a")
    add_store(db, "b", inventorySource="square", squareAccessToken="t-b")
    add_store(db, "c", inventorySource="square")  # no token: not scheduled
    add_store(db, "d", inventorySource="manual", squareAccessToken="t-d")


async def test_schedules_are_idempotent_across_workers(
    database: Database, bw_redis_url: str
) -> None:
    stores(database)
    many = [Producers(bw_redis_url, database, digest_tz="Europe/London") for _ in range(4)]
    try:
        await asyncio.gather(*(p.schedule_all() for p in many))
        await asyncio.gather(*(p.schedule_all() for p in many))
        sync_q = many[0].queue(names.SQUARE_SYNC)
        schedules = await sync_q.get_repeatable_jobs()
        assert sorted(s["id"] for s in schedules) == ["square-sync-a", "square-sync-b"]
        assert all(s["every"] == 3_600_000 for s in schedules)
        assert await sync_q.get_delayed_count() == 2
        cleanup = await many[0].queue(names.RESERVATION_CLEANUP).get_repeatable_jobs()
        assert [(s["id"], s["every"]) for s in cleanup] == [("reservation-cleanup", 900_000)]
        digest = await many[0].queue(names.ORDER_DIGEST).get_repeatable_jobs()
        assert [(s["id"], s["cron"], s["tz"]) for s in digest] == [
            ("order-digest", "0 6 * * *", "Europe/London")]
        assert await many[0].queue(names.ORDER_DIGEST).get_delayed_count() == 1
    finally:
        for p in many:
            await p.close()


async def test_store_leaving_square_loses_its_schedule(
    database: Database, bw_redis_url: str
) -> None:
    stores(database)
    producers = Producers(bw_redis_url, database)
    try:
        assert await producers.schedule_square_syncs() == ["square-sync-a", "square-sync-b"]
        with database.transaction() as s:
            s.execute(update(Store).where(Store.id == "a").values(inventorySource="manual"))
        assert await producers.schedule_square_syncs() == ["square-sync-b"]
        queue = producers.queue(names.SQUARE_SYNC)
        assert [s["id"] for s in await queue.get_repeatable_jobs()] == ["square-sync-b"]
        assert await queue.get_delayed_count() == 1
    finally:
        await producers.close()


async def test_changing_digest_tz_replaces_the_schedule(bw_redis_url: str) -> None:
    for tz in ("UTC", "America/New_York"):
        producers = Producers(bw_redis_url, digest_tz=tz)
        try:
            await producers.schedule_order_digest()
        finally:
            await producers.close()
    producers = Producers(bw_redis_url)
    try:
        digest = await producers.queue(names.ORDER_DIGEST).get_repeatable_jobs()
        assert [s["tz"] for s in digest] == ["America/New_York"]
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
        sync_id = producers.trigger_store_sync("s1")
        sync_job = producers.queue(names.SQUARE_SYNC).get_job(sync_id)
        assert sync_job is not None
        assert sync_job.opts.attempts == 1
    finally:
        producers.close()
