"""moveToActive-8 and the rate limiter (spec §3.2, §6.4, Appendix A.6)."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.lua import registered
from pyqueue._protocol.bull.script_args import move_to_active_args
from pyqueue._protocol.bull.scripts import Scripts


async def raw_move_to_active(raw_redis: aioredis.Redis, keys: QueueKeys, **kw: Any) -> Any:
    """The script's reply as Redis sent it, before Scripts turns it into a dict."""
    script_keys, argv = move_to_active_args(keys, **kw)
    return await registered(raw_redis)["moveToActive"](keys=script_keys, args=argv)


def fields_of(flat: list[bytes]) -> list[bytes]:
    return flat[::2]


async def test_pops_locks_and_stamps(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, other_token: str, now: int,
) -> None:
    await add("1", data='{"a":1}')
    await add("2", priority=4)
    await events.collect()
    got = await scripts.move_to_active(token=other_token, lock_duration=30000, now=now + 7)
    assert got is not None
    job, job_id = got
    assert job_id == "2"
    assert job[b"data"] == b"{}"
    assert job[b"processedOn"] == str(now + 7).encode()
    assert await raw_redis.get(keys.lock("2")) == other_token.encode()
    assert 29000 < await raw_redis.pttl(keys.lock("2")) <= 30000
    assert await raw_redis.zcard(keys.priority) == 0
    assert await raw_redis.lrange(keys.active, 0, -1) == [b"2"]
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"1"]
    assert await events.collect() == [(keys.active_channel(other_token), "2")]


async def test_drained_when_empty(
    scripts: Scripts, keys: QueueKeys, events, token: str, now: int
) -> None:
    assert await scripts.move_to_active(token=token, lock_duration=1000, now=now) is None
    assert await events.collect() == [(keys.channel("drained"), "")]


async def test_explicit_id_after_brpoplpush(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await add("1")
    await raw_redis.sadd(keys.stalled, "1")
    assert await raw_redis.rpoplpush(keys.wait, keys.active) == b"1"
    got = await scripts.move_to_active(token=token, lock_duration=1000, now=now, job_id="1")
    assert got is not None
    assert got[1] == "1"
    assert await raw_redis.sismember(keys.stalled, "1") == 0
    assert await raw_redis.get(keys.lock("1")) == token.encode()


async def test_missing_hash_is_skipped_without_lock(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("good")
    await raw_redis.rpush(keys.wait, "ghost1", "ghost2")
    await raw_redis.zadd(keys.priority, {"ghost2": 1})
    await events.collect()
    got = await scripts.move_to_active(token=token, lock_duration=1000, now=now)
    assert got is not None
    assert got[1] == "good"
    assert await raw_redis.lrange(keys.active, 0, -1) == [b"good"]
    assert await raw_redis.exists(keys.lock("ghost1"), keys.lock("ghost2")) == 0
    assert await raw_redis.zcard(keys.priority) == 0
    assert await raw_redis.exists(keys.job("ghost1")) == 0
    assert await events.collect() == [(keys.active_channel(token), "good")]


async def test_missing_hash_with_explicit_id(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events, token: str, now: int
) -> None:
    await raw_redis.lpush(keys.active, "ghost")
    await raw_redis.zadd(keys.priority, {"ghost": 2})
    got = await scripts.move_to_active(token=token, lock_duration=1000, now=now, job_id="ghost")
    assert got is None
    assert await raw_redis.llen(keys.active) == 0
    assert await raw_redis.exists(keys.lock("ghost"), keys.priority, keys.job("ghost")) == 0
    assert await events.collect() == []


@pytest.mark.parametrize("earlier", [None, b"1"], ids=["first-start", "restarted"])
async def test_reply_is_the_hash_with_the_new_processed_on(
    add, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int,
    earlier: bytes | None,
) -> None:
    # A job back from a stall or a retry still carries its old processedOn.
    await add("1", data='{"a":1}')
    if earlier is not None:
        await raw_redis.hset(keys.job("1"), "processedOn", earlier)
    flat, job_id = await raw_move_to_active(
        raw_redis, keys, token=token, lock_duration=30000, now=now + 3
    )
    assert job_id == b"1"
    assert fields_of(flat).count(b"processedOn") == 1
    pairs = iter(flat)
    reply = dict(zip(pairs, pairs, strict=True))
    assert reply[b"processedOn"] == str(now + 3).encode()
    # What Bull's HSET-then-HGETALL would have returned.
    assert reply == await raw_redis.hgetall(keys.job("1"))


async def test_unprioritised_job_leaves_the_priority_index_alone(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("p", priority=3)
    await add("n", lifo=True)  # right of p, so it is popped first
    await events.collect()
    got = await scripts.move_to_active(token=token, lock_duration=30000, now=now)
    assert got is not None
    job, job_id = got
    assert job_id == "n"
    assert job[b"priority"] == b"0"
    assert job[b"processedOn"] == str(now).encode()
    assert await raw_redis.zrange(keys.priority, 0, -1, withscores=True) == [(b"p", 3.0)]
    assert await raw_redis.get(keys.lock("n")) == token.encode()
    assert 29000 < await raw_redis.pttl(keys.lock("n")) <= 30000
    assert await events.collect() == [(keys.active_channel(token), "n")]



async def test_only_missing_hashes_then_drained(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events, token: str, now: int
) -> None:
    await raw_redis.rpush(keys.wait, "g1", "g2")
    assert await scripts.move_to_active(token=token, lock_duration=1000, now=now) is None
    assert await raw_redis.exists(keys.wait, keys.active) == 0
    assert await events.collect() == [(keys.channel("drained"), "")]


async def test_rate_limiter_snapshot(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    for i in range(1, 6):
        await add(str(i))
    await events.collect()
    started = []
    waits = []
    for _ in range(5):
        got = await scripts.move_to_active(
            token=token, lock_duration=30000, now=now, limiter_max=2, limiter_duration=1000
        )
        if isinstance(got, tuple):
            started.append(got[1])
        else:
            # Limited: the reply is the ms until the job may start (its delay, rounded up).
            assert isinstance(got, int)
            waits.append(got)
    assert started == ["1", "2"]
    assert len(waits) == 3
    assert await raw_redis.get(keys.limiter) == b"2"
    pttl = await raw_redis.pttl(keys.limiter)
    assert 0 < pttl <= 1000
    limited_key = keys.key("limiter:limited")
    assert await raw_redis.smembers(limited_key) == {b"3", b"4", b"5"}
    assert await raw_redis.hgetall(keys.limiter_index) == {
        b"3": limited_key.encode(), b"4": limited_key.encode(), b"5": limited_key.encode()
    }
    assert await raw_redis.lrange(keys.active, 0, -1) == [b"2", b"1"]
    scores = dict(await raw_redis.zrange(keys.delayed, 0, -1, withscores=True))
    # Job 3 waits for the window (its PTTL then); 4 and 5 queue behind the parked
    # ones. Each reply is that job's delay, so the scores are checked exactly
    # (within the rounding up), not against a PTTL read later.
    # Later calls read a PTTL no larger (+1 for the rounding), plus 550 ms per
    # job parked before them (duration * 1.1 / max).
    assert 0 < waits[0] <= 1000
    assert 0 < waits[1] - 550 <= waits[0] + 1
    assert 0 < waits[2] - 1100 <= waits[1] - 550 + 1
    for job_id, wait in zip((b"3", b"4", b"5"), waits, strict=True):
        assert 0 <= (now + wait) * 4096 + 2 - scores[job_id] < 4096, job_id
    due3 = now + waits[0]
    for score in scores.values():
        assert int(score) % 4096 == 2
    published = await events.collect()
    assert [c for c, _ in published] == (
        [keys.active_channel(token)] * 2 + [keys.channel("delayed")] * 3
    )
    assert abs(float(published[2][1]) - due3) <= 5
    for job_id in ("3", "4", "5"):
        assert await raw_redis.exists(keys.lock(job_id)) == 0
        assert await raw_redis.hget(keys.job(job_id), "processedOn") is None


async def test_limited_job_returning_starts_fresh(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await add("1")
    limited_key = keys.key("limiter:limited")
    await raw_redis.sadd(limited_key, "1")
    await raw_redis.hset(keys.limiter_index, "1", limited_key)
    got = await scripts.move_to_active(
        token=token, lock_duration=30000, now=now, limiter_max=2, limiter_duration=1000
    )
    assert got is not None
    assert await raw_redis.exists(limited_key) == 0
    assert await raw_redis.hlen(keys.limiter_index) == 0
    assert await raw_redis.get(keys.limiter) == b"1"


async def test_bounce_back_returns_job_to_wait(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await add("1")
    await add("2")
    await add("3")
    results = [
        await scripts.move_to_active(
            token=token, lock_duration=30000, now=now, limiter_max=1, limiter_duration=1000,
            bounce_back=True,
        )
        for _ in range(2)
    ]
    # The first call started job 1; the second was limited and put job 2 back on
    # wait's left end (Bull would lose it).
    assert isinstance(results[0], tuple)
    assert results[0][1] == "1"
    # Limited: the ms left in the window, so the worker can wait it out.
    assert isinstance(results[1], int)
    assert 0 < results[1] <= 1000
    assert await raw_redis.lrange(keys.active, 0, -1) == [b"1"]
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"2", b"3"]
    assert await raw_redis.zcard(keys.delayed) == 0
    assert await raw_redis.exists(keys.key("limiter:limited")) == 0


async def test_group_limiter_uses_id_suffix(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await add("a:g1")
    await add("b:g1")
    await add("c:g2")
    results = [
        await scripts.move_to_active(
            token=token, lock_duration=30000, now=now, limiter_max=1, limiter_duration=1000,
            group_key=True,
        )
        for _ in range(3)
    ]
    assert [r[1] if isinstance(r, tuple) else r for r in results][::2] == ["a:g1", "c:g2"]
    assert isinstance(results[1], int)
    assert 0 < results[1] <= 1000
    assert await raw_redis.get(keys.limiter_group("g1")) == b"1"
    assert await raw_redis.get(keys.limiter_group("g2")) == b"1"
    group_limited = keys.key("limiter:g1:limited")
    assert await raw_redis.smembers(group_limited) == {b"b:g1"}
    assert await raw_redis.hget(keys.limiter_index, "b:g1") == group_limited.encode()


async def test_job_without_a_priority_field_still_leaves_the_priority_index(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    # No add writes such a hash; when one is there anyway, only a priority that
    # reads as 0 proves the job never entered the index.
    await add("1", priority=2)
    await raw_redis.hdel(keys.job("1"), "priority")
    got = await scripts.move_to_active(token=token, lock_duration=30000, now=now)
    assert got is not None
    assert got[1] == "1"
    assert await raw_redis.exists(keys.priority) == 0


@pytest.mark.parametrize(("priority", "expected"), [(0, 5), (7, 6)])
async def test_commands_per_start(
    add, scripts: Scripts, command_counter, token: str, now: int, priority: int, expected: int,
) -> None:
    await add("1", priority=priority)
    await command_counter.start()
    got = await scripts.move_to_active(token=token, lock_duration=30000, now=now)
    assert got is not None
    ran = await command_counter.delta()
    want = {"rpoplpush": 1, "hgetall": 1, "set": 1, "publish": 1, "hset": 1}
    if priority:
        want["zrem"] = 1
    assert ran == want
    assert sum(ran.values()) == expected
