"""Scenario 4: handlers that block the event loop or burn CPU past the lock duration.

Two worker processes compete for the same jobs. Each handler holds its thread
for 1.5 s (``time.sleep`` inside ``async def``, or a pure-Python busy loop)
while the lock lasts 1 s and the stalled check runs every 0.5 s. The lock
renewer thread must keep every lock alive: no job may run twice (bound: 0).

Size: 8 jobs per mode by default; PYQUEUE_CHAOS_SCALE=10 runs 80.
"""

from __future__ import annotations

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

JOBS = 8 * SCALE
LOCK = 1000


@pytest.mark.timeout(60 * SCALE)
@pytest.mark.parametrize("mode", ["block", "cpu"])
async def test_blocking_handlers_keep_their_locks(queue_name: str, mode: str) -> None:
    with RedisServer() as server:
        client = aioredis.Redis.from_url(server.url)
        cfg = {"url": server.url, "queue": queue_name, "concurrency": 2, "mode": mode,
               "ms": 1500, "lock_duration": LOCK, "stalled_interval": 500,
               "max_stalled_count": 1}
        procs = [spawn_worker(cfg) for _ in range(2)]
        acked: list[str] = []
        try:
            await produce(server.url, queue_name, [f"b{i}" for i in range(JOBS)], acked)
            await wait_finished(client, queue_name, JOBS, 50 * SCALE)
        finally:
            stop_all(procs)
        out = await check_invariants(client, queue_name, acked, lock_ttl_ms=LOCK)
        await client.aclose()
    print(
        f"\nblocked[{mode}]: jobs={JOBS} handler=1500ms lock={LOCK}ms workers=2x2 lost=0 "
        f"completed={out.completed} failed={out.failed} extra={out.extra}"
    )
    assert out.extra == 0
    assert out.failed == 0
