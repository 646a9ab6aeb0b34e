"""Scenario 3: dropped connections and black holes between clients and Redis.

Producers and workers reach Redis only through :class:`ChaosProxy`, which cuts
random connections, cuts all of them, and black-holes all traffic for ~1.5 s
(leaving the affected sockets open and silent forever). Executions are logged
on a direct connection. The URL carries ``socket_timeout=2`` so every client
notices a silent socket within ~2 s (see docs/reliability.md, "Connections").

A fault is one cut or black hole; extra executions per fault are bounded by
the jobs in flight (4 workers x concurrency).

Size: 1,500 jobs by default; PYQUEUE_CHAOS_SCALE=10 runs 15,000.
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
from tests.chaos.proxy import ChaosProxy

from pyqueue.embedded import RedisServer

JOBS = 1500 * SCALE
CONCURRENCY = 5
LOCK = 3000


@pytest.mark.timeout(150 * SCALE)
async def test_dropped_connections_lose_nothing(queue_name: str) -> None:
    rng = random.Random(3)
    with RedisServer() as server:
        proxy = ChaosProxy("127.0.0.1", server.port)
        await proxy.start()
        url = f"{proxy.url}?socket_timeout=2"
        client = aioredis.Redis.from_url(server.url)
        cfg = {"url": url, "log_url": server.url, "queue": queue_name,
               "concurrency": CONCURRENCY, "lock_duration": LOCK, "stalled_interval": 1000,
               "ms": 20}
        procs = [spawn_worker(cfg) for _ in range(4)]
        acked: list[str] = []
        faults = 0
        try:
            producers = [
                asyncio.create_task(produce(
                    url, queue_name, [f"p{p}-{i}" for i in range(JOBS // 3)], acked,
                ))
                for p in range(3)
            ]
            waiter = asyncio.create_task(wait_finished(client, queue_name, JOBS, 130 * SCALE))
            while not waiter.done():
                await asyncio.sleep(rng.uniform(0.1, 0.5))
                roll = rng.random()
                if roll < 0.6:
                    proxy.cut_random(rng)
                elif roll < 0.85:
                    proxy.cut_all()
                else:
                    await proxy.blackhole(rng.uniform(0.5, 1.5))
                faults += 1
            retries = sum(await asyncio.gather(*producers))
            await waiter
            assert all(p.poll() is None for p in procs), "a worker process died"
        finally:
            stop_all(procs)
            await proxy.close()
        out = await check_invariants(client, queue_name, acked, lock_ttl_ms=LOCK)
        await client.aclose()
    print(
        f"\nproxy: jobs={JOBS} faults={faults} (connections cut={proxy.cuts}, "
        f"black holes={proxy.blackholes}) producer_retries={retries} lost=0 "
        f"completed={out.completed} failed={out.failed} executions={out.executions} "
        f"extra={out.extra} max_runs_per_job={out.max_runs}"
    )
    assert len(acked) == JOBS
    assert out.extra <= faults * 4 * CONCURRENCY
