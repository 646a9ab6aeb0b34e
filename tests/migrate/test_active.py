"""Active Bull jobs: waited for while a worker holds them, moved once stalled,
never run twice because of the migration; and the follow mode, which keeps
moving what the old queue receives."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis
from tests.migrate.conftest import FAST, bull_jobs, bullmq_jobs

from pyqueue import Job, Queue, Worker
from pyqueue.migrate import MigrationProgress, migrate_queue


async def _take(raw: aioredis.Redis, queue: str, *, lock: bool, stalls: int = 0) -> str:
    """What a Bull worker does when it starts a job (and, with ``lock=False``,
    what is left once that worker died and its lock expired)."""
    base = f"bull:{queue}:"
    job_id = (await raw.rpoplpush(base + "wait", base + "active") or b"").decode()
    await raw.hset(base + job_id, mapping={"processedOn": 5, "stalledCounter": stalls})
    if lock:
        await raw.set(f"{base}{job_id}:lock", "a-bull-worker", px=600_000)
    return job_id


async def test_a_locked_job_is_waited_for_and_a_stalled_one_moves(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        for i in range(3):
            await queue.add({"n": i})
    held = await _take(raw_redis, queue_name, lock=True)
    dead = await _take(raw_redis, queue_name, lock=False)
    twice = await _take(raw_redis, queue_name, lock=False, stalls=1)
    seen: list[MigrationProgress] = []

    report = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq",
                                 stall_grace=0.2, poll_interval=0.05, active_timeout=1.0,
                                 on_progress=seen.append)

    assert not report.finished
    assert report.problems == ["1 active Bull job(s) still locked after 1s: run again once "
                               "their workers are done"]
    assert list(await bull_jobs(raw_redis, "bull", queue_name)) == [held]
    after = await bullmq_jobs(raw_redis, "bmq", queue_name)
    assert after[dead][0] == "wait"
    assert after[dead][1]["stc"] == "1"
    assert after[twice][0] == "failed"
    assert after[twice][1]["stc"] == "2"
    assert after[twice][1]["failedReason"] == "job stalled more than allowable limit"
    assert report.stalled_failed == 1
    assert seen
    assert seen[-1].waiting_for_active == 1

    # Its worker finishes it: the next run moves its history, and is done.
    base = f"bull:{queue_name}:"
    await raw_redis.lrem(base + "active", 0, held)
    await raw_redis.delete(f"{base}{held}:lock")
    await raw_redis.hset(base + held, mapping={"finishedOn": 9, "returnvalue": '"ok"'})
    await raw_redis.zadd(base + "completed", {held: 9})
    final = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")
    assert final.finished
    assert (await bullmq_jobs(raw_redis, "bmq", queue_name))[held][0] == "completed"


async def test_a_running_job_finishes_in_bull_and_runs_once(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    """The old queue's worker keeps its job; the migration waits, then moves its history."""
    runs: list[str] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(job: Job[Any]) -> str:
        runs.append(job.id)
        started.set()
        await release.wait()
        return "done in bull"

    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({"n": 1})
        async with Worker(queue, slow, options=FAST):
            await asyncio.wait_for(started.wait(), 20)
            migration = asyncio.create_task(migrate_queue(
                queue_name, redis_url=redis_url, to_prefix="bmq", stall_grace=0.1,
                poll_interval=0.05))
            for _ in range(20):  # a few passes, all finding the job locked
                await asyncio.sleep(0.05)
            assert not migration.done()
            assert await raw_redis.lrange(f"bull:{queue_name}:active", 0, -1) == [job.id.encode()]
            release.set()
            report = await asyncio.wait_for(migration, 20)
    assert runs == [job.id]
    assert report.finished
    assert report.moved == {"completed": 1}
    state, fields = (await bullmq_jobs(raw_redis, "bmq", queue_name))[job.id]
    assert state == "completed"
    assert json.loads(fields["returnvalue"]) == "done in bull"


async def test_follow_moves_what_the_old_queue_receives_until_stopped(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    stop = asyncio.Event()
    migration = asyncio.create_task(migrate_queue(
        queue_name, redis_url=redis_url, to_prefix="bmq", follow=True, stop=stop,
        poll_interval=0.05))
    added: list[str] = []
    async with Queue(queue_name, redis_url) as queue:
        for round_ in range(3):
            for i in range(5):
                added.append((await queue.add({"round": round_, "i": i})).id)
            for _ in range(400):
                if await raw_redis.llen(f"bull:{queue_name}:wait") == 0:
                    break
                await asyncio.sleep(0.05)
            assert not migration.done()
    stop.set()
    report = await asyncio.wait_for(migration, 20)
    assert sorted(await bullmq_jobs(raw_redis, "bmq", queue_name)) == sorted(added)
    assert report.moved == {"wait": 15}
    assert not report.finished


async def test_a_suspect_that_its_worker_finished_is_forgotten(
    redis_url: str, raw_redis: aioredis.Redis, queue_name: str,
) -> None:
    """Seen without a lock once (a worker between taking it and locking it), then
    finished by that worker and removed on completion: it was no stall, and is
    forgotten (a suspect left behind would hold up a run in place)."""
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"n": 1})
    job_id = await _take(raw_redis, queue_name, lock=False)
    first = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq",
                                stall_grace=600, poll_interval=0.05, active_timeout=0.2)
    assert not first.finished
    suspects = f"bmq:{queue_name}:pq-migrate:suspects"
    assert await raw_redis.zrange(suspects, 0, -1) == [job_id.encode()]
    base = f"bull:{queue_name}:"
    await raw_redis.lrem(base + "active", 0, job_id)
    await raw_redis.delete(base + job_id)

    final = await migrate_queue(queue_name, redis_url=redis_url, to_prefix="bmq")

    assert final.finished
    assert final.moved == {}
    assert await raw_redis.zcard(suspects) == 0
