"""reprocessJob-6, retryJobs-5, isFinished-2, getCountsPerPriority-4,
isJobInList-1 (spec §3.21-§3.25)."""

from __future__ import annotations

import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts


async def make_failed(raw_redis: aioredis.Redis, keys: QueueKeys, add, job_id: str,
                      score: int, **kw: object) -> None:
    await add(job_id, **kw)
    await raw_redis.lrem(keys.wait, 0, job_id)
    await raw_redis.zrem(keys.priority, job_id)
    await raw_redis.zadd(keys.failed, {job_id: score})
    await raw_redis.hset(keys.job(job_id), mapping={
        "finishedOn": score, "processedOn": score, "failedReason": "boom", "attemptsMade": 1,
    })


async def test_reprocess_job(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    assert await scripts.reprocess_job("nope", lifo=False, token=token, now=now) == 0
    await make_failed(raw_redis, keys, add, "1", 10, priority=3)
    await add("w")
    await raw_redis.set(keys.lock("1"), "t")
    assert await scripts.reprocess_job("1", lifo=False, token=token, now=now) == -1
    await raw_redis.delete(keys.lock("1"))
    await events.collect()
    assert await scripts.reprocess_job("1", lifo=True, token=token, now=now) == 1
    # Priority is ignored: a plain push with the lifo command.
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"w", b"1"]
    job = await raw_redis.hgetall(keys.job("1"))
    assert b"finishedOn" not in job
    assert b"processedOn" not in job
    assert b"failedReason" not in job
    assert job[b"retriedOn"] == str(now).encode()
    assert job[b"attemptsMade"] == b"1"
    assert await events.collect() == [(keys.waiting_channel(token), "1")]
    await raw_redis.hset(keys.job("1"), "finishedOn", 5)
    assert await scripts.reprocess_job("1", lifo=False, token=token, now=now) == -2
    assert await raw_redis.hget(keys.job("1"), "finishedOn") is None


async def test_reprocess_into_paused(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await make_failed(raw_redis, keys, add, "1", 10)
    await raw_redis.set(keys.meta_paused, 1)
    assert await scripts.reprocess_job("1", lifo=False, token=token, now=now) == 1
    assert await raw_redis.lrange(keys.paused, 0, -1) == [b"1"]


async def test_retry_jobs(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events
) -> None:
    for i, job_id in enumerate(["a", "b", "c"]):
        await make_failed(raw_redis, keys, add, job_id, 10 + i)
    await events.collect()
    assert await scripts.retry_jobs(count=2) == 1
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"b", b"a"]
    assert await raw_redis.zrange(keys.failed, 0, -1) == [b"c"]
    job = await raw_redis.hgetall(keys.job("a"))
    assert b"finishedOn" not in job
    assert b"failedReason" not in job
    assert b"retriedOn" not in job
    await raw_redis.set(keys.meta_paused, 1)
    assert await scripts.retry_jobs(count=2) == 0
    assert await raw_redis.lrange(keys.paused, 0, -1) == [b"c"]
    assert await scripts.retry_jobs(count=2) == 0
    assert await events.collect() == []


async def test_is_finished(scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys) -> None:
    await raw_redis.zadd(keys.completed, {"c": 1})
    await raw_redis.zadd(keys.failed, {"f": 1})
    assert await scripts.is_finished("c") == 1
    assert await scripts.is_finished("f") == 2
    assert await scripts.is_finished("x") is None


async def test_counts_per_priority(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys
) -> None:
    await add("a")
    await add("b")
    await add("c", priority=1)
    await add("d", priority=3)
    await add("e", priority=3)
    assert await scripts.get_counts_per_priority([0, 1, 3, 7]) == [2, 1, 2, 0]
    await scripts.pause(True)
    assert await scripts.get_counts_per_priority([0, 3]) == [2, 2]
    await raw_redis.zadd(keys.priority, {f"stale{i}": 1 for i in range(10)})
    assert await scripts.get_counts_per_priority([0]) == [0]
    assert await scripts.get_counts_per_priority([]) == []


async def test_is_job_in_list(add, scripts: Scripts, keys: QueueKeys) -> None:
    await add("1")
    await add("2")
    assert await scripts.is_job_in_list(keys.wait, "2") is True
    assert await scripts.is_job_in_list(keys.wait, "3") is False
    assert await scripts.is_job_in_list(keys.active, "1") is False
