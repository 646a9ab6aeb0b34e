"""Scenario: locks that expire mid-job under load, then a quiet Redis.

Two worker processes (4 slots each) drain a backlog of 400 ms jobs. One of them
is frozen with SIGSTOP for 2.5 lock durations while it holds jobs, as a long GC
pause, a swapped-out process or a network stall would freeze it: its renewer
thread stops too, so its locks expire, and the other worker's stalled check
takes those jobs over. On SIGCONT the frozen worker's handlers return and their
finishing calls are refused (lock missing, lock taken, or job no longer active).

Bug it guards: a refused finishing call was retried at once, for ever, from
every slot that held such a job (thousands of commands per second, the slots
never freed). Bound: once every job is finished, the server sees fewer than
``IDLE_BOUND`` commands in each of the following seconds (idle workers run a
blocking fetch, the delayed guard and the stalled check: a few dozen).

Size: 40 jobs by default; PYQUEUE_CHAOS_SCALE=10 runs 400.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

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

JOBS = 40 * SCALE
LOCK = 1000
IDLE_BOUND = 300


async def _commands(client: aioredis.Redis) -> int:
    stats: dict[str, Any] = await client.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


@pytest.mark.timeout(90 * SCALE)
async def test_locks_lost_mid_job_leave_redis_quiet(queue_name: str) -> None:
    with RedisServer(appendonly=False) as server:
        client = aioredis.Redis.from_url(server.url)
        cfg = {"url": server.url, "queue": queue_name, "concurrency": 4, "ms": 400,
               "lock_duration": LOCK, "stalled_interval": 500, "max_stalled_count": 10}
        frozen, other = spawn_worker(cfg, ready_pipe=True), spawn_worker(cfg, ready_pipe=True)
        acked: list[str] = []
        per_second: list[int] = []
        try:
            for proc in (frozen, other):
                assert proc.stdout is not None
                await asyncio.to_thread(proc.stdout.readline)
            await produce(server.url, queue_name, [f"l{i}" for i in range(JOBS)], acked)
            # Both workers hold jobs once 8 executions have started.
            while await client.llen(f"{queue_name}:runs") < 8:  # noqa: ASYNC110 - polls Redis
                await asyncio.sleep(0.02)
            frozen.send_signal(signal.SIGSTOP)
            await asyncio.sleep(2.5 * LOCK / 1000)
            frozen.send_signal(signal.SIGCONT)
            await wait_finished(client, queue_name, JOBS, 60 * SCALE)
            before = await _commands(client)
            for _ in range(3):
                await asyncio.sleep(1.0)
                now = await _commands(client)
                per_second.append(now - before)
                before = now
        finally:
            stop_all([frozen, other])
        out = await check_invariants(client, queue_name, acked, lock_ttl_ms=LOCK)
        await client.aclose()
    print(
        f"\nlost-lock: jobs={JOBS} frozen=2500ms lock={LOCK}ms workers=2x4 "
        f"completed={out.completed} extra={out.extra} commands/s after={per_second}"
    )
    # The freeze really cost locks: some jobs ran again on the other worker.
    assert out.extra >= 1
    assert out.failed == 0
    assert max(per_second) < IDLE_BOUND, per_second
