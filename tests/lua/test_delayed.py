"""updateDelaySet-6 and promote-5 (spec §3.10, §3.11)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue.errors import JobStateError


async def test_update_delay_set_promotes_due_jobs(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, other_token: str, now: int,
) -> None:
    await add("w")
    await add("a", delay=100)
    await add("p", delay=200, priority=1)
    await add("l", delay=300, lifo=True)
    await add("later", delay=10_000)
    await raw_redis.lpush(keys.active, "a")  # defensive LREM from active
    await events.collect()
    # Due means score <= now*4096: the tie-breaker bits need one more ms.
    next_score = await scripts.update_delay_set(now=now + 301, token=other_token)
    assert next_score == (now + 10_000) * 4096 + 5
    # lifo is ignored on promotion; priority is honoured.
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"l", b"a", b"w", b"p"]
    assert await raw_redis.llen(keys.active) == 0
    for job_id in ("a", "p", "l"):
        assert await raw_redis.hget(keys.job(job_id), "delay") == b"0"
    assert await raw_redis.hget(keys.job("later"), "delay") == b"10000"
    assert await raw_redis.zrange(keys.delayed, 0, -1) == [b"later"]
    published = await events.collect()
    assert published[:3] == [(keys.waiting_channel(other_token), i) for i in ("a", "p", "l")]
    assert published[3][0] == keys.channel("delayed")
    assert float(published[3][1]) == pytest.approx(next_score / 4096)


async def test_update_delay_set_empty_and_paused(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    assert await scripts.update_delay_set(now=now, token=token) is None
    await add("a", delay=1)
    await raw_redis.set(keys.meta_paused, 1)
    assert await scripts.update_delay_set(now=now + 2, token=token) is None
    assert await raw_redis.lrange(keys.paused, 0, -1) == [b"a"]
    assert [c for c, _ in await events.collect()][-1] == keys.waiting_channel(token)


async def test_promote(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("w", priority=1)
    await add("d", delay=5000, priority=2)
    await events.collect()
    await scripts.promote("d", token=token)
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"d", b"w"]
    assert await raw_redis.hget(keys.job("d"), "delay") == b"0"
    assert await raw_redis.zcard(keys.delayed) == 0
    assert await events.collect() == [(keys.waiting_channel(token), "d")]
    with pytest.raises(JobStateError, match="Job d is not in a delayed state"):
        await scripts.promote("d", token=token)
