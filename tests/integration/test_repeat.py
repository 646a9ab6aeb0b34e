"""Repeatable jobs against real Redis: declaring, chaining, removing, bad input."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from pyqueue import InvalidOptionsError, Job, Queue, Repeat, Worker, WorkerOptions

FAST = WorkerOptions(guard_interval=200, drain_delay=0.2, stalled_interval=1000)


@pytest.fixture
async def queue(redis_url: str, queue_name: str) -> AsyncIterator[Queue[Any]]:
    async with Queue(queue_name, redis_url) as q:
        yield q


async def test_declaring_twice_schedules_one_instance(
    queue: Queue[Any], raw_redis: aioredis.Redis
) -> None:
    first = await queue.add({"n": 1}, name="rep", repeat=Repeat(every=60_000))
    second = await queue.add({"n": 1}, name="rep", repeat=Repeat(every=60_000))
    assert first is not None
    assert second is not None
    assert first.id == second.id
    repeat = Repeat(every=60_000)
    assert first.id.startswith(repeat.id_prefix("rep"))
    millis = int(first.id.rsplit(":", 1)[1])
    assert millis % 60_000 == 0
    members = await raw_redis.zrange(queue.keys.repeat, 0, -1, withscores=True)
    assert members == [(b"rep:::60000", float(millis))]
    assert await raw_redis.zcard(queue.keys.delayed) == 1
    assert first.raw_opts["repeat"] == {"count": 1, "key": "rep:::60000", "every": 60000}
    assert first.raw_opts["prevMillis"] == millis
    listed = await queue.get_repeatable_jobs()
    assert listed == [{"key": "rep:::60000", "name": "rep", "id": None, "end_date": None,
                       "tz": None, "cron": None, "every": 60000, "next": millis}]


async def test_worker_chains_instances(queue: Queue[Any], redis_url: str) -> None:
    seen: list[Job[Any]] = []
    enough = asyncio.Event()

    async def handler(job: Job[Any]) -> None:
        seen.append(job)
        if len(seen) >= 3:
            enough.set()

    await queue.add({"x": 1}, name="tick", repeat=Repeat(every=150))
    async with Worker(queue, handler, options=FAST):
        await asyncio.wait_for(enough.wait(), 10)
    counts = [job.raw_opts["repeat"]["count"] for job in seen[:3]]
    assert counts == [1, 2, 3]
    ticks = [int(job.id.rsplit(":", 1)[1]) for job in seen]
    assert len(set(ticks)) == len(ticks)
    assert all(b > a for a, b in itertools.pairwise(ticks))


async def test_limit_ends_the_schedule(queue: Queue[Any]) -> None:
    done: list[str] = []

    async def handler(job: Job[Any]) -> None:
        done.append(job.id)

    await queue.add({}, repeat=Repeat(every=100, limit=2))
    async with Worker(queue, handler, options=FAST):
        await asyncio.sleep(1.0)
    assert len(done) == 2
    assert await queue.get_delayed_count() == 0
    # Like Bull, the configuration stays listed after the limit is reached.
    assert await queue.get_repeatable_count() == 1


async def test_remove_repeatable_stops_chaining(queue: Queue[Any]) -> None:
    repeat = Repeat(every=60_000, job_id="sync-1")
    job = await queue.add({}, name="sync", repeat=repeat)
    assert job is not None
    await queue.remove_repeatable(repeat, name="sync")
    assert await queue.get_repeatable_count() == 0
    assert await queue.get_delayed_count() == 0
    assert await queue.get_job(job.id) is None


async def test_remove_repeatable_by_key(queue: Queue[Any]) -> None:
    await queue.add({}, repeat=Repeat(cron="0 6 * * *", tz="Europe/London"), job_id="digest")
    [entry] = await queue.get_repeatable_jobs()
    assert entry["key"] == "__default__:digest::Europe/London:0 6 * * *"
    await queue.remove_repeatable_by_key(entry["key"])
    assert await queue.get_repeatable_count() == 0
    assert await queue.get_delayed_count() == 0


async def test_stale_scheduler_cannot_reenqueue_a_removed_tick(
    queue: Queue[Any], raw_redis: aioredis.Redis
) -> None:
    """A scheduler whose 'next' is older than the repeat set's is a no-op."""
    repeat = Repeat(every=1000)
    job = await queue.add({}, name="t", repeat=repeat)
    assert job is not None
    millis = int(job.id.rsplit(":", 1)[1])
    # Simulate: that tick ran, chained the next one, and was removed on completion.
    await raw_redis.zadd(queue.keys.repeat, {"t:::1000": millis + 1000})
    await raw_redis.delete(queue.keys.job(job.id))
    await raw_redis.zrem(queue.keys.delayed, job.id)
    from pyqueue import _scheduling

    again = await _scheduling.schedule_next(
        queue, "t", "{}", {}, repeat, prev_millis=0, now=millis - 500, chain=False
    )
    assert again is None
    assert await queue.get_job(job.id) is None


@pytest.mark.parametrize(
    ("repeat_kwargs", "extra", "fragment"),
    [
        ({"cron": "every day"}, {}, "repeat.cron"),
        ({"cron": "0 * * * *", "tz": "Nowhere/Land"}, {}, "repeat.tz"),
        ({"every": 0}, {}, "repeat.every"),
        ({"every": 10**400}, {}, "repeat.every"),
        ({"every": 1000, "limit": 2**53}, {}, "repeat.limit"),
        ({"cron": "0 * * * *", "every": 10}, {}, "exactly one"),
        ({"every": 1000, "end_date": "2001-01-01T00:00:00Z"}, {}, "in the past"),
    ],
)
async def test_bad_schedules_write_nothing(
    queue: Queue[Any], raw_redis: aioredis.Redis,
    repeat_kwargs: dict[str, Any], extra: dict[str, Any], fragment: str,
) -> None:
    with pytest.raises(InvalidOptionsError, match=fragment):
        await queue.add({}, repeat=Repeat(**repeat_kwargs), **extra)
    assert await raw_redis.keys(queue.keys.base + "*") == []
