"""``job.finished()`` in BullMQ mode at scale: every wait of a queue object shares one
reader of the ``events`` stream, so 300 waiters cost one connection, not 300; a
cancelled or timed-out wait leaves the others alone; a removed job ends its wait."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from pyqueue import Job, JobNotFound, Queue, Worker

pytestmark = pytest.mark.timeout(60)


async def _clients(redis_url: str) -> int:
    async with aioredis.from_url(redis_url) as admin:
        return len(await admin.client_list())


async def test_many_waiters_share_one_reader(redis_url: str, queue_name: str) -> None:
    async def handler(job: Job[Any]) -> int:
        return int(job.data["n"]) * 2

    async with Queue(queue_name, redis_url, protocol="bullmq") as queue:
        jobs = [await queue.add({"n": n}) for n in range(300)]
        before = await _clients(redis_url)
        waits = [asyncio.create_task(job.finished(timeout=30)) for job in jobs]
        await asyncio.sleep(0.3)  # every wait registered and blocked on the stream
        # One reader connection (the queue's own was open already, and the admin's).
        assert await _clients(redis_url) - before <= 1
        async with Worker(queue, handler):
            assert await asyncio.gather(*waits) == [n * 2 for n in range(300)]


async def test_a_cancelled_wait_leaves_the_others(redis_url: str, queue_name: str) -> None:
    async def handler(job: Job[Any]) -> str:
        return "done"

    async with Queue(queue_name, redis_url, protocol="bullmq") as queue:
        first, second = await queue.add({}), await queue.add({})
        cancelled = asyncio.create_task(first.finished())
        kept = asyncio.create_task(second.finished(timeout=20))
        with pytest.raises(TimeoutError):
            await first.finished(timeout=0.2)
        await asyncio.sleep(0.1)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        async with Worker(queue, handler):
            assert await kept == "done"
            assert await first.finished(timeout=20) == "done"


async def test_a_removed_job_ends_its_wait(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url, protocol="bullmq") as queue:
        job = await queue.add({}, delay=60_000)
        waiting = asyncio.create_task(job.finished(timeout=20))
        await asyncio.sleep(0.2)
        await job.remove()
        with pytest.raises(JobNotFound):
            await waiting


async def test_the_reader_stops_with_its_last_waiter_and_the_queue(
    redis_url: str, queue_name: str
) -> None:
    async def handler(job: Job[Any]) -> str:
        return "ok"

    queue: Queue[Any] = Queue(queue_name, redis_url, protocol="bullmq")
    async with Worker(queue, handler):
        job = await queue.add({})
        assert await job.finished(timeout=20) == "ok"
    before = await _clients(redis_url)
    await queue.close()
    # The reader (lingering after its last wait) and the queue's connections are gone.
    assert await _clients(redis_url) < before
