"""Scenario 1: worker kill -9 while 4 worker processes drain the queue.

A random worker is SIGKILLed every ~300 ms and restarted. Locks are short
(lock_duration 1000 ms, stalled_interval 500 ms) so killed jobs come back fast.
A fault is one kill; each can cost at most ``concurrency`` extra executions
(the jobs that worker held).

Size: 2,000 jobs by default (CI); PYQUEUE_CHAOS_SCALE=10 runs 20,000.
"""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as aioredis
from tests.chaos.harness import (
    SCALE,
    check_invariants,
    produce,
    spawn_worker,
    stop_all,
    wait_finished,
)

from pyqueue.embedded import RedisServer

JOBS = 2000 * SCALE
CONCURRENCY = 5
LOCK = 1000


@pytest.mark.timeout(90 * SCALE)
async def test_kill9_workers_lose_nothing(queue_name: str) -> None:
    rng = random.Random(1)
    with RedisServer(appendonly=False) as server:
        client = aioredis.Redis.from_url(server.url)
        cfg = {"url": server.url, "queue": queue_name, "concurrency": CONCURRENCY,
               "lock_duration": LOCK, "stalled_interval": 500, "ms": 10}
        procs = [spawn_worker(cfg, ready_pipe=True) for _ in range(4)]
        acked: list[str] = []
        kills = 0
        try:
            producer = asyncio.create_task(
                produce(server.url, queue_name, [f"j{i}" for i in range(JOBS)], acked)
            )
            waiter = asyncio.create_task(wait_finished(client, queue_name, JOBS, 80 * SCALE))
            while not waiter.done():
                await asyncio.sleep(rng.uniform(0.2, 0.4))
                if waiter.done():
                    break
                victim = rng.randrange(len(procs))
                # Kill only a worker that is up: on a loaded machine a fresh process can take
                # seconds to import, and killing it before then tests nothing.
                assert procs[victim].stdout is not None
                await asyncio.to_thread(procs[victim].stdout.readline)
                procs[victim].kill()
                procs[victim].wait()
                procs[victim].stdout.close()
                procs[victim] = spawn_worker(cfg, ready_pipe=True)
                kills += 1
            await producer
            await waiter
        finally:
            stop_all(procs)
        out = await check_invariants(client, queue_name, acked, lock_ttl_ms=LOCK)
        await client.aclose()
    print(
        f"\nkill9: jobs={JOBS} workers=4x{CONCURRENCY} kills={kills} lost=0 "
        f"completed={out.completed} failed={out.failed} executions={out.executions} "
        f"extra={out.extra} extra_per_kill={out.extra / max(kills, 1):.2f} "
        f"max_runs_per_job={out.max_runs}"
    )
    assert out.extra <= kills * CONCURRENCY
