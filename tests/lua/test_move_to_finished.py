"""moveToFinished-9: completion, final failure, retention, metrics, fetch-next
(spec §3.3, §3.3.2, §6.5)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import redis.asyncio as aioredis

from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.lua import registered
from pyqueue._protocol.bull.script_args import move_to_finished_args
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue.errors import JobNotFound, JobStateError, LockMismatch

LOCK = 30000


async def start(scripts: Scripts, token: str, now: int) -> str:
    got = await scripts.move_to_active(token=token, lock_duration=LOCK, now=now)
    assert got is not None
    return got[1]


async def complete(
    scripts: Scripts, job_id: str, token: str, finished_on: int, *, keep_count: int = -1,
    keep_age: int | None = None, fetch_next: bool = False, metrics: int | None = None,
    value: str = '"ok"', check_debounce: bool = True,
) -> tuple[dict[bytes, bytes], str] | None:
    return await scripts.move_to_completed(
        job_id, token=token, finished_on=finished_on, return_value=value,
        keep_count=keep_count, keep_age=keep_age,
        event_payload=json.dumps({"jobId": job_id, "val": value}),
        fetch_next=fetch_next, lock_duration=LOCK, metrics_max_points=metrics,
        check_debounce=check_debounce,
    )


async def test_complete_writes_and_publishes(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("1")
    await start(scripts, token, now)
    await raw_redis.sadd(keys.stalled, "1")
    await events.collect()
    assert await complete(scripts, "1", token, now + 5) is None
    job = await raw_redis.hgetall(keys.job("1"))
    assert job[b"returnvalue"] == b'"ok"'
    assert job[b"finishedOn"] == str(now + 5).encode()
    assert await raw_redis.zscore(keys.completed, "1") == now + 5
    assert await raw_redis.exists(keys.lock("1"), keys.active) == 0
    assert await raw_redis.sismember(keys.stalled, "1") == 0
    assert await events.collect() == [
        (keys.channel("completed"), json.dumps({"jobId": "1", "val": '"ok"'}))
    ]


async def test_error_codes(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys,
    token: str, other_token: str, now: int,
) -> None:
    with pytest.raises(JobNotFound, match="Missing key for job nope finished"):
        await complete(scripts, "nope", token, now)
    await add("1")
    with pytest.raises(LockMismatch, match="Missing lock for job 1 finished") as missing:
        await complete(scripts, "1", token, now)
    assert missing.value.code == -2
    await start(scripts, token, now)
    with pytest.raises(LockMismatch, match="Lock mismatch for job 1") as mismatch:
        await complete(scripts, "1", other_token, now)
    assert mismatch.value.code == -6
    assert await raw_redis.get(keys.lock("1")) == token.encode()
    # Token "0" ignores the lock; a job not in active is -3.
    await raw_redis.lrem(keys.active, 0, "1")
    with pytest.raises(JobStateError, match=r"Job 1 is not in the active state\. finished"):
        await complete(scripts, "1", "0", now)
    assert await raw_redis.zcard(keys.completed) == 0


async def test_ignore_lock_token_zero(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await add("1")
    await start(scripts, token, now)
    assert await complete(scripts, "1", "0", now) is None
    assert await raw_redis.zscore(keys.completed, "1") == now
    # The foreign lock is left alone.
    assert await raw_redis.get(keys.lock("1")) == token.encode()


async def finish_all(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int,
    n: int,
    **keep: int | None,
) -> None:
    for i in range(1, n + 1):
        await add(str(i))
        await start(scripts, token, now)
        await raw_redis.rpush(keys.logs(str(i)), "line")
        await complete(scripts, str(i), token, now + i * 1000, **keep)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("keep", "survivors"),
    [
        ({"keep_count": -1}, ["1", "2", "3", "4"]),
        ({"keep_count": 0}, []),
        ({"keep_count": 2}, ["3", "4"]),
        # age is in seconds and inclusive: score <= finishedOn - age*1000 goes.
        ({"keep_count": -1, "keep_age": 3}, ["2", "3", "4"]),
        ({"keep_count": -1, "keep_age": 2}, ["3", "4"]),
        ({"keep_count": 2, "keep_age": 3}, ["3", "4"]),
        ({"keep_count": 1, "keep_age": 60}, ["4"]),
    ],
)
async def test_retention(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int,
    keep: dict[str, int | None], survivors: list[str],
) -> None:
    await finish_all(add, scripts, raw_redis, keys, token, now, 4, **keep)
    members = [m.decode() for m in await raw_redis.zrange(keys.completed, 0, -1)]
    assert members == survivors
    for i in range(1, 5):
        kept = str(i) in survivors
        assert await raw_redis.exists(keys.job(str(i))) == int(kept)
        assert await raw_redis.exists(keys.logs(str(i))) == int(kept)


async def test_removed_job_still_publishes(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("1")
    await start(scripts, token, now)
    await events.collect()
    await complete(scripts, "1", token, now, keep_count=0)
    assert await raw_redis.exists(keys.job("1"), keys.completed) == 0
    assert [c for c, _ in await events.collect()] == [keys.channel("completed")]


async def test_retention_trims_whole_set(
    scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, add, token: str, now: int
) -> None:
    await raw_redis.zadd(keys.completed, {"old1": 1, "old2": 2})
    await raw_redis.hset(keys.job("old1"), "name", "x")
    await add("1")
    await start(scripts, token, now)
    await complete(scripts, "1", token, now, keep_count=1)
    assert await raw_redis.zrange(keys.completed, 0, -1) == [b"1"]
    assert await raw_redis.exists(keys.job("old1")) == 0


async def test_move_to_failed_writes_attempt(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("5")
    await start(scripts, token, now)
    await events.collect()
    await scripts.move_to_failed(
        "5", token=token, finished_on=now + 1, failed_reason="boom 5", attempts_made=1,
        stacktrace='["Error: boom 5"]', keep_count=-1, keep_age=None,
        event_payload='{"jobId":"5","val":"boom 5"}',
    )
    job = await raw_redis.hgetall(keys.job("5"))
    assert job[b"failedReason"] == b"boom 5"
    assert job[b"attemptsMade"] == b"1"
    assert job[b"stacktrace"] == b'["Error: boom 5"]'
    assert job[b"finishedOn"] == str(now + 1).encode()
    assert await raw_redis.zscore(keys.failed, "5") == now + 1
    assert await events.collect() == [(keys.channel("failed"), '{"jobId":"5","val":"boom 5"}')]


async def test_move_to_failed_without_lock_writes_nothing(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys,
    token: str, other_token: str, now: int,
) -> None:
    await add("5")
    await start(scripts, other_token, now)
    with pytest.raises(LockMismatch, match="Cmd failed from active"):
        await scripts.move_to_failed(
            "5", token=token, finished_on=now, failed_reason="boom", attempts_made=1,
            stacktrace="[]", keep_count=-1, keep_age=None, event_payload="{}",
        )
    job = await raw_redis.hgetall(keys.job("5"))
    assert b"attemptsMade" not in job
    assert b"failedReason" not in job


async def test_fetch_next(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("1")
    await add("2", priority=1)
    await add("3")
    first = await start(scripts, token, now)
    assert first == "2"
    await events.collect()
    got = await complete(scripts, "2", token, now + 50, fetch_next=True)
    assert got is not None
    job, next_id = got
    assert next_id == "1"
    assert job[b"processedOn"] == str(now + 50).encode()
    assert await raw_redis.get(keys.lock("1")) == token.encode()
    assert await raw_redis.lrange(keys.active, 0, -1) == [b"1"]
    assert [c for c, _ in await events.collect()] == [
        keys.channel("completed"), keys.active_channel(token)
    ]


async def test_fetch_next_empty_and_missing_hash(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("1")
    await start(scripts, token, now)
    await raw_redis.lpush(keys.wait, "ghost")
    await raw_redis.zadd(keys.priority, {"ghost": 3})
    await events.collect()
    assert await complete(scripts, "1", token, now, fetch_next=True) is None
    assert await raw_redis.exists(
        keys.active, keys.lock("ghost"), keys.wait, keys.priority, keys.job("ghost")
    ) == 0
    assert [c for c, _ in await events.collect()] == [keys.channel("completed")]
    await add("2")
    await start(scripts, token, now)
    assert await complete(scripts, "2", token, now, fetch_next=True) is None


async def test_fetch_next_prioritised_leaves_the_priority_index(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, events,
    token: str, now: int,
) -> None:
    await add("1")
    await start(scripts, token, now)
    await add("2", priority=2)
    await add("3", priority=5)
    await events.collect()
    got = await complete(scripts, "1", token, now + 9, fetch_next=True)
    assert got is not None
    job, next_id = got
    assert next_id == "2"
    assert job[b"priority"] == b"2"
    assert job[b"processedOn"] == str(now + 9).encode()
    assert await raw_redis.zrange(keys.priority, 0, -1, withscores=True) == [(b"3", 5.0)]
    assert await raw_redis.get(keys.lock("2")) == token.encode()
    assert LOCK - 1000 < await raw_redis.pttl(keys.lock("2")) <= LOCK
    assert await events.collect() == [
        (keys.channel("completed"), json.dumps({"jobId": "1", "val": '"ok"'})),
        (keys.active_channel(token), "2"),
    ]


async def test_fetch_next_unprioritised_leaves_the_priority_index_alone(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await add("1")
    await start(scripts, token, now)
    await add("p", priority=4)
    await add("n", lifo=True)  # right of p, so it is popped first
    got = await complete(scripts, "1", token, now + 9, fetch_next=True)
    assert got is not None
    assert got[1] == "n"
    assert await raw_redis.zrange(keys.priority, 0, -1, withscores=True) == [(b"p", 4.0)]
    assert await raw_redis.get(keys.lock("n")) == token.encode()
    assert LOCK - 1000 < await raw_redis.pttl(keys.lock("n")) <= LOCK
    assert await raw_redis.lrange(keys.active, 0, -1) == [b"n"]


@pytest.mark.parametrize("earlier", [None, b"1"], ids=["first-start", "restarted"])
async def test_fetch_next_reply_is_the_hash_with_the_new_processed_on(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int,
    earlier: bytes | None,
) -> None:
    await add("1")
    await start(scripts, token, now)
    await add("2", data='{"b":2}')
    if earlier is not None:  # back from a stall or a retry
        await raw_redis.hset(keys.job("2"), "processedOn", earlier)
    script_keys, argv = move_to_finished_args(
        keys, "1", kind="completed", token=token, finished_on=now + 4, value='"ok"',
        keep_count=-1, keep_age=None, event_payload="{}", fetch_next=True, lock_duration=LOCK,
    )
    raw: Any = await registered(raw_redis)["moveToFinished"](keys=script_keys, args=argv)
    flat, next_id = raw
    assert next_id == b"2"
    assert flat[::2].count(b"processedOn") == 1
    pairs = iter(flat)
    reply = dict(zip(pairs, pairs, strict=True))
    assert reply[b"processedOn"] == str(now + 4).encode()
    # What Bull's HSET-then-HGETALL would have returned.
    assert reply == await raw_redis.hgetall(keys.job("2"))


@pytest.mark.parametrize(
    ("priority", "check_debounce", "expected"), [(0, True, 14), (6, True, 15), (0, False, 13)]
)
async def test_commands_per_completed_and_fetched_job(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, command_counter,
    token: str, now: int, priority: int, check_debounce: bool, expected: int,
) -> None:
    await add("1")
    await start(scripts, token, now)
    await add("2", priority=priority)
    await command_counter.start()
    got = await complete(
        scripts, "1", token, now + 1, fetch_next=True, check_debounce=check_debounce
    )
    assert got is not None
    assert got[1] == "2"
    ran = await command_counter.delta()
    # Finishing job 1: it exists, the lock is ours, released, off stalled, off
    # active; its deid (unless the worker knows it has none); completed set and
    # hash; the completed event.
    finishing = {"exists": 1, "get": 1, "del": 1, "srem": 1, "lrem": 1, "hget": 1,
                 "zadd": 1, "hmset": 1, "publish": 1}
    if not check_debounce:
        del finishing["hget"]
    # Starting job 2, as moveToActive would.
    fetching = {"rpoplpush": 1, "hgetall": 1, "set": 1, "publish": 1, "hset": 1}
    if priority:
        fetching["zrem"] = 1
    assert ran == dict(Counter(finishing) + Counter(fetching))
    assert sum(ran.values()) == expected
    assert await raw_redis.exists(keys.priority) == 0


async def test_metrics_with_fake_clock(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    minute = 60_000
    clock = [now, now + 1000, now + 2000, now + minute + 2000, now + 4 * minute + 2500]
    for i, ts in enumerate(clock, start=1):
        await add(str(i))
        await start(scripts, token, ts)
        await complete(scripts, str(i), token, ts, metrics=3, keep_count=0)
        meta = await raw_redis.hgetall(keys.metrics("completed"))
        data = await raw_redis.lrange(keys.metrics_data("completed"), 0, -1)
        if i == 1:
            assert meta == {b"count": b"1", b"prevTS": str(ts).encode(), b"prevCount": b"0"}
            assert data == []
        if i == 3:
            assert meta[b"count"] == b"3"
            assert meta[b"prevTS"] == str(now).encode()
            assert data == []
        if i == 4:
            # One whole minute since prevTS: push the 3 jobs counted before this one.
            assert meta == {b"count": b"4", b"prevTS": str(ts).encode(), b"prevCount": b"3"}
            assert data == [b"3"]
    # Three minutes later: delta 1 then two zeros, newest at the head; capped at 3.
    assert await raw_redis.lrange(keys.metrics_data("completed"), 0, -1) == [b"0", b"0", b"1"]
    meta = await raw_redis.hgetall(keys.metrics("completed"))
    assert meta == {b"count": b"5", b"prevTS": str(clock[-1]).encode(), b"prevCount": b"4"}


async def test_metrics_long_gap_keeps_only_zeros(
    add, scripts: Scripts, raw_redis: aioredis.Redis, keys: QueueKeys, token: str, now: int
) -> None:
    await raw_redis.hset(keys.metrics("failed"), mapping={"count": 7, "prevTS": now,
                                                           "prevCount": 2})
    await raw_redis.rpush(keys.metrics_data("failed"), 9, 9)
    await add("1")
    await start(scripts, token, now)
    await scripts.move_to_failed(
        "1", token=token, finished_on=now + 365 * 24 * 3_600_000, failed_reason="x",
        attempts_made=1, stacktrace="[]", keep_count=-1, keep_age=None, event_payload="{}",
        metrics_max_points=4,
    )
    assert await raw_redis.lrange(keys.metrics_data("failed"), 0, -1) == [b"0"] * 4
    meta = await raw_redis.hgetall(keys.metrics("failed"))
    assert meta[b"count"] == b"8"
    assert meta[b"prevCount"] == b"7"
