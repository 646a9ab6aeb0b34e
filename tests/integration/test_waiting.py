"""``job.finished()``: one shared subscriber per queue, cancellation-safe, with timeouts.

Issue 28, reproduction 2: each waiter held a pub/sub connection of its own (100 waiters
exhausted redis-py 8's pool), ``finished()`` of a removed job waited for ever, and
``wait_until_finished(id)`` had no timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.integration.conftest import FAST

from pyqueue import BulkJob, JobFailedError, JobNotFound, Queue, Worker
from pyqueue.embedded import RedisServer


async def _clients(raw: aioredis.Redis) -> int:
    return len(await raw.client_list())


def _leftover_tasks(baseline: set[asyncio.Task[Any]]) -> list[str]:
    return sorted(t.get_name() for t in asyncio.all_tasks() - baseline if not t.done())


@pytest.fixture
async def own_server() -> AsyncIterator[tuple[str, aioredis.Redis]]:
    """A server of this test's own: CLIENT LIST then counts only this test's connections."""
    with RedisServer() as server:
        client = aioredis.Redis.from_url(server.url)
        try:
            yield server.url, client
        finally:
            await client.aclose()


async def test_a_thousand_waiters_share_one_subscriber(
    own_server: tuple[str, aioredis.Redis], queue_name: str
) -> None:
    redis_url, raw_redis = own_server
    rng = random.Random(28)
    async with Queue(queue_name, redis_url) as queue:
        jobs = await queue.add_bulk(BulkJob({"n": n}) for n in range(200))
        assert await queue.get_job(jobs[0].id) is not None  # the queue's own connections
        baseline_tasks = set(asyncio.all_tasks())
        before = await _clients(raw_redis)
        waiters = [asyncio.create_task(jobs[i % 200].finished(timeout=60)) for i in range(1000)]
        for _ in range(20):  # let every waiter register
            await asyncio.sleep(0.01)
        # The queue's own reads still get a connection (redis-py 8's pool ran out before).
        assert await queue.get_job(jobs[0].id) is not None
        during = await _clients(raw_redis)
        assert during <= before + 2, (before, during)
        cancelled = rng.sample(range(1000), 300)
        for i in cancelled:
            await asyncio.sleep(rng.random() / 1000)
            waiters[i].cancel()
        async with Worker(queue, lambda job: job.data["n"] * 2, options=FAST):
            outcomes = await asyncio.gather(*waiters, return_exceptions=True)
        for i, outcome in enumerate(outcomes):
            if i in cancelled:
                assert isinstance(outcome, asyncio.CancelledError), (i, outcome)
            else:
                assert outcome == (i % 200) * 2, (i, outcome)
        after = await _clients(raw_redis)
        assert after <= before + 2, (before, after)
        # Only the queue's shared reader and checker are left, and they go with the queue.
        assert _leftover_tasks(baseline_tasks) == [
            f"pyqueue-finished-checker-{queue_name}", f"pyqueue-finished-reader-{queue_name}"
        ]
    assert _leftover_tasks(baseline_tasks) == []
    for _ in range(200):  # the server notices closed sockets a moment later
        if await _clients(raw_redis) < before:
            break
        await asyncio.sleep(0.02)
    assert await _clients(raw_redis) < before


async def test_waiting_for_a_missing_job_raises_job_not_found(
    redis_url: str, queue_name: str
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        await job.remove()
        with pytest.raises(JobNotFound, match=job.id):
            await job.finished(timeout=10)
        with pytest.raises(JobNotFound):
            await queue.wait_until_finished("no-such-job", timeout=10)


async def test_a_job_removed_while_waited_for_raises_job_not_found(
    redis_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyqueue import _waiting

    monkeypatch.setattr(_waiting, "RECHECK_EVERY", 0.2)
    async with Queue(queue_name, redis_url) as queue, Queue(queue_name, redis_url) as other:
        local = await queue.add({})
        remote = await queue.add({})
        local_wait = asyncio.create_task(local.finished(timeout=30))
        remote_wait = asyncio.create_task(remote.finished(timeout=30))
        await asyncio.sleep(0.1)
        await local.remove()  # through the same queue: noticed at once
        removed = await other.get_job(remote.id)
        assert removed is not None
        await removed.remove()  # by another client: noticed by the periodic check
        with pytest.raises(JobNotFound):
            await local_wait
        with pytest.raises(JobNotFound):
            await remote_wait


async def test_every_wait_takes_a_timeout(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        with pytest.raises(TimeoutError):
            await queue.wait_until_finished(job.id, timeout=0.2)
        with pytest.raises(TimeoutError):
            await job.finished(timeout=timedelta(milliseconds=200))


async def test_a_finished_outcome_removed_with_the_job_still_arrives(
    redis_url: str, queue_name: str
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        done = await queue.add(3, remove_on_complete=True)
        failed = await queue.add(4, remove_on_fail=True, name="fail")

        def handler(job: Any) -> int:
            if job.name == "fail":
                raise RuntimeError("nope")
            return int(job.data) * 10

        waits = asyncio.gather(done.finished(timeout=10), failed.finished(timeout=10),
                               return_exceptions=True)
        async with Worker(queue, handler, options=FAST):
            value, error = await waits
        assert value == 30
        assert isinstance(error, JobFailedError)
        assert error.reason == "nope"


async def test_closing_the_queue_ends_its_waiters(redis_url: str, queue_name: str) -> None:
    from pyqueue import QueueClosedError

    queue = Queue(queue_name, redis_url)
    job = await queue.add({})
    waiter = asyncio.create_task(job.finished(timeout=30))
    await asyncio.sleep(0.1)
    await queue.close()
    with pytest.raises(QueueClosedError):
        await waiter


async def test_the_reader_stops_by_itself_when_a_cancellation_is_lost(
    redis_url: str, queue_name: str
) -> None:
    """redis-py 8.0-8.2 can lose the cancellation of a task reading a subscription: the
    shared reader must not depend on it, so it also stops on its own once closing."""
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        waiter = asyncio.create_task(job.finished(timeout=30))
        await asyncio.sleep(0.1)
        hub = queue._waiters
        assert hub is not None
        reader = next(t for t in hub._tasks if "reader" in t.get_name())
        hub._closing = True  # what close() sets before it cancels; no cancel() here
        done, _ = await asyncio.wait({reader}, timeout=10)
        assert done == {reader}
        assert not reader.cancelled()
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        hub._closing = False  # let close() do the rest as usual
