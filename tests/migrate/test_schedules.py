"""Bull's repeatable jobs become BullMQ job schedulers with the same next run,
and stop on the Bull side in the same step."""

from __future__ import annotations

import json
import time
from typing import cast

import redis.asyncio as aioredis

from pyqueue import Queue, Repeat
from pyqueue._protocol.bullmq.scripts_schedulers import scheduler_json
from pyqueue.migrate import migrate_queue, plan_migration

HOUR = 3_600_000


async def _schedulers(raw: aioredis.Redis, base: str) -> dict[str, dict[str, object]]:
    found = cast("list[tuple[bytes, float]]",
                 await raw.zrange(base + "repeat", 0, -1, withscores=True))
    out = {}
    for member, score in found:
        sid = member.decode()
        out[sid] = scheduler_json(sid, await raw.hgetall(f"{base}repeat:{sid}"), int(score))
    return out


async def test_schedules_become_job_schedulers_with_the_same_next_run(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"store": 7}, repeat=Repeat(cron="0 * * * *", tz="Europe/Berlin"),
                        job_id="square-sync-7", attempts=3, remove_on_complete=True)
        await queue.add({}, repeat=Repeat(every=15 * 60_000), name="cleanup")
        await queue.add({"type": "daily"}, repeat=Repeat(cron="0 6 * * *"))
    bull = cast("list[tuple[bytes, float]]", await raw_redis.zrange(
        f"bull:{queue_name}:repeat", 0, -1, withscores=True))
    next_runs = sorted(int(score) for _, score in bull)

    plan = await plan_migration(queue_name, redis_url=redis_url, to_prefix="bmq")
    report = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")

    ids = {s.scheduler_id for s in plan.schedules}
    assert ids == {"square-sync-7", "cleanup", queue_name}
    assert sorted(s.next_run for s in plan.schedules) == next_runs
    assert {s.scheduler_id for s in report.schedules} == ids
    base = f"bmq:{queue_name}:"
    schedulers = await _schedulers(raw_redis, base)
    assert sorted(int(cast("int", s["next"])) for s in schedulers.values()) == next_runs
    sync = schedulers["square-sync-7"]
    assert sync["pattern"] == "0 * * * *"
    assert sync["tz"] == "Europe/Berlin"
    template = cast("dict[str, dict[str, object]]", sync["template"])
    assert template["data"] == {"store": 7}
    assert template["opts"] == {"attempts": 3, "removeOnComplete": True}
    assert schedulers["cleanup"]["every"] == 15 * 60_000
    # Each scheduler's next iteration is delayed until its next run, as BullMQ names it.
    delayed = dict(cast("list[tuple[bytes, float]]", await raw_redis.zrange(
        base + "delayed", 0, -1, withscores=True)))
    for sid, s in schedulers.items():
        iteration = f"repeat:{sid}:{s['next']}"
        assert int(delayed[iteration.encode()]) // 4096 == s["next"]
        fields = await raw_redis.hgetall(base + iteration)
        assert fields[b"rjk"] == sid.encode()
        opts = json.loads(fields[b"opts"])
        assert opts["jobId"] == iteration
        assert opts["repeat"]["count"] == 1
    # Nothing is left to fire on the Bull side.
    assert await raw_redis.zcard(f"bull:{queue_name}:repeat") == 0
    assert await raw_redis.zcard(f"bull:{queue_name}:delayed") == 0
    assert await raw_redis.keys(f"bull:{queue_name}:repeat:*") == []


async def test_a_schedule_declared_again_on_bull_merges_into_its_scheduler(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    """A Node producer still on the old code re-declares its repeatable job when
    it restarts: the next pass removes it from Bull, the scheduler stays as it was."""
    async def declare() -> None:
        async with Queue(queue_name, redis_url) as queue:
            await queue.add({}, repeat=Repeat(every=HOUR), job_id="hourly")

    await declare()
    await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")
    base = f"bmq:{queue_name}:"
    before = await _schedulers(raw_redis, base)
    await declare()
    assert await raw_redis.zcard(f"bull:{queue_name}:repeat") == 1

    report = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")

    assert await _schedulers(raw_redis, base) == before
    assert report.schedules_total == 2  # converted once, merged once
    assert await raw_redis.zcard(f"bull:{queue_name}:repeat") == 0
    assert await raw_redis.zcard(f"bull:{queue_name}:delayed") == 0
    assert await raw_redis.zcard(base + "delayed") == 1


async def test_a_due_instance_becomes_the_schedulers_current_iteration(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"n": 1}, repeat=Repeat(every=HOUR), job_id="tick")
    src = f"bull:{queue_name}:"
    (instance,) = await raw_redis.zrange(src + "delayed", 0, -1)
    millis = int(instance.decode().rsplit(":", 1)[1])
    # Due: Bull promoted it to wait, no worker has taken it yet.
    await raw_redis.zrem(src + "delayed", instance)
    await raw_redis.lpush(src + "wait", instance)

    await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")

    base = f"bmq:{queue_name}:"
    iteration = f"repeat:tick:{millis}"
    assert await raw_redis.lrange(base + "wait", 0, -1) == [iteration.encode()]
    assert await raw_redis.zscore(base + "repeat", "tick") == millis
    assert await raw_redis.hget(base + iteration, "rjk") == b"tick"
    assert await raw_redis.llen(src + "wait") == 0


async def test_a_run_that_passed_with_nothing_pending_takes_the_next_one(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    """Bull does not replay a missed run; neither does the scheduler."""
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({}, repeat=Repeat(every=60_000), job_id="minute")
    src = f"bull:{queue_name}:"
    (instance,) = await raw_redis.zrange(src + "delayed", 0, -1)
    await raw_redis.zrem(src + "delayed", instance)
    await raw_redis.delete(src + instance.decode())
    await raw_redis.zadd(src + "repeat", {"__default__:minute:::60000": 60_000})
    now = int(time.time() * 1000)

    await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")

    score = await raw_redis.zscore(f"bmq:{queue_name}:repeat", "minute")
    assert score is not None
    assert now < score <= now + 60_000 + 1000
    assert score % 60_000 == 0


async def test_in_place_schedules(redis_url: str, raw_redis: aioredis.Redis,
                                  queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"type": "daily"}, repeat=Repeat(cron="0 6 * * *"))
        await queue.add({"n": 1})
    (bull_key,) = await raw_redis.zrange(f"bull:{queue_name}:repeat", 0, -1)
    report = await migrate_queue(queue_name, redis_url=redis_url)
    assert report.finished
    members = await raw_redis.zrange(f"bull:{queue_name}:repeat", 0, -1)
    assert members == [queue_name.encode()]
    assert await raw_redis.hget(f"bull:{queue_name}:pq-migrate:schedulers", bull_key) == \
        queue_name.encode()


async def test_a_schedule_that_ran_its_last_is_dropped_not_revived(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    """Bull lists a schedule whose limit is reached for ever but never runs it
    again: no scheduler comes of it (it would run once more)."""
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({}, repeat=Repeat(every=60_000, limit=1), job_id="once")
    src = f"bull:{queue_name}:"
    (instance,) = await raw_redis.zrange(src + "delayed", 0, -1)
    # It ran its one run two minutes ago: Bull keeps the listing (its time past)
    # and the finished instance, and never runs it again.
    prefix, millis = instance.decode().rsplit(":", 1)
    ran = f"{prefix}:{int(millis) - 120_000}"
    await raw_redis.zrem(src + "delayed", instance)
    await raw_redis.rename(src + instance.decode(), src + ran)
    await raw_redis.zadd(src + "completed", {ran: int(millis) - 120_000})
    (key,) = await raw_redis.zrange(src + "repeat", 0, -1)
    await raw_redis.zadd(src + "repeat", {key: int(millis) - 120_000})

    plan = await plan_migration(queue_name, redis_url=redis_url, to_prefix="bmq")
    assert plan.schedules == []
    assert len(plan.notes) == 1
    report = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")

    assert report.schedules == []
    assert await raw_redis.zcard(f"bmq:{queue_name}:repeat") == 0
    assert await raw_redis.zcard(src + "repeat") == 0
