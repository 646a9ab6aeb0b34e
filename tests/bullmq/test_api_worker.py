"""The public Worker in BullMQ mode, on real Redis: processing with fetch-next,
retries with BullMQ's backoff, failures, the stalled check, pause, progress, and
``job.finished()`` read from the events stream."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from pyqueue import Job, JobHandle, ProtocolMismatchError, Queue, Worker, WorkerOptions
from pyqueue.errors import JobFailedError, UnrecoverableError
from pyqueue.options import Backoff


@pytest.fixture
async def mq(redis_url: str, queue_name: str):  # type: ignore[no-untyped-def]
    queue: Queue = Queue(queue_name, redis_url, protocol="bullmq")
    yield queue
    await queue.close()


def _collect(queue: Queue, event: str) -> list[Any]:
    seen: list[Any] = []
    queue.on(event, lambda *args: seen.append(args))
    return seen


async def _until(check: Any, seconds: float = 20.0) -> None:
    """Wait for a condition the test needs before it asserts (not a timing assert)."""
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 - polls Redis
            await asyncio.sleep(0.02)


async def test_processes_in_order_with_fetch_next(mq: Queue) -> None:
    order: list[int] = []

    async def handler(job: Job[Any]) -> int:
        order.append(job.data["i"])
        await job.progress(job.data["i"])
        await job.log(f"ran {job.data['i']}")
        return int(job.data["i"]) * 2

    for i in range(20):
        await mq.add({"i": i})
    async with Worker(mq, handler):
        await _until(lambda: _count(mq, "completed", 20))
    assert order == list(range(20))  # FIFO, one slot
    job = await mq.get_job("6")  # ids count from 1
    assert job is not None
    assert job.return_value == 10
    assert job.progress_value == 5
    assert job.attempts_made == 1  # BullMQ counts a finished attempt, completed too
    assert job.record.attempts_started == 1  # type: ignore[attr-defined]
    assert (await mq.get_job_logs("6"))[0] == ["ran 5"]
    counts = await mq.get_job_counts("active", "waiting", "completed")
    assert counts == {"active": 0, "waiting": 0, "completed": 20}


async def _count(queue: Queue, state: str, n: int) -> bool:
    return (await queue.get_job_counts(state))[state] >= n


async def test_priority_order_is_bullmqs(mq: Queue) -> None:
    seen: list[str] = []

    async def handler(job: Job[Any]) -> None:
        seen.append(job.name)

    await mq.add({}, name="p3", priority=3)
    await mq.add({}, name="plain")
    await mq.add({}, name="p1", priority=1)
    await mq.add({}, name="p1b", priority=1)
    async with Worker(mq, handler):
        await _until(lambda: _count(mq, "completed", 4))
    # BullMQ: non-prioritized jobs first, then priority 1 in arrival order, then 3.
    assert seen == ["plain", "p1", "p1b", "p3"]


async def test_retries_with_bullmq_backoff_then_fails(mq: Queue) -> None:
    attempts: list[int] = []
    failed = _collect(mq, "failed")

    async def handler(job: Job[Any]) -> None:
        attempts.append(job.attempts_made)
        raise RuntimeError(f"boom {len(attempts)}")

    await mq.add({}, attempts=3, backoff=Backoff(type="exponential", delay=50))
    async with Worker(mq, handler):
        await _until(lambda: _count(mq, "failed", 1))
    job = await mq.get_job("1")
    assert job is not None
    assert job.failed_reason == "boom 3"
    assert job.attempts_made == 3
    assert len(job.stacktrace) == 3
    assert attempts == [0, 1, 2]
    assert [args[2] for args in failed] == [False, False, True]  # final on the last


async def test_unrecoverable_fails_at_once_and_finished_reports_it(mq: Queue) -> None:
    async def handler(job: Job[Any]) -> Any:
        if job.data.get("bad"):
            raise UnrecoverableError("no way")
        return {"ok": job.id}

    good = await mq.add({})
    bad = await mq.add({"bad": True}, attempts=5)
    async with Worker(mq, handler):
        assert await good.finished(timeout=20) == {"ok": good.id}
        with pytest.raises(JobFailedError, match="no way"):
            await bad.finished(timeout=20)
    fresh = await mq.get_job(bad.id)
    assert fresh is not None
    assert fresh.attempts_made == 1


async def test_concurrency_and_sync_handlers(mq: Queue) -> None:
    running = 0
    peak = 0
    gate = asyncio.Event()

    async def handler(job: Job[Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if peak >= 4:
            gate.set()
        await gate.wait()
        running -= 1

    await mq.add_bulk([__import__("pyqueue").BulkJob({"i": i}) for i in range(12)])
    async with Worker(mq, handler, concurrency=4):
        await _until(lambda: _count(mq, "completed", 12))
    assert peak == 4

    def sync_handler(job: JobHandle[Any]) -> str:
        job.progress(50)
        return f"sync {job.id}"

    await mq.add({}, name="s")
    async with Worker(mq, sync_handler):
        await _until(lambda: _count(mq, "completed", 13))
    job = await mq.get_job("13")
    assert job is not None
    assert job.return_value == "sync 13"
    assert job.progress_value == 50


async def test_delayed_job_runs_when_due(mq: Queue) -> None:
    done = asyncio.Event()

    async def handler(job: Job[Any]) -> None:
        done.set()

    job = await mq.add({}, delay=300)
    async with Worker(mq, handler):
        assert await mq.get_job_state(job.id) in ("delayed", "active", "completed")
        await asyncio.wait_for(done.wait(), 20)
    fresh = await mq.get_job(job.id)
    assert fresh is not None
    assert fresh.processed_on is not None
    assert fresh.processed_on >= fresh.timestamp + 300


async def test_global_pause_stops_workers(mq: Queue) -> None:
    ran: list[str] = []

    async def handler(job: Job[Any]) -> None:
        ran.append(job.id)

    await mq.pause()
    await mq.add({})
    drained = asyncio.Event()
    mq.on("drained", drained.set)
    async with Worker(mq, handler, options=WorkerOptions(drain_delay=0.2)):
        # A fetch found nothing it may run: the queue is paused.
        await asyncio.wait_for(drained.wait(), 20)
        assert ran == []
        counts = await mq.get_job_counts("waiting", "paused")
        assert counts["waiting"] + counts["paused"] == 1
        await mq.resume()
        await _until(lambda: _count(mq, "completed", 1))
    assert ran == ["1"]


async def test_stalled_job_is_recovered(mq: Queue, raw_redis: aioredis.Redis,
                                        queue_name: str) -> None:
    # A job left active without a lock (a worker that died) goes back to wait at
    # the second stalled check, and runs.
    await mq.add({"x": 1})
    base = f"bull:{queue_name}:"
    job_id = await raw_redis.rpoplpush(base + "wait", base + "active")
    assert job_id == b"1"
    stalled = _collect(mq, "stalled")
    ran = asyncio.Event()

    async def handler(job: Job[Any]) -> None:
        ran.set()

    opts = WorkerOptions(stalled_interval=100, max_stalled_count=1)
    async with Worker(mq, handler, options=opts):
        await asyncio.wait_for(ran.wait(), 20)
    assert stalled
    assert stalled[0] == ("1",)
    fresh = await mq.get_job("1")
    assert fresh is not None
    assert fresh.record.stalled_counter >= 1


async def test_worker_by_name_and_mix_refusal(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url, protocol="bullmq") as mq:
        await mq.add({"n": 1})
    done: list[Any] = []

    async def handler(job: Job[Any]) -> None:
        done.append(job.data)

    worker: Worker = Worker(queue_name, handler, redis_url=redis_url)  # protocol=None: detects
    async with worker:
        await _until(lambda: _count(worker.queue, "completed", 1))
    assert worker.queue.format == "bullmq"
    assert done == [{"n": 1}]
    bull_worker: Worker = Worker(queue_name, handler, redis_url=redis_url, protocol="bull")
    with pytest.raises(ProtocolMismatchError):
        await bull_worker.start()
    await bull_worker.close()


async def test_retry_delays_are_bullmqs_exponential(mq: Queue) -> None:
    # Long delays, promoted by hand: each retry's delay is read, never timed.
    async def handler(job: Job[Any]) -> None:
        raise RuntimeError("again")

    job = await mq.add({}, attempts=3, backoff=Backoff(type="exponential", delay=60_000))
    delays: list[int] = []
    async with Worker(mq, handler):
        for _ in range(2):
            await _until(lambda: _state_is(mq, job.id, "delayed"))
            fresh = await mq.get_job(job.id)
            assert fresh is not None
            delays.append(fresh.delay)
            await fresh.promote()
        await _until(lambda: _state_is(mq, job.id, "failed"))
    # BullMQ: 2^(n-1) x delay after the n-th failure (Bull's would be 60 s, then 180 s).
    assert delays == [60_000, 120_000]


async def _state_is(queue: Queue, job_id: str, state: str) -> bool:
    return await queue.get_job_state(job_id) == state


async def test_finished_waits_through_retries_for_the_final_failure(mq: Queue) -> None:
    # The wait starts before the worker: the outcome comes from the events stream.
    async def handler(job: Job[Any]) -> None:
        raise RuntimeError(f"try {job.attempts_made + 1}")

    job = await mq.add({}, attempts=2)
    waiting = asyncio.create_task(job.finished(timeout=20))
    await asyncio.sleep(0)  # the wait reads the stream's position first
    async with Worker(mq, handler):
        with pytest.raises(JobFailedError, match="try 2"):
            await waiting
