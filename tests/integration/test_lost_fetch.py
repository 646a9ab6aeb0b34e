"""A fetch whose reply was lost: the job it moved to active is put back at once.

Issue 30: a job whose fetch reply was lost in a failover waited out its whole
lock (30 s by default) before any worker ran it. moveToActive locks the job with
the worker's token before the reply goes out; if the connection drops then, the
job sits in active, locked by a worker that never heard of it. After such a
connection error the worker now looks for jobs in active locked with its own
token that it is not running, and puts them back in wait.

The lost reply is staged: the test moves a job to active and locks it with the
worker's token, as moveToActive would have, then kills the worker's connections
(``CLIENT KILL``), so its fetch fails with a connection error.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from pyqueue import Worker, WorkerOptions

LOCK_MS = 30_000  # the default: without the recovery, the job would wait this out


async def test_a_job_locked_by_a_lost_fetch_runs_at_once(
    make_queue: Any, raw_redis: aioredis.Redis, redis_url: str, eventually: Any,
) -> None:
    queue = make_queue()
    keys = queue.keys
    done: list[str] = []

    async def handler(job: Any) -> None:
        done.append(job.id)

    options = WorkerOptions(lock_duration=LOCK_MS, stalled_interval=LOCK_MS, drain_delay=5)
    worker = Worker(queue.name, handler, redis_url=redis_url, options=options)
    await worker.start()
    try:
        await queue.add({}, job_id="warm-up")
        await eventually(lambda: "warm-up" in done, timeout=10)
        # What moveToActive does before its reply is lost: wait -> active, locked by us.
        # (Added delayed, so the worker blocked on wait cannot take it first.)
        await queue.add({}, job_id="orphan", delay=3_600_000)
        assert await raw_redis.zrem(keys.delayed, "orphan") == 1
        await raw_redis.lpush(keys.active, "orphan")
        await raw_redis.set(keys.lock("orphan"), worker.token, px=LOCK_MS)
        # The reply never comes: the worker's connections drop.
        await raw_redis.client_kill_filter(_type="normal", skipme=True)
        await eventually(lambda: "orphan" in done, timeout=10)
        assert done.count("orphan") == 1
    finally:
        await worker.close()
