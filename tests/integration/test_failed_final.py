"""Issue 18 item 4: ``failed(job, exc, final)`` says whether a retry follows.

Each way a job can fail for good is covered, against a real Redis; afterwards
the job must be in the failed set after exactly as many runs as failures seen.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyqueue import Backoff, JobFailedError, UnrecoverableError
from pyqueue._emitter import Event


async def _finals(make_queue, make_worker, handler, *, attempts: int, **worker_kwargs: Any):
    """Run one job to its end; returns ``final`` per failed attempt."""
    queue = make_queue(backoff_strategies=worker_kwargs.get("backoff_strategies"))
    seen: list[bool] = []

    def on_failed(job, exc, final: bool) -> None:
        del job, exc
        seen.append(final)

    queue.on("failed", on_failed)
    job = await queue.add({}, attempts=attempts, backoff=Backoff(type="custom")
                          if "backoff_strategies" in worker_kwargs else None)
    await make_worker(handler, queue=queue, **worker_kwargs)
    with pytest.raises(JobFailedError):
        await job.finished(timeout=10)
    # Redis agrees: the job is in the failed set, after as many runs as failures seen.
    stored = await queue.get_job(job.id)
    assert await stored.get_state() == "failed"
    assert stored.attempts_made == len(seen)
    return seen


async def test_attempts_used_up(make_queue, make_worker) -> None:
    def handler(job):
        raise ValueError("boom")

    seen = await _finals(make_queue, make_worker, handler, attempts=3)
    assert seen == [False, False, True]


async def test_discard(make_queue, make_worker) -> None:
    def handler(job):
        job.discard()
        raise ValueError("do not retry")

    assert await _finals(make_queue, make_worker, handler, attempts=5) == [True]


async def test_unrecoverable_error(make_queue, make_worker) -> None:
    async def handler(job):
        raise UnrecoverableError("bad data")

    assert await _finals(make_queue, make_worker, handler, attempts=5) == [True]


async def test_backoff_returning_minus_one(make_queue, make_worker) -> None:
    async def handler(job):
        raise ValueError("boom")

    def stop_on_second(attempts_made: int, err: BaseException, options: Any) -> int:
        return -1 if attempts_made >= 2 else 10

    seen = await _finals(make_queue, make_worker, handler, attempts=5,
                         backoff_strategies={"custom": stop_on_second})
    assert seen == [False, True]


async def test_two_argument_listeners_and_the_iterator(make_queue, make_worker) -> None:
    queue = make_queue()
    old_style: list[tuple[str, str]] = []
    queue.on("failed", lambda job, exc: old_style.append((job.id, str(exc))))
    events: list[Event] = []

    async def collect() -> None:
        async for ev in queue.events("failed"):
            events.append(ev)
            if ev.final:
                return

    collector = asyncio.create_task(collect())
    await asyncio.sleep(0)
    job = await queue.add({}, attempts=2)

    def handler(job):
        raise ValueError("boom")

    await make_worker(handler, queue=queue)
    await asyncio.wait_for(collector, 10)
    assert old_style == [(job.id, "boom"), (job.id, "boom")]
    assert [ev.final for ev in events] == [False, True]
    assert [ev.job.id for ev in events if ev.job] == [job.id, job.id]
    assert [str(ev.error) for ev in events] == ["boom", "boom"]
    done = Event("completed", (job, 1))
    assert (done.final, done.error, done.result, done.job) == (None, None, 1, job)
    # QueueEvents' events carry ids, not jobs.
    assert Event("failed", (job.id, "boom", "active")).job is None
