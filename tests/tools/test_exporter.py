"""The exporter's counters add up: a known workload run half by Node Bull, half by pyqueue.

Counted from the events every Bull worker publishes, so Node's throughput shows, and a
``clean`` (which empties the completed gauge) leaves the counters as they were.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.interop.bull import NodeBull
from tests.tools.test_metrics import get, samples

from pyqueue import BulkJob, Queue, Worker, WorkerOptions
from pyqueue.embedded import free_port
from pyqueue.tools.exporter import run_exporter
from pyqueue.tools.metrics import serve_worker

FAST = WorkerOptions(drain_delay=1, guard_interval=200, stalled_interval=0, shutdown_grace=2)
NODE = {"stalledInterval": 5000, "guardInterval": 200, "drainDelay": 1}


@pytest.fixture
def prefix() -> str:
    """A prefix of the test's own: the exporter reads every queue under it, not the
    whole shared server's."""
    return f"exp{uuid.uuid4().hex[:8]}"


@pytest.fixture
def node(node_available: None, redis_url: str, prefix: str) -> NodeBull:
    return NodeBull("bull", redis_url, prefix=prefix)


@pytest.fixture
async def exporter(redis_url: str, prefix: str) -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(redis_url)
    started = asyncio.Event()
    port = free_port()
    task = asyncio.create_task(run_exporter(client, prefix, "127.0.0.1", port, 0.3,
                                            started=started))
    await asyncio.wait_for(started.wait(), 20)
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()


async def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    _, _, text = await asyncio.to_thread(get, url)
    return samples(text)


async def _until_value(url: str, key: tuple[str, tuple[tuple[str, str], ...]], want: float,
                       timeout: float = 20.0) -> dict[Any, float]:
    deadline = time.monotonic() + timeout
    while True:
        found = await _scrape(url)
        if found.get(key) == want:
            return found
        assert time.monotonic() < deadline, (key, found.get(key), want)
        await asyncio.sleep(0.2)


def _jobs(start: int) -> list[dict[str, Any]]:
    # 30 jobs: every third fails for good (attempts 1), the rest complete.
    return [{"name": "bad" if n % 3 == 0 else "ok", "data": {"n": n}}
            for n in range(start, start + 30)]


async def test_counters_match_a_workload_half_node_half_pyqueue(
    node: NodeBull, exporter: str, redis_url: str, queue_name: str, prefix: str
) -> None:
    q = (("queue", queue_name),)
    node.add(queue_name, _jobs(0))
    await node.arun({
        "queue": queue_name, "action": "process", "until": 30, "settings": NODE,
        "behaviour": {"ok": {"return": 1}, "bad": {"fail": "declined"}},
    }, timeout=60)
    await _until_value(exporter, ("pyqueue_queue_completed_total", q), 20)

    def handler(job: Any) -> int:
        if job.name == "bad":
            raise RuntimeError("declined")
        return 1

    async with Queue(queue_name, redis_url, prefix=prefix) as queue:
        await queue.add_bulk(BulkJob(j["data"], name=j["name"]) for j in _jobs(30))
        async with Worker(queue, handler, options=FAST, concurrency=5) as worker:
            seen = 0
            async for _ in worker.events("completed", "failed"):
                seen += 1
                if seen == 30:
                    break
        found = await _until_value(exporter, ("pyqueue_queue_completed_total", q), 40)
        assert found[("pyqueue_queue_failed_total", q)] == 20
        assert found[("pyqueue_events_subscribed", ())] == 1
        await _until_value(  # the gauges come from the next refresh
            exporter, ("pyqueue_queue_jobs", (("queue", queue_name), ("state", "completed"))), 40)
        # clean empties the completed set (the gauge falls); the counter does not.
        await queue.clean(0, "completed")
        found = await _until_value(
            exporter, ("pyqueue_queue_jobs", (("queue", queue_name), ("state", "completed"))), 0)
        assert found[("pyqueue_queue_completed_total", q)] == 40
        assert found[("pyqueue_queue_failed_total", q)] == 20


async def test_stalled_jobs_and_stuck_queues_show(
    node: NodeBull, exporter: str, redis_url: str, queue_name: str, prefix: str
) -> None:
    q = (("queue", queue_name),)
    node.add(queue_name, [{"name": "slow", "data": {"n": n}} for n in range(2)])
    with node.start({"queue": queue_name, "action": "process", "concurrency": 2,
                          "behaviour": {"*": {"hang": True}}, "timeoutMs": 60_000,
                          "settings": {"stalledInterval": 1000, "lockDuration": 1000,
                                       "drainDelay": 1}}) as proc:
        await proc.await_for(lambda e: len(proc.named("processing")) == 2)
        proc.kill()
    # Killed with both jobs active: no workers, two stuck jobs, the oldest aging.
    found = await _until_value(exporter, ("pyqueue_queue_stuck_active_jobs", q), 2)
    assert found[("pyqueue_queue_workers", q)] == 0
    assert found[("pyqueue_queue_oldest_active_age_seconds", q)] > 0
    assert found[("pyqueue_queue_finding", (("code", "no-workers"), ("queue", queue_name),
                                            ("severity", "critical")))] == 1
    # A pyqueue worker's stalled check recovers them: counted as stalled, then completed.
    opts = WorkerOptions(drain_delay=1, stalled_interval=500, lock_duration=1000,
                         max_stalled_count=5, shutdown_grace=2)
    async with Worker(queue_name, lambda job: 1, redis_url=redis_url, prefix=prefix,
                      options=opts):
        found = await _until_value(exporter, ("pyqueue_queue_completed_total", q), 2, 30)
    assert found[("pyqueue_queue_stalled_total", q)] == 2
    await _until_value(exporter, ("pyqueue_queue_stuck_active_jobs", q), 0)  # next refresh


async def test_a_worker_s_gauges_show_jobs_in_flight_and_their_age(
    redis_url: str, queue_name: str
) -> None:
    release = asyncio.Event()

    async def hold(job: Any) -> None:
        await release.wait()

    async with Queue(queue_name, redis_url) as queue:
        for n in range(3):
            await queue.add({"n": n})
        async with Worker(queue, hold, options=FAST, concurrency=4) as worker, \
                serve_worker(worker, port=0) as server:
            url = f"http://127.0.0.1:{server.port}/metrics"
            q = (("queue", queue_name),)
            found = await _until_value(url, ("pyqueue_worker_jobs_in_flight", q), 3)
            assert found[("pyqueue_worker_slots", q)] == 4
            assert found[("pyqueue_worker_slot_use_ratio", q)] == 0.75
            await asyncio.sleep(1.1)
            aged = await _scrape(url)
            assert aged[("pyqueue_worker_oldest_active_age_seconds", q)] >= 1.0
            release.set()
            await _until_value(url, ("pyqueue_worker_jobs_in_flight", q), 0)


async def test_bullmq_queue_gauges_beside_bull(exporter: str, redis_url: str,
                                               prefix: str) -> None:
    async with Queue("mq", redis_url, prefix=prefix, protocol="bullmq") as mq:
        await mq.add({"n": 1}, job_id="w1")
        await mq.add({"n": 2}, job_id="p1", priority=4)
        await mq.add({"n": 3}, job_id="d1", delay=3_600_000)
        await mq.pause()
    async with Queue("b4", redis_url, prefix=prefix, protocol="bull") as b4:
        await b4.add({"n": 1}, job_id="x1")

    def jobs(queue: str, state: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        return ("pyqueue_queue_jobs", (("queue", queue), ("state", state)))

    found = await _until_value(exporter, jobs("mq", "prioritized"), 1)
    assert found[jobs("mq", "waiting")] == 1
    assert found[jobs("mq", "delayed")] == 1
    assert found[jobs("b4", "waiting")] == 1
    assert jobs("b4", "prioritized") not in found
    assert found[("pyqueue_queue_paused", (("queue", "mq"),))] == 1
    assert found[("pyqueue_queue_format", (("format", "bullmq"), ("queue", "mq")))] == 1
    assert found[("pyqueue_queue_format", (("format", "bull"), ("queue", "b4")))] == 1
