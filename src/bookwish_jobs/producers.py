"""Producers (async :class:`Producers`, blocking :class:`SyncProducers`) and start-up scheduling.

Jobs are added as the Node app adds them: Bull's default job name, the Node
interfaces' camelCase data (``payloads.py``), the queue's job options. Schedules use
the Node app's repeat keys (``schedules.py``), so Node and Python declaring them
leaves one schedule per job.

Every call is safe to make from every worker at once: adding a schedule is
idempotent (same repeat key, deterministic instance ids), digest entries are plain
inserts, and removing a schedule that is already gone is a no-op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, insert, select

from bookwish_jobs import names, schedules
from bookwish_jobs.db import Database
from bookwish_jobs.logs import log_event
from bookwish_jobs.models import new_id
from bookwish_jobs.payloads import (
    NotificationPayload,
    OrderDigestPayload,
    ReservationCleanupPayload,
    SquareSyncPayload,
)
from bookwish_jobs.registry import open_queue, open_sync_queue
from pyqueue import Queue, SyncQueue

# A manual Square sync is tried once: the hourly schedule is the retry.
TRIGGER_ATTEMPTS = 1


def _notification(**fields: Any) -> NotificationPayload:
    # Validates at enqueue, before anything reaches Redis.
    return NotificationPayload.model_validate(fields)


def _add_entry(db: Database, table: Table, **values: Any) -> str:
    # As prisma.<model>.create fills them: the client-made id, every @default (processed
    # false, the now() stamp) and @updatedAt, where the table has those columns.
    entry_id = new_id()
    with db.transaction() as s:
        s.execute(insert(table).values(id=entry_id, processed=False, **values))
    return entry_id


def add_store_digest_entry(db: Database, store_id: str, order_id: str,
                           is_special_order: bool) -> str:
    """A row of the Node app's ``OrderDigestQueue``, as ``queueStoreOrderForDigest`` adds it."""
    return _add_entry(db, db.node.order_digest, storeId=store_id, orderId=order_id,
                      isSpecialOrder=is_special_order)


def add_ops_digest_entry(db: Database, order_id: str) -> str:
    """A row of ``BookwishOpsDigestQueue``, as ``queueOrderForOpsDigest`` adds it."""
    return _add_entry(db, db.node.ops_digest, orderId=order_id)


def square_store_ids(db: Database) -> list[str]:
    """Stores whose inventory comes from Square and that have an access token."""
    store = db.node.store
    with db.transaction() as s:
        return list(s.scalars(select(store.c.id).where(
            store.c.inventorySource == "square", store.c.squareAccessToken.is_not(None),
            store.c.squareAccessToken != "",
        ).order_by(store.c.id)))


class Producers:
    """Async producers. ``db`` is needed for the digest entries and Square scheduling."""

    def __init__(self, redis_url: str | None, db: Database | None = None) -> None:
        self.redis_url = redis_url
        self.db = db
        self._queues: dict[str, Queue[Any]] = {}

    def queue(self, name: str) -> Queue[Any]:
        if name not in self._queues:
            self._queues[name] = open_queue(name, self.redis_url)
        return self._queues[name]

    def _db(self) -> Database:
        if self.db is None:
            raise RuntimeError("this producer needs a database: Producers(redis_url, db)")
        return self.db

    async def close(self) -> None:
        for queue in self._queues.values():
            await queue.close()
        self._queues.clear()

    async def queue_notification(
        self, *, notification_id: str, user_id: str, type: str, title: str, body: str,
        order_id: str | None = None, order_number: str | None = None,
    ) -> str:
        """Queue a notification; returns the job id. Raises ValueError for a bad payload."""
        payload = _notification(notification_id=notification_id, user_id=user_id, type=type,
                                title=title, body=body, order_id=order_id,
                                order_number=order_number)
        job = await self.queue(names.NOTIFICATIONS).add(payload)
        return job.id

    async def trigger_store_sync(self, store_id: str) -> str:
        """A one-off Square sync of one store, tried once."""
        job = await self.queue(names.SQUARE_SYNC).add(SquareSyncPayload(store_id=store_id),
                                                      attempts=TRIGGER_ATTEMPTS)
        return job.id

    async def run_reservation_cleanup(self) -> str:
        """A one-off cleanup run now (the schedule runs it every 15 minutes)."""
        return (await self.queue(names.RESERVATION_CLEANUP).add(ReservationCleanupPayload())).id

    async def run_order_digest(self) -> str:
        """A one-off digest now, with the schedule's data ``{type: 'daily'}``."""
        return (await self.queue(names.ORDER_DIGEST).add(OrderDigestPayload())).id

    async def queue_store_order_for_digest(self, store_id: str, order_id: str,
                                           is_special_order: bool) -> str:
        return await asyncio.to_thread(add_store_digest_entry, self._db(), store_id, order_id,
                                       is_special_order)

    async def queue_order_for_ops_digest(self, order_id: str) -> str:
        return await asyncio.to_thread(add_ops_digest_entry, self._db(), order_id)

    # --- scheduling at start-up ----------------------------------------------------

    async def schedule_square_syncs(self) -> list[str]:
        """Hourly sync per Square store; drops the schedules of stores no longer on Square."""
        store_ids = await asyncio.to_thread(square_store_ids, self._db())
        queue = self.queue(names.SQUARE_SYNC)
        wanted = {schedules.square_sync(s).key: schedules.square_sync_id(s) for s in store_ids}
        for store_id in store_ids:
            await queue.add(SquareSyncPayload(store_id=store_id),
                            repeat=schedules.square_sync(store_id).repeat)
        for entry in await queue.get_repeatable_jobs():
            job_id = entry.get("id") or ""
            if entry["key"] in wanted or not job_id.startswith(schedules.SQUARE_SYNC_ID_PREFIX):
                continue
            await queue.remove_repeatable_by_key(entry["key"])
            event = ("schedule.legacy_removed" if schedules.is_legacy(queue.name, entry)
                     else "square.schedule_removed")
            log_event(event, queue=queue.name, key=entry["key"], schedule=job_id)
        return sorted(wanted.values())

    async def schedule_reservation_cleanup(self) -> None:
        await self._schedule_single(schedules.RESERVATION_CLEANUP, ReservationCleanupPayload())

    async def schedule_order_digest(self) -> None:
        await self._schedule_single(schedules.ORDER_DIGEST, OrderDigestPayload())

    async def _schedule_single(self, schedule: schedules.Schedule, payload: Any) -> None:
        queue = self.queue(schedule.queue)
        await queue.add(payload, repeat=schedule.repeat)
        await self._remove_legacy(queue)

    async def _remove_legacy(self, queue: Queue[Any]) -> None:
        """Remove the schedules older bookwish_jobs versions declared under other keys."""
        for entry in await queue.get_repeatable_jobs():
            if schedules.is_legacy(queue.name, entry):
                await queue.remove_repeatable_by_key(entry["key"])
                log_event("schedule.legacy_removed", queue=queue.name, key=entry["key"])

    async def schedule_all(self) -> None:
        await self.schedule(names.QUEUE_NAMES)

    async def schedule(self, queues: Iterable[str]) -> None:
        """Declare the schedules of ``queues`` (those of a worker's enabled queues at
        its start-up: a worker only reads the tables of the queues it runs)."""
        wanted = set(queues)
        if names.SQUARE_SYNC in wanted:
            await self.schedule_square_syncs()
        if names.RESERVATION_CLEANUP in wanted:
            await self.schedule_reservation_cleanup()
        if names.ORDER_DIGEST in wanted:
            await self.schedule_order_digest()


class SyncProducers:
    """Blocking producers for synchronous code (same validation, same job options)."""

    def __init__(self, redis_url: str | None, db: Database | None = None) -> None:
        self.redis_url = redis_url
        self.db = db
        self._queues: dict[str, SyncQueue[Any]] = {}

    def queue(self, name: str) -> SyncQueue[Any]:
        if name not in self._queues:
            self._queues[name] = open_sync_queue(name, self.redis_url)
        return self._queues[name]

    def close(self) -> None:
        for queue in self._queues.values():
            queue.close()
        self._queues.clear()

    def queue_notification(
        self, *, notification_id: str, user_id: str, type: str, title: str, body: str,
        order_id: str | None = None, order_number: str | None = None,
    ) -> str:
        payload = _notification(notification_id=notification_id, user_id=user_id, type=type,
                                title=title, body=body, order_id=order_id,
                                order_number=order_number)
        return self.queue(names.NOTIFICATIONS).add(payload).id

    def trigger_store_sync(self, store_id: str) -> str:
        return self.queue(names.SQUARE_SYNC).add(SquareSyncPayload(store_id=store_id),
                                                 attempts=TRIGGER_ATTEMPTS).id

    def queue_store_order_for_digest(self, store_id: str, order_id: str,
                                     is_special_order: bool) -> str:
        if self.db is None:
            raise RuntimeError("this producer needs a database: SyncProducers(redis_url, db)")
        return add_store_digest_entry(self.db, store_id, order_id, is_special_order)

    def queue_order_for_ops_digest(self, order_id: str) -> str:
        if self.db is None:
            raise RuntimeError("this producer needs a database: SyncProducers(redis_url, db)")
        return add_ops_digest_entry(self.db, order_id)
