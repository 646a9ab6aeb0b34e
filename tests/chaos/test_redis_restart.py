"""Scenario 2: Redis is shut down (SIGTERM, AOF appendfsync always) and started
again on the same port and data directory, twice, while producers add and
workers drain. Nobody is told: producers and workers reconnect by themselves.

A fault is one restart; each can cost at most the jobs in flight (4 workers x
concurrency) extra executions.

Size: 2,000 jobs by default; PYQUEUE_CHAOS_SCALE=10 runs 20,000 (still 2 restarts,
plus one more per 2,000 jobs beyond the first 4,000).
"""

from __future__ import annotations

import asyncio

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
RESTARTS = 2 if SCALE == 1 else 2 * SCALE
CONCURRENCY = 5
LOCK = 2000


async def _finished(client: aioredis.Redis, queue: str) -> int:
    try:
        return int(await client.zcard(f"bull:{queue}:completed")) + int(
            await client.zcard(f"bull:{queue}:failed")
        )
    except Exception:  # Redis is down right now
        return -1


@pytest.mark.timeout(120 * SCALE)
async def test_redis_restarts_lose_nothing(queue_name: str) -> None:
    with RedisServer(appendonly=True) as server:
        client = aioredis.Redis.from_url(server.url)
        cfg = {"url": server.url, "queue": queue_name, "concurrency": CONCURRENCY,
               "lock_duration": LOCK, "stalled_interval": 1000, "ms": 20}
        procs = [spawn_worker(cfg) for _ in range(4)]
        acked: list[str] = []
        try:
            producers = [
                asyncio.create_task(produce(
                    server.url, queue_name, [f"p{p}-{i}" for i in range(JOBS // 2)], acked,
                ))
                for p in range(2)
            ]
            for n in range(RESTARTS):
                # Restart when about (n+1)/(RESTARTS+1) of the jobs have finished.
                target = JOBS * (n + 1) // (RESTARTS + 1)
                # Polling Redis: there is no local event to wait on.
                while await _finished(client, queue_name) < target:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(server.restart)
            retries = sum(await asyncio.gather(*producers))
            await wait_finished(client, queue_name, JOBS, 100 * SCALE)
            assert all(p.poll() is None for p in procs), "a worker process died"
        finally:
            stop_all(procs)
        out = await check_invariants(client, queue_name, acked, lock_ttl_ms=LOCK)
        await client.aclose()
    print(
        f"\nredis_restart: jobs={JOBS} restarts={RESTARTS} producer_retries={retries} lost=0 "
        f"completed={out.completed} failed={out.failed} executions={out.executions} "
        f"extra={out.extra} max_runs_per_job={out.max_runs}"
    )
    assert len(acked) == JOBS
    assert out.extra <= RESTARTS * 4 * CONCURRENCY
