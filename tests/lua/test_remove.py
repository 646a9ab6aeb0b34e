"""removeJob-10, removeJobs-8, removeRepeatable-2, cleanJobsInSet-3,
obliterate-2 (spec §3.13-§3.15, §3.18, §3.19) and empty-8."""

from __future__ import annotations

import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts


async def test_remove_job_everywhere(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events, token: str
) -> None:
    await add("1", priority=2)
    await raw_redis.lpush(keys.active, "1")
    await raw_redis.zadd(keys.completed, {"1": 1})
    await raw_redis.rpush(keys.logs("1"), "x")
    limited = keys.key("limiter:limited")
    await raw_redis.sadd(limited, "1", "2")
    await raw_redis.hset(keys.limiter_index, mapping={"1": limited, "2": limited})
    await events.collect()
    assert await scripts.remove_job("1", token=token) is True
    assert await raw_redis.exists(
        keys.wait, keys.active, keys.completed, keys.priority, keys.job("1"), keys.logs("1")
    ) == 0
    assert await raw_redis.smembers(limited) == {b"2"}
    assert await raw_redis.hkeys(keys.limiter_index) == [b"2"]
    assert await events.collect() == []


async def test_remove_locked_job_refused(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await add("1")
    await scripts.move_to_active(token=token, lock_duration=30000, now=now)
    assert await scripts.remove_job("1", token=token) is False
    assert await raw_redis.exists(keys.job("1")) == 1


async def test_remove_jobs_by_pattern(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    for job_id in ("keep-1", "del-1", "del-2", "del-3"):
        await add(job_id)
    await raw_redis.rpush(keys.logs("del-1"), "x")
    await raw_redis.lrem(keys.wait, 0, "del-3")
    await raw_redis.lpush(keys.wait, "del-3")
    await raw_redis.set(keys.lock("del-3"), token)
    removed: list[str] = []
    cursor = "0"
    while True:
        cursor, batch = await scripts.remove_jobs("del-*", cursor)
        removed += batch
        if cursor == "0":
            break
    assert sorted(removed) == ["del-1", "del-2"]
    assert sorted(await raw_redis.lrange(keys.wait, 0, -1)) == [b"del-3", b"keep-1"]
    assert await raw_redis.exists(keys.job("del-1"), keys.logs("del-1")) == 0
    # Non-hash keys (the lock string) are ignored.
    assert await raw_redis.exists(keys.lock("del-3")) == 1


async def test_remove_repeatable(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys
) -> None:
    prefix = "repeat:08c3ade290fda9c08fdf79f21f126f41:"
    instance = f"{prefix}1795815814000"
    await raw_redis.zadd(keys.repeat, {"rep:::2000": 1795815814000, "other:::1": 5})
    await raw_redis.zadd(keys.delayed, {instance: 1795815814000 * 4096 + 1})
    await raw_redis.hset(keys.job(instance), "name", "rep")
    await scripts.remove_repeatable(id_prefix=prefix, repeat_key="rep:::2000")
    assert await raw_redis.zrange(keys.repeat, 0, -1) == [b"other:::1"]
    assert await raw_redis.exists(keys.delayed, keys.job(instance)) == 0
    # Unknown key: nothing happens.
    await scripts.remove_repeatable(id_prefix=prefix, repeat_key="nope")
    assert await raw_redis.zcard(keys.repeat) == 1


async def test_clean_zset_and_list(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, now: int
) -> None:
    for i, ts in enumerate([now - 3000, now - 2000, now - 1000], start=1):
        await raw_redis.hset(keys.job(f"c{i}"), mapping={"timestamp": 1, "finishedOn": ts})
        await raw_redis.zadd(keys.completed, {f"c{i}": ts})
    await raw_redis.rpush(keys.logs("c1"), "x")
    await raw_redis.set(keys.lock("c2"), "t")
    cleaned = await scripts.clean_jobs_in_set("completed", max_timestamp=now - 500, limit=0)
    assert cleaned == ["c1", "c3"]
    assert await raw_redis.zrange(keys.completed, 0, -1) == [b"c2"]
    assert await raw_redis.exists(keys.job("c1"), keys.logs("c1")) == 0

    for i in range(1, 6):
        await add(f"w{i}", timestamp=now - 10_000 + i)
    cleaned = await scripts.clean_jobs_in_set("wait", max_timestamp=now, limit=2)
    # The window starts at the tail (the next jobs to run).
    assert cleaned == ["w2", "w1"]
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"w5", b"w4", b"w3"]
    cleaned = await scripts.clean_jobs_in_set("wait", max_timestamp=now, limit=0)
    assert sorted(cleaned) == ["w3", "w4", "w5"]
    assert await raw_redis.exists(keys.wait) == 0


async def test_clean_list_window_slides_past_locked(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, now: int
) -> None:
    for i in range(1, 6):
        await add(f"w{i}", timestamp=now - 10_000)
    await raw_redis.set(keys.lock("w1"), "t")
    await raw_redis.set(keys.lock("w2"), "t")
    cleaned = await scripts.clean_jobs_in_set("wait", max_timestamp=now, limit=2)
    assert cleaned == ["w4", "w3"]
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"w5", b"w2", b"w1"]


async def test_clean_string_comparison_quirk(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys
) -> None:
    # "9" > "10" as strings: Bull compares timestamps lexicographically.
    await raw_redis.hset(keys.job("x"), "finishedOn", "9")
    await raw_redis.zadd(keys.failed, {"x": 9})
    assert await scripts.clean_jobs_in_set("failed", max_timestamp=10, limit=0) == []


async def test_obliterate(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await add("a")
    await add("b")
    await add("d", delay=100)
    assert await scripts.obliterate(count=1000, force=False) == -1
    await scripts.move_to_active(token=token, lock_duration=30000, now=now)
    await scripts.pause(True)
    assert await scripts.obliterate(count=1000, force=False) == -2
    await raw_redis.zadd(keys.completed, {"c": 1})
    await raw_redis.hset(keys.job("c"), "name", "x")
    await raw_redis.hset(keys.metrics("completed"), "count", 1)
    assert await scripts.obliterate(count=2, force=True) == 1
    while (code := await scripts.obliterate(count=2, force=True)) == 1:
        pass
    assert code == 0
    assert await raw_redis.keys(keys.pattern) == []


async def test_obliterate_leaves_wait_and_limiter(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys
) -> None:
    await raw_redis.set(keys.meta_paused, 1)
    await raw_redis.rpush(keys.wait, "stray")
    await raw_redis.set(keys.limiter, 1)
    assert await scripts.obliterate(count=1000, force=False) == 0
    assert sorted(await raw_redis.keys(keys.pattern)) == sorted(
        [keys.wait.encode(), keys.limiter.encode()]
    )


async def test_empty_in_one_step(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events, token: str,
    now: int,
) -> None:
    await add("act")
    await scripts.move_to_active(token=token, lock_duration=30000, now=now)
    await add("w", priority=2)
    await add("d", delay=60_000)
    await raw_redis.rpush(keys.logs("w"), "line")
    await raw_redis.zadd(keys.completed, {"c": 1})
    await raw_redis.hset(keys.job("c"), "name", "x")
    await scripts.pause(True)
    await add("p")
    limited = keys.key("limiter:g:limited")
    await raw_redis.sadd(limited, "d")
    await raw_redis.hset(keys.limiter_index, "d", limited)
    await events.collect()
    assert await scripts.empty() == 3
    assert await raw_redis.exists(
        keys.wait, keys.paused, keys.delayed, keys.priority, keys.meta_paused, limited,
        keys.limiter_index, keys.job("w"), keys.logs("w"), keys.job("d"), keys.job("p"),
    ) == 0
    # Active and finished jobs are not empty()'s business.
    assert await raw_redis.lrange(keys.active, 0, -1) == [b"act"]
    assert await raw_redis.exists(keys.job("act"), keys.job("c"), keys.lock("act")) == 3
    assert await events.collect() == []
    assert await scripts.empty() == 0
