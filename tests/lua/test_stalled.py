"""moveStalledJobsToWait-7 (spec §3.6, Appendix A.5)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts

FAIL_EVENT = '{{"jobId":"{}", "val": "job stalled more than maxStalledCount"}}'


async def check(scripts: Scripts, now: int, max_stalled: int = 1) -> tuple[list[str], list[str]]:
    return await scripts.move_stalled_jobs_to_wait(
        max_stalled_count=max_stalled, now=now, stalled_interval=30000
    )


async def stall(scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str,
                now: int) -> str:
    """Activate the next job and let its lock vanish, as if its worker died."""
    got = await scripts.move_to_active(token=token, lock_duration=30000, now=now)
    assert got is not None
    await raw_redis.delete(keys.lock(got[1]), keys.stalled_check)
    return got[1]


async def test_marks_then_recovers(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("1")
    await add("2")
    job_id = await stall(scripts, raw_redis, keys, token, now)
    assert await check(scripts, now) == ([], [])
    assert await raw_redis.smembers(keys.stalled) == {job_id.encode()}
    assert await raw_redis.get(keys.stalled_check) == str(now).encode()
    assert 0 < await raw_redis.pttl(keys.stalled_check) <= 30000
    await events.collect()
    # Throttled while stalled-check exists.
    assert await check(scripts, now) == ([], [])
    await raw_redis.delete(keys.stalled_check)
    assert await check(scripts, now) == ([], [job_id])
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"2", job_id.encode()]
    assert await raw_redis.hget(keys.job(job_id), "stalledCounter") == b"1"
    assert await raw_redis.llen(keys.active) == 0
    assert await events.collect() == [(keys.stalled_channel, job_id)]


async def test_locked_or_finished_suspects_are_skipped(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await add("1")
    got = await scripts.move_to_active(token=token, lock_duration=30000, now=now)
    assert got is not None
    await raw_redis.sadd(keys.stalled, "1", "gone")
    assert await check(scripts, now) == ([], [])
    assert await raw_redis.smembers(keys.stalled) == {b"1"}


async def test_recovers_into_paused(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await add("1")
    await stall(scripts, raw_redis, keys, token, now)
    await raw_redis.sadd(keys.stalled, "1")
    await raw_redis.set(keys.meta_paused, 1)
    assert await check(scripts, now) == ([], ["1"])
    assert await raw_redis.lrange(keys.paused, 0, -1) == [b"1"]


async def fail_one(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int,
    opts: dict[str, Any] | None = None, raw_opts: str | None = None, job_id: str = "1",
) -> tuple[list[str], list[str]]:
    await add(job_id, opts=opts)
    if raw_opts is not None:
        await raw_redis.hset(keys.job(job_id), "opts", raw_opts)
    elif opts is None:
        await raw_redis.hdel(keys.job(job_id), "opts")
    await stall(scripts, raw_redis, keys, token, now)
    await raw_redis.sadd(keys.stalled, job_id)
    return await check(scripts, now, max_stalled=0)


async def test_fails_with_exact_reason_and_event(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await events.collect()
    assert await fail_one(add, scripts, raw_redis, keys, token, now, opts={"attempts": 5}) == (
        ["1"], []
    )
    job = await raw_redis.hgetall(keys.job("1"))
    assert job[b"failedReason"] == b"job stalled more than allowable limit"
    assert job[b"finishedOn"] == str(now).encode()
    assert job[b"stalledCounter"] == b"1"
    assert await raw_redis.zscore(keys.failed, "1") == now
    published = [e for e in await events.collect() if e[0] == keys.channel("failed")]
    assert published == [(keys.channel("failed"), FAIL_EVENT.format("1"))]


@pytest.mark.parametrize(
    ("remove_on_fail", "survivors", "job_kept"),
    [
        (True, ["old1", "old2"], False),
        (False, ["old1", "old2", "1"], True),
        (2, ["old2", "1"], True),
        (0, [], False),
        ({"count": 1}, ["1"], True),
        ({"count": 0}, ["old1", "old2", "1"], True),
        ({"age": 1}, ["1"], True),
    ],
)
async def test_remove_on_fail_variants(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int,
    remove_on_fail: object, survivors: list[str], job_kept: bool,
) -> None:
    await raw_redis.zadd(keys.failed, {"old1": now - 5000, "old2": now - 4000})
    await raw_redis.hset(keys.job("old1"), "name", "x")
    await raw_redis.rpush(keys.logs("old1"), "l")
    await fail_one(add, scripts, raw_redis, keys, token, now,
                   opts={"removeOnFail": remove_on_fail})
    assert [m.decode() for m in await raw_redis.zrange(keys.failed, 0, -1)] == survivors
    assert await raw_redis.exists(keys.job("1")) == int(job_kept)
    assert await raw_redis.exists(keys.job("old1"), keys.logs("old1")) == (
        2 if "old1" in survivors else 0
    )


@pytest.mark.parametrize(
    ("opts", "raw_opts"),
    [
        (None, None),  # no opts field at all
        ({}, '{"removeOnFail":null}'),
        ({}, "not json"),
        ({}, "42"),
    ],
)
async def test_undecodable_opts_still_fail_the_job(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int,
    opts: dict[str, Any] | None, raw_opts: str | None,
) -> None:
    await raw_redis.zadd(keys.failed, {"old": now - 1})
    result = await fail_one(add, scripts, raw_redis, keys, token, now, opts=opts,
                            raw_opts=raw_opts)
    assert result == (["1"], [])
    assert await raw_redis.zrange(keys.failed, 0, -1) == [b"old", b"1"]
    assert await raw_redis.hget(keys.job("1"), "failedReason") == (
        b"job stalled more than allowable limit"
    )


async def test_many_suspects_one_run(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    for i in range(3):
        await add(str(i), opts={"removeOnFail": json.loads("true")})
    for _ in range(3):
        await stall(scripts, raw_redis, keys, token, now)
    await check(scripts, now)
    await raw_redis.delete(keys.stalled_check)
    failed, recovered = await check(scripts, now, max_stalled=0)
    assert sorted(failed) == ["0", "1", "2"]
    assert recovered == []
    assert await raw_redis.exists(keys.failed, keys.active, keys.stalled) == 0
