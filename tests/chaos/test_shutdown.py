"""Scenario 5: graceful shutdown (SIGTERM) of worker processes during load.

Every ~0.5 s one of 4 workers gets SIGTERM; its handler calls ``worker.close()``
with a 0.3 s grace, shorter than some handlers (10-800 ms), so some active jobs
finish and the rest are released back to wait. A fresh worker replaces it.
Released jobs run again (an extra execution, bounded by the concurrency of the
stopped worker); none is lost and none waits for a stalled check.

Size: 600 jobs by default; PYQUEUE_CHAOS_SCALE=10 runs 6,000.
"""

from __future__ import annotations

import asyncio
import random
import signal

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

JOBS = 600 * SCALE
CONCURRENCY = 5


@pytest.mark.timeout(90 * SCALE)
async def test_sigterm_releases_or_finishes(queue_name: str) -> None:
    rng = random.Random(5)
    with RedisServer() as server:
        client = aioredis.Redis.from_url(server.url)
        # A long lock: a released job must come back at once, not via the stalled check.
        cfg = {"url": server.url, "queue": queue_name, "concurrency": CONCURRENCY,
               "lock_duration": 30_000, "stalled_interval": 30_000, "ms": 150, "jitter": True,
               "shutdown_grace": 0.3}
        procs = [spawn_worker(cfg, ready_pipe=True) for _ in range(4)]
        stopping = []
        acked: list[str] = []
        terms = 0
        try:
            await produce(server.url, queue_name, [f"s{i}" for i in range(JOBS)], acked)
            waiter = asyncio.create_task(wait_finished(client, queue_name, JOBS, 80 * SCALE))
            while not waiter.done():
                await asyncio.sleep(rng.uniform(0.3, 0.7))
                victim = rng.randrange(len(procs))
                # Until it prints "ready" its SIGTERM handler is not installed.
                assert procs[victim].stdout is not None
                await asyncio.to_thread(procs[victim].stdout.readline)
                procs[victim].send_signal(signal.SIGTERM)
                stopping.append(procs[victim])
                procs[victim] = spawn_worker(cfg, ready_pipe=True)
                terms += 1
            await waiter
            for proc in stopping:
                code = await asyncio.to_thread(proc.wait, 20)
                assert code == 0, f"worker exited with {code} after SIGTERM"
        finally:
            stop_all(procs + stopping)
        out = await check_invariants(client, queue_name, acked, lock_ttl_ms=0)
        await client.aclose()
    print(
        f"\nshutdown: jobs={JOBS} sigterms={terms} lost=0 completed={out.completed} "
        f"failed={out.failed} executions={out.executions} extra={out.extra} "
        f"max_runs_per_job={out.max_runs}"
    )
    assert out.extra <= terms * CONCURRENCY
