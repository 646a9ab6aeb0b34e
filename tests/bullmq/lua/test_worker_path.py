"""BullMQ mode's worker scripts against a real Redis: fetching, the marker, limits,
locks, refusals that change nothing, releasing, and the stalled check."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from tests.bullmq.conftest import new_job, now_ms
from tests.bullmq.state import snapshot

from pyqueue._protocol.bullmq.keys import BullMQKeys
from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue._protocol.connection import ConnectionSpec
from pyqueue._protocol.interface import (
    Attempt,
    Dedup,
    Idle,
    JobReply,
    Keep,
    ParentRef,
    Wake,
    WorkerSpec,
)
from pyqueue.errors import JobNotFound, JobStateError, LockMismatch

W = WorkerSpec(lock_duration=30_000)


def _started(reply: JobReply | Idle | None) -> JobReply:
    assert reply is not None
    assert not isinstance(reply, Idle), reply
    return reply


async def test_fetching_says_when_the_next_delayed_job_is_due(proto: BullMQProtocol) -> None:
    assert await proto.move_to_active(token="t", worker=W, now=now_ms()) == Idle(0, 0)
    due = now_ms() + 60_000
    await proto.add_job(new_job({}, delay=60_000, timestamp=due - 60_000), token="")
    assert await proto.move_to_active(token="t", worker=W, now=now_ms()) == Idle(0, due)
    # Once due, the fetch itself promotes and starts it.
    raw, job_id = _started(await proto.move_to_active(token="t", worker=W, now=due))
    assert job_id == "1"
    assert raw[b"delay"] == b"0"
    assert raw[b"ats"] == b"1"


async def test_the_marker_wakes_blocked_workers(
    proto: BullMQProtocol, redis_url: str, keys: BullMQKeys, raw_redis: aioredis.Redis
) -> None:
    bclient = aioredis.Redis.from_url(redis_url)
    try:
        assert await proto.wait_for_job(bclient, 0.05) is None
        waiting = asyncio.create_task(proto.wait_for_job(bclient, 5.0))
        await asyncio.sleep(0.05)
        await proto.add_job(new_job({}), token="")
        assert await waiting == Wake("", 0)
        await raw_redis.delete(keys.marker)
        due = now_ms() + 60_000
        await proto.add_job(new_job({}, delay=60_000, timestamp=due - 60_000), token="")
        assert await proto.wait_for_job(bclient, 1.0) == Wake("", due)
    finally:
        await bclient.aclose()


async def test_worker_and_global_rate_limits(proto: BullMQProtocol, keys: BullMQKeys,
                                             raw_redis: aioredis.Redis) -> None:
    for _ in range(3):
        await proto.add_job(new_job({}), token="")
    limited = WorkerSpec(lock_duration=30_000, limiter_max=1, limiter_duration=60_000)
    _started(await proto.move_to_active(token="t", worker=limited, now=now_ms()))
    wait = await proto.move_to_active(token="t", worker=limited, now=now_ms())
    assert isinstance(wait, Idle)
    assert 0 < wait.rate_limited_ms <= 60_000
    await raw_redis.delete(keys.limiter)
    # A global limit in meta wins over the worker's own (none here).
    await raw_redis.hset(keys.meta, mapping={"max": 1, "duration": 60_000})
    _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))
    again = await proto.move_to_active(token="t", worker=W, now=now_ms())
    assert isinstance(again, Idle)
    assert again.rate_limited_ms > 0


async def test_global_concurrency_and_pause_close_the_queue(
    proto: BullMQProtocol, keys: BullMQKeys, raw_redis: aioredis.Redis
) -> None:
    for _ in range(3):
        await proto.add_job(new_job({}), token="")
    await raw_redis.hset(keys.meta, "concurrency", 1)
    _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))
    assert await proto.move_to_active(token="t", worker=W, now=now_ms()) == Idle(0, 0)
    await raw_redis.hdel(keys.meta, "concurrency")
    await proto.pause(True)
    assert await proto.is_paused()
    assert not await raw_redis.exists(keys.marker)
    assert await proto.move_to_active(token="t", worker=W, now=now_ms()) == Idle(0, 0)
    await proto.pause(False)
    assert await raw_redis.zscore(keys.marker, "0") == 0
    _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))


async def test_a_refused_finish_changes_nothing(
    proto: BullMQProtocol, raw_redis: aioredis.Redis, keys: BullMQKeys
) -> None:
    await proto.add_job(new_job({}), token="")
    _started(await proto.move_to_active(token="mine", worker=W, now=now_ms()))
    before = await snapshot(raw_redis, keys.base)
    finish = {"result_json": "1", "finished_on": now_ms(), "keep": Keep(-1), "worker": W,
              "fetch_next": True}
    with pytest.raises(LockMismatch) as mismatch:
        await proto.complete("1", token="theirs", **finish)
    assert mismatch.value.code == -6
    with pytest.raises(JobNotFound):
        await proto.complete("nope", token="mine", **finish)
    await raw_redis.delete(keys.lock("1"))
    with pytest.raises(LockMismatch) as missing:
        await proto.fail("1", Attempt(1, "x", "[]"), token="mine", finished_on=now_ms(),
                         keep=Keep(-1), worker=W, max_attempts=1)
    assert missing.value.code == -2
    await raw_redis.set(keys.lock("1"), "mine", px=30_000)
    await raw_redis.lrem(keys.active, 0, "1")
    with pytest.raises(JobStateError) as inactive:
        await proto.retry("1", Attempt(1, "x", "[]"), token="mine", delay=0, lifo=False,
                          now=now_ms())
    assert inactive.value.code == -3
    await raw_redis.lpush(keys.active, "1")
    after = await snapshot(raw_redis, keys.base)
    assert after == before


async def test_release_puts_the_job_back_first_without_an_attempt(
    proto: BullMQProtocol, raw_redis: aioredis.Redis, keys: BullMQKeys
) -> None:
    for _ in range(2):
        await proto.add_job(new_job({}), token="")
    _, job_id = _started(await proto.move_to_active(token="t1", worker=W, now=now_ms()))
    await proto.release(job_id, token="t1")
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"2", b"1"]  # 1 is taken next again
    assert await raw_redis.hget(keys.job("1"), "atm") is None
    assert not await raw_redis.exists(keys.lock("1"))
    with pytest.raises(LockMismatch):
        await proto.release("1", token="t1")


async def test_extend_locks_renews_its_own_and_names_the_lost(
    proto: BullMQProtocol, raw_redis: aioredis.Redis, keys: BullMQKeys, redis_url: str
) -> None:
    for _ in range(3):
        await proto.add_job(new_job({}), token="")
    short = WorkerSpec(lock_duration=1_000)
    for token in ("a", "b", "c"):
        _started(await proto.move_to_active(token=token, worker=short, now=now_ms()))
    await raw_redis.sadd(keys.stalled, "1", "2", "3")
    await raw_redis.set(keys.lock("3"), "someone-else")
    lost = await proto.extend_locks(["1", "2", "3", "4"], ["a", "b", "c", "d"], 60_000)
    assert lost == ["3", "4"]
    assert await raw_redis.pttl(keys.lock("1")) > 1_000
    assert await raw_redis.smembers(keys.stalled) == {b"3"}
    locks = proto.sync_locks(ConnectionSpec.from_url(redis_url), 90_000)
    try:
        assert await asyncio.to_thread(locks.renew, ["1", "2", "3"], ["a", "x", "c"]) == [
            True, False, False,
        ]
        assert sorted(await asyncio.to_thread(locks.list_active)) == ["1", "2", "3"]
        await asyncio.to_thread(locks.release, "1", "a")
        assert await raw_redis.lindex(keys.wait, -1) == b"1"
    finally:
        locks.close()


async def test_the_stalled_check_recovers_counts_and_defers_failure(
    proto: BullMQProtocol, raw_redis: aioredis.Redis, keys: BullMQKeys
) -> None:
    for _ in range(2):
        await proto.add_job(new_job({}), token="")
    await raw_redis.hset(keys.job("2"), "rjk", "sched")  # a job scheduler's job
    await raw_redis.zadd(keys.repeat, {"sched": 1})
    for _ in range(2):
        _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))
    assert await proto.check_stalled(max_stalled_count=0, now=now_ms(), interval=60_000) == (
        [], [])
    # Throttled for the interval, whoever calls.
    assert await proto.check_stalled(max_stalled_count=0, now=now_ms(), interval=60_000) == (
        [], [])
    await raw_redis.delete(keys.stalled_check, keys.lock("1"), keys.lock("2"))
    marked, recovered = await proto.check_stalled(max_stalled_count=0, now=now_ms(),
                                                  interval=60_000)
    assert (marked, recovered) == (["1"], ["2"])
    assert await raw_redis.hget(keys.job("1"), "defa") == b"job stalled more than allowable limit"
    assert await raw_redis.hget(keys.job("2"), "stc") == b"1"
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"1", b"2"]
    # A deferred failure does not count against the rate limiter when it starts.
    limited = WorkerSpec(lock_duration=30_000, limiter_max=5, limiter_duration=60_000)
    raw, job_id = _started(await proto.move_to_active(token="t", worker=limited, now=now_ms()))
    assert job_id == "2"  # wait's tail
    assert await raw_redis.get(keys.limiter) == b"1"
    raw, job_id = _started(await proto.move_to_active(token="t", worker=limited, now=now_ms()))
    assert (job_id, b"defa" in raw) == ("1", True)
    assert await raw_redis.get(keys.limiter) == b"1"


async def test_a_job_whose_hash_is_gone_is_dropped_not_started(
    proto: BullMQProtocol, raw_redis: aioredis.Redis, keys: BullMQKeys
) -> None:
    await raw_redis.lpush(keys.wait, "ghost")
    await proto.add_job(new_job({}), token="")
    await raw_redis.rpush(keys.wait, "ghost2")
    _, job_id = _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))
    assert job_id == "1"
    assert await raw_redis.lrange(keys.active, 0, -1) == [b"1"]
    assert not await raw_redis.exists(keys.job("ghost2"))


async def test_keep_last_if_active_adds_the_latest_duplicate_when_the_owner_ends(
    proto: BullMQProtocol, raw_redis: aioredis.Redis, keys: BullMQKeys
) -> None:
    dedup = Dedup(id="k", keep_last_if_active=True)
    await proto.add_job(new_job({"v": 1}, dedup=dedup), token="")
    assert (await proto.add_job(new_job({"v": 2}, dedup=dedup), token="")).deduplicated
    _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))
    for v in (3, 4):
        again = await proto.add_job(new_job({"v": v}, dedup=dedup), token="")
        assert (again.id, again.deduplicated) == ("1", True)
    assert await raw_redis.hget(keys.dedup_next("k"), "data") == b'{"v":4}'
    await proto.complete("1", token="t", result_json="null", finished_on=now_ms(),
                         keep=Keep(-1), worker=W, fetch_next=False)
    assert not await raw_redis.exists(keys.dedup_next("k"))
    # The follower keeps the id its add was given (the counter moves on regardless).
    assert await raw_redis.get(keys.dedup("k")) == b"4"
    assert await raw_redis.hget(keys.job("4"), "data") == b'{"v":4}'
    assert await raw_redis.lrange(keys.wait, 0, -1) == [b"4"]
    assert await raw_redis.get(keys.id) == b"5"


async def test_metrics_count_finishes_per_minute(
    proto: BullMQProtocol, raw_redis: aioredis.Redis, keys: BullMQKeys
) -> None:
    metered = WorkerSpec(lock_duration=30_000, metrics_max_points=10)
    minute = 60_000 * 29_000_000
    for i in range(3):
        await proto.add_job(new_job({}), token="")
        _started(await proto.move_to_active(token="t", worker=metered, now=now_ms()))
        await proto.complete(str(i + 1), token="t", result_json="1",
                             finished_on=minute + i * 2 * 60_000, keep=Keep(-1),
                             worker=metered, fetch_next=False)
    meta = await raw_redis.hgetall(keys.metrics("completed"))
    assert meta == {b"count": b"3", b"prevTS": str(minute + 4 * 60_000).encode(),
                    b"prevCount": b"2"}
    assert await raw_redis.lrange(keys.metrics_data("completed"), 0, -1) == [
        b"0", b"1", b"0", b"1",
    ]


async def test_retention_by_age_and_count(
    proto: BullMQProtocol, raw_redis: aioredis.Redis, keys: BullMQKeys
) -> None:
    t0 = 1_800_000_000_000
    for _ in range(4):
        await proto.add_job(new_job({}), token="")
    for i, finished in enumerate((t0, t0 + 1_000, t0 + 4_000)):
        _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))
        await proto.complete(str(i + 1), token="t", result_json="1", finished_on=finished,
                             keep=Keep(-1), worker=W, fetch_next=False)
    await raw_redis.set(keys.dedup("x"), "1")
    _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))
    # Keep jobs up to 2 s old (and at most 2): at t0 + 5000 the first two go.
    await proto.complete("4", token="t", result_json="1", finished_on=t0 + 5_000,
                         keep=Keep(2, 2), worker=W, fetch_next=False)
    assert await raw_redis.zrange(keys.completed, 0, -1) == [b"3", b"4"]
    assert not await raw_redis.exists(keys.job("1"))
    assert not await raw_redis.exists(keys.job("2"))
    # Retention does not free a dedup id another job may hold (as BullMQ).
    assert await raw_redis.get(keys.dedup("x")) == b"1"
    await proto.add_job(new_job({}), token="")
    _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))
    await proto.complete("5", token="t", result_json="1", finished_on=t0 + 6_000,
                         keep=Keep(1), worker=W, fetch_next=False)
    assert await raw_redis.zrange(keys.completed, 0, -1) == [b"5"]
    await proto.add_job(new_job({}), token="")
    _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))
    await proto.fail("6", Attempt(1, "x", "[]"), token="t", finished_on=t0, keep=Keep(0),
                     worker=W, max_attempts=1)
    assert not await raw_redis.exists(keys.job("6"))
    assert await raw_redis.zcard(keys.failed) == 0


async def test_a_flow_added_in_one_call_releases_its_parent_after_all_of_it(
    proto: BullMQProtocol, raw_redis: aioredis.Redis, keys: BullMQKeys
) -> None:
    parent = ParentRef(id="p", queue=keys.qualified_name)
    # Children that exist already, completed: they count as processed at once.
    for child in ("done-child", "done-2"):
        await proto.add_job(new_job({}, name="c", job_id=child), token="")
        _started(await proto.move_to_active(token="t", worker=W, now=now_ms()))
        await proto.complete(child, token="t", result_json='"r"', finished_on=now_ms(),
                             keep=Keep(-1), worker=W, fetch_next=False)
    await proto.add_jobs([
        new_job({}, name="parent", job_id="p", waiting_children=True),
        new_job({}, name="c", job_id="done-child", parent=parent),
        new_job({}, name="c", job_id="new-child", parent=parent),
    ], token="")
    # Not released by the first child: the second was still to come.
    assert await proto.get_state("p") == "waiting-children"
    assert await raw_redis.smembers(keys.dependencies("p")) == {keys.job("new-child").encode()}
    assert await raw_redis.hget(keys.processed("p"), keys.job("done-child")) == b'"r"'
    await proto.add_jobs([new_job({}, name="parent", job_id="p2", waiting_children=True),
                          new_job({}, name="c", job_id="done-2",
                                  parent=ParentRef(id="p2", queue=keys.qualified_name))],
                         token="")
    # Its only child was done: released once the call was through (onto wait).
    assert await proto.get_state("p2") == "waiting"
    # A child that has another parent is refused (-7), and that parent is not released.
    with pytest.raises(JobStateError, match="cannot be replaced"):
        await proto.add_jobs([new_job({}, name="parent", job_id="p3", waiting_children=True),
                              new_job({}, name="c", job_id="done-2",
                                      parent=ParentRef(id="p3", queue=keys.qualified_name))],
                             token="")
    assert await proto.get_state("p3") == "waiting-children"
    assert await raw_redis.hget(keys.job("p3"), "flowAttachmentFailed") is None
