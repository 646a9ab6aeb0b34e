"""moveToDelayed-4 and retryJob-7 (spec §3.4, §3.5), including the optional
failed-attempt ARGV."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.script_args import delayed_score
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue.errors import JobNotFound, JobStateError, LockMismatch


async def start(scripts: Scripts, token: str, now: int) -> str:
    got = await scripts.move_to_active(token=token, lock_duration=30000, now=now)
    assert got is not None
    return got[1]


async def test_move_to_delayed(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    job_id = await add()
    await start(scripts, token, now)
    await raw_redis.sadd(keys.stalled, job_id)
    await events.collect()
    score = delayed_score(now + 300.5, job_id)
    assert score == int((now + 300.5) * 4096) + 1
    await scripts.move_to_delayed(
        job_id, token=token, score=score, attempts_made=1, stacktrace='["Error: x"]',
        failed_reason="x",
    )
    assert await raw_redis.zscore(keys.delayed, job_id) == score
    assert await raw_redis.exists(keys.active, keys.lock(job_id)) == 0
    assert await raw_redis.sismember(keys.stalled, job_id) == 0
    job = await raw_redis.hgetall(keys.job(job_id))
    assert job[b"attemptsMade"] == b"1"
    assert job[b"stacktrace"] == b'["Error: x"]'
    assert job[b"failedReason"] == b"x"
    assert job[b"delay"] == b"0"
    [(channel, due)] = await events.collect()
    assert channel == keys.channel("delayed")
    assert float(due) == pytest.approx(score / 4096)


async def test_move_to_delayed_without_attempt_fields(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    job_id = await add()
    await start(scripts, token, now)
    await scripts.move_to_delayed(job_id, token=token, score=delayed_score(now, job_id))
    job = await raw_redis.hgetall(keys.job(job_id))
    assert b"attemptsMade" not in job
    assert b"failedReason" not in job


async def test_move_to_delayed_errors_write_nothing(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys,
    token: str, other_token: str, now: int,
) -> None:
    with pytest.raises(JobNotFound, match="Missing key for job 9 delayed"):
        await scripts.move_to_delayed("9", token=token, score=1)
    job_id = await add()
    with pytest.raises(LockMismatch, match="Missing lock"):
        await scripts.move_to_delayed(job_id, token=token, score=1, attempts_made=1)
    await start(scripts, other_token, now)
    with pytest.raises(LockMismatch, match="Cmd delayed from active"):
        await scripts.move_to_delayed(job_id, token=token, score=1, attempts_made=1)
    await raw_redis.lrem(keys.active, 0, job_id)
    with pytest.raises(JobStateError, match=r"not in the active state\. delayed"):
        await scripts.move_to_delayed(job_id, token="0", score=1, attempts_made=1)
    assert await raw_redis.hget(keys.job(job_id), "attemptsMade") is None
    assert await raw_redis.zcard(keys.delayed) == 0


def test_delayed_score_rules() -> None:
    assert delayed_score(1000, "5") == 1000 * 4096 + 5
    assert delayed_score(1000, "4097") == 1000 * 4096 + 1
    assert delayed_score(1000, "custom") == 1000 * 4096
    assert delayed_score(0, "5") == 0
    assert delayed_score(-3, "5") == 0


async def test_retry_job_fifo_lifo_priority(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("a")
    await add("b")
    await add("p", priority=2)
    assert await start(scripts, token, now) == "p"
    await scripts.retry_job("p", token=token, lifo=False, attempts_made=1, stacktrace="[]",
                            failed_reason="again")
    # Prioritised jobs are reinserted by priority, not pushed.
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"b", b"a", b"p"]
    assert await raw_redis.zscore(keys.priority, "p") == 2
    assert await raw_redis.hget(keys.job("p"), "failedReason") == b"again"
    assert await start(scripts, token, now) == "p"
    assert await start(scripts, token, now) == "a"
    await scripts.retry_job("a", token=token, lifo=True)
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"b", b"a"]
    assert await start(scripts, token, now) == "a"
    await scripts.retry_job("a", token=token, lifo=False)
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"a", b"b"]
    assert await raw_redis.exists(keys.lock("a")) == 0
    published = await events.collect()
    # retryJob publishes nothing: only the three adds announced waiting jobs.
    assert [d for c, d in published if c == keys.waiting_channel(token)] == ["a", "b", "p"]
    assert not [c for c, _ in published if c == keys.channel("delayed")]


async def test_retry_job_paused_and_errors(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys,
    token: str, other_token: str, now: int,
) -> None:
    job_id = await add()
    await start(scripts, token, now)
    with pytest.raises(LockMismatch, match="Cmd retry from active"):
        await scripts.retry_job(job_id, token=other_token, lifo=False, attempts_made=3)
    assert await raw_redis.hget(keys.job(job_id), "attemptsMade") is None
    await raw_redis.set(keys.meta_paused, 1)
    await scripts.retry_job(job_id, token=token, lifo=False)
    assert await raw_redis.lrange(keys.paused, 0, -1) == [job_id.encode()]
    with pytest.raises(LockMismatch, match="Missing lock"):
        await scripts.retry_job(job_id, token=token, lifo=False)
    with pytest.raises(JobStateError, match="retry"):
        await scripts.retry_job(job_id, token="0", lifo=False)
    with pytest.raises(JobNotFound):
        await scripts.retry_job("zz", token="0", lifo=False)
