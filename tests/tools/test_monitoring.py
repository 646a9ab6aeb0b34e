"""pyqueue.monitoring: what the tools read about a queue, against real Redis and Node Bull."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
from tests.interop.bull import NodeBull

from pyqueue import Queue, RateLimiter, Repeat, Worker, WorkerOptions, monitoring

FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=2)


async def _until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never true; last {value!r}")
        await asyncio.sleep(0.05)


async def test_node_limiter_bounces_are_told_from_user_delays(
    node_bull: NodeBull, redis_url: str, queue_name: str
) -> None:
    """Bull parks a limited job in ``delayed`` and indexes it in ``limiter:index``."""
    node_bull.add(queue_name, [{"name": "r", "data": {"n": n}} for n in range(6)])
    node_bull.add(queue_name, [{"name": "r", "data": {"late": n}, "opts": {"delay": 3_600_000}}
                               for n in range(2)])
    config = {
        "queue": queue_name, "action": "process", "limiter": {"max": 1, "duration": 600_000},
        "settings": {"stalledInterval": 5000, "guardInterval": 200, "drainDelay": 1},
        "behaviour": {"*": {"return": 1}}, "timeoutMs": 60_000,
    }
    with node_bull.start(config) as proc:
        await proc.await_for("completed")
        async with Queue(queue_name, redis_url) as queue:

            async def parked() -> monitoring.RateLimited | None:
                found = await monitoring.get_rate_limited(queue)
                return found if found.count == 5 else None

            limited = await _until(parked)
            assert (await queue.get_job_counts("delayed"))["delayed"] == 7
            assert limited.complete
            assert limited.until_ms is not None
            # Parked for about the window each (Bull adds 10 % per job parked before it).
            now = int(time.time() * 1000)
            assert now < limited.until_ms < now + 10 * 600_000


async def test_pyqueue_limiter_bounces_count_too(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        for n in range(4):
            await queue.add({"n": n})
        await queue.add({"late": 1}, delay=3_600_000)
        opts = WorkerOptions(drain_delay=1, stalled_interval=0,
                             limiter=RateLimiter(max=1, duration=600_000))
        async with Worker(queue, lambda job: None, options=opts):

            async def parked() -> bool:
                return (await monitoring.get_rate_limited(queue)).count == 3

            await _until(parked)


async def test_get_job_refuses_the_queue_s_own_keys(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({"n": 1})
        raw = aioredis.Redis.from_url(redis_url)
        try:
            await raw.hset(queue.keys.metrics("completed"), mapping={"count": 3})
            await raw.rpush(queue.keys.logs(job.id), "line")
            # Written by hand as a stranded counter: a hash, but no job's (no timestamp).
            await raw.hset(queue.keys.job("ghost"), "stalledCounter", 1)
        finally:
            await raw.aclose()
        for not_a_job in ("metrics:completed", "wait", "id", f"{job.id}:logs", "ghost",
                          "pq-workers", "missing", ""):
            assert await monitoring.get_job(queue, not_a_job) is None, not_a_job
        found = await monitoring.get_job(queue, job.id)
        assert found is not None
        assert found.data == {"n": 1}
        for name in ("wait", "metrics:failed", "limiter:index", "3:lock", "pq-worker:x"):
            assert monitoring.names_queue_key(name)
        assert not monitoring.names_queue_key("order-17")


async def test_overdue_repeatables_say_where_their_job_is(
    redis_url: str, queue_name: str
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        await queue.add({"t": 1}, name="tick", repeat=Repeat(every=1000))
        entry = (await queue.get_repeatable_jobs())[0]
        # No worker ran: an hour later its instance is still delayed.
        later = entry["next"] + 3_600_000
        found, total = await monitoring.get_overdue_repeatables(queue, now_ms=later)
        assert total == 1
        assert (found[0].name, found[0].instance_state) == ("tick", "delayed")
        job = await queue.get_job(found[0].instance_id)
        assert job is not None
        await job.remove()
        found, _ = await monitoring.get_overdue_repeatables(queue, now_ms=later)
        assert found[0].instance_state is None
        assert await monitoring.get_overdue_repeatables(queue, now_ms=entry["next"]) == ([], 0)


async def test_node_workers_are_listed_by_their_connection(
    node_bull: NodeBull, redis_url: str, queue_name: str
) -> None:
    with node_bull.start({"queue": queue_name, "action": "process", "timeoutMs": 60_000,
                          "settings": {"drainDelay": 1}}) as proc:
        await proc.await_for("ready")
        async with Queue(queue_name, redis_url) as queue:

            async def node_listed() -> list[monitoring.WorkerInfo]:
                return [w for w in await monitoring.get_workers(queue) if w.kind == "node"]

            found = (await _until(node_listed))[0]
            assert found.address
            assert found.host is None
            assert found.age_seconds is not None
            proc.kill()

            async def gone() -> bool:
                return await monitoring.get_workers(queue) == []

            await _until(gone)
