"""Bull 4.16's debounce in addJob-6 (ARGV[12..15]) and beside addRepeatableJob-7."""

from __future__ import annotations

import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.script_args import AddJobSpec
from pyqueue._protocol.bull.scripts import Scripts


def _spec(job_id: str = "", *, now: int, delay: int = 0) -> AddJobSpec:
    return AddJobSpec(job_id=job_id, name="n", data="{}", opts="{}", timestamp=now,
                      delay=delay, priority=0, lifo=False)


async def test_debounced_add_returns_holder_and_publishes(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events, token: str, now: int
) -> None:
    assert await scripts.add_job_reporting(
        _spec(now=now), token=token, debounce_id="d", ttl=None) == ("1", "created", None)
    job_id, outcome, fields = await scripts.add_job_reporting(
        _spec("custom", now=now), token=token, debounce_id="d", ttl=None)
    assert (job_id, outcome) == ("1", "debounced")
    assert fields is not None
    assert fields[b"deid"] == b"d"  # the holder's stored hash, read in the same script
    assert await raw_redis.get(keys.debounce("d")) == b"1"
    assert await raw_redis.pttl(keys.debounce("d")) == -1
    assert await raw_redis.hget(keys.job("1"), "deid") == b"d"
    assert not await raw_redis.exists(keys.job("custom"))
    assert await raw_redis.get(keys.id) == b"2"  # the counter moves anyway, as in Bull
    assert (keys.debounced_channel(token), "1") in await events.collect()


async def test_plain_adds_ignore_debounce_and_repeat_args_are_not_debounce(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    # addRepeatableJob's ARGV[13..14] (fire time, "chain"/"add") must not be read
    # as a debounce id and ttl.
    spec = AddJobSpec(job_id="repeat:abc:5000", name="n", data="{}", opts="{}",
                      timestamp=now, delay=10, priority=0, lifo=False)
    got = await scripts.add_repeatable_job(
        spec, token=token, repeat_key="n:::5000", millis=now + 10, chain=False
    )
    assert got == "repeat:abc:5000"
    assert await raw_redis.keys(f"{keys.base}de:*") == []
    assert await raw_redis.hget(keys.job("repeat:abc:5000"), "deid") is None
