"""pause-5: global pause and resume (spec §3.12, Appendix A.7)."""

from __future__ import annotations

import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts


async def test_pause_and_resume(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events, now: int,
    token: str,
) -> None:
    await add("1")
    await add("2")
    await events.collect()
    await scripts.pause(True)
    assert await raw_redis.exists(keys.wait) == 0
    assert await raw_redis.lrange(keys.paused, 0, -1) == [b"2", b"1"]
    assert await raw_redis.get(keys.meta_paused) == b"1"
    assert await raw_redis.hgetall(keys.meta) == {b"paused": b"1"}
    assert await scripts.move_to_active(token=token, lock_duration=1000, now=now) is None
    await add("3")
    assert await raw_redis.lrange(keys.paused, 0, -1) == [b"3", b"2", b"1"]
    await events.collect()
    await scripts.pause(False)
    assert await raw_redis.exists(keys.paused, keys.meta_paused) == 0
    assert await raw_redis.hgetall(keys.meta) == {}
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"3", b"2", b"1"]
    assert await events.collect() == [(keys.channel("resumed"), "resumed")]


async def test_pause_publishes_even_when_empty(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events
) -> None:
    await scripts.pause(True)
    assert await events.collect() == [(keys.channel("paused"), "paused")]
    assert await raw_redis.exists(keys.paused) == 0
