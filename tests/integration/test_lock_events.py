"""Lock events: Bull's ``lock-extension-failed(job, err)`` on a Redis error while
extending, and pyqueue's own ``lock-lost(job)`` when the renewer finds the lock gone."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from redis.exceptions import RedisError


async def test_lock_lost_is_its_own_event_with_the_job(
    make_queue, make_worker, fast, raw_redis, queue_name
):
    queue = make_queue()
    job = await queue.add({})
    release = asyncio.Event()
    lost: list[Any] = []
    extension_failed: list[tuple[Any, ...]] = []

    async def handler(j):
        await raw_redis.delete(f"bull:{queue_name}:{j.id}:lock")
        await release.wait()

    worker = await make_worker(handler, options=replace(fast, stalled_interval=0), start=False)
    worker.on("lock-lost", lost.append)
    worker.on("lock-extension-failed", lambda *args: extension_failed.append(args))
    await worker.start()
    for _ in range(300):  # the renewer runs every lock_duration / 2
        if lost:
            break
        await asyncio.sleep(0.01)
    release.set()
    assert [j.id for j in lost] == [job.id]
    assert lost[0].name == job.name
    assert extension_failed == []


async def test_lock_extension_failed_on_a_redis_error_with_job_and_error(
    make_queue, make_worker, fast, raw_redis, queue_name
):
    queue = make_queue()
    job = await queue.add({})
    other = await queue.add({})
    lock_key = f"bull:{queue_name}:{job.id}:lock"
    release = asyncio.Event()
    failed: list[tuple[Any, BaseException]] = []
    lost: list[Any] = []
    tokens: list[str] = []

    async def handler(j):
        if j.id == job.id:
            tokens.append(j.lock_token)
            # A lock key of the wrong type: extendLock gets an error reply.
            await raw_redis.delete(lock_key)
            await raw_redis.hset(lock_key, "not", "a lock")
            await release.wait()
        return "kept"

    worker = await make_worker(
        handler, options=replace(fast, stalled_interval=0, concurrency=2), start=False
    )
    worker.on("lock-extension-failed", lambda j, err: failed.append((j, err)))
    worker.on("lock-lost", lost.append)
    await worker.start()
    assert await other.finished(timeout=10) == "kept"
    for _ in range(300):  # the renewer runs every lock_duration / 2
        if failed:
            break
        await asyncio.sleep(0.01)
    assert failed, "no lock-extension-failed for the error reply"
    assert {j.id for j, _ in failed} == {job.id}
    assert isinstance(failed[0][1], RedisError)
    assert "WRONGTYPE" in str(failed[0][1])
    # Redis answers again and the lock is ours: renewal went on, the result is saved.
    await raw_redis.delete(lock_key)
    await raw_redis.set(lock_key, tokens[0], px=5000)
    release.set()
    assert await job.finished(timeout=10) == "kept"
    assert lost == []
