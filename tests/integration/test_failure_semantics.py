"""Python failure semantics of a worker (issue 28, reproductions 3, 4 and 7).

3. A sync handler's timeout starts when its thread starts, not while its call waits for
   a thread, and it sets ``job.aborted`` when it fires.
4. Any ``BaseException`` from a handler but ``KeyboardInterrupt`` and ``SystemExit`` is a
   failed attempt: ``failed`` fires, attempts and backoff apply.
7. ``start()`` after ``close()`` raises.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from tests.integration.conftest import FAST

from pyqueue import (
    Backoff,
    Job,
    JobFailedError,
    JobHandle,
    JobTimeoutError,
    Queue,
    QueueClosedError,
    Worker,
)


async def test_a_sync_timeout_counts_from_when_its_thread_starts(
    redis_url: str, queue_name: str
) -> None:
    started: list[str] = []
    aborted: dict[str, str | None] = {}
    lock = threading.Lock()

    def slow(job: JobHandle[Any]) -> str:
        with lock:
            started.append(job.id)
        time.sleep(1.0)
        aborted[job.id] = job.aborted
        return "done"

    failures: list[BaseException] = []
    async with Queue(queue_name, redis_url) as queue:
        jobs = [await queue.add({"n": n}, timeout=300) for n in range(3)]
        worker = Worker(queue, slow, options=FAST, concurrency=1)
        worker.on("failed", lambda job, exc: failures.append(exc))
        async with worker:
            for job in jobs:
                with pytest.raises(JobFailedError):
                    await job.finished(timeout=30)
            for _ in range(200):  # the last thread runs on past its timeout
                if len(aborted) == 3:
                    break
                await asyncio.sleep(0.05)
        assert started == [job.id for job in jobs]  # every job ran, none failed unstarted
        assert set(aborted) == {job.id for job in jobs}
        assert all(reason is not None and "timed out" in reason for reason in aborted.values())
        for job in jobs:
            stored = await queue.get_job(job.id)
            assert stored is not None
            # Bull's own text on the wire: Node code may match it.
            assert stored.failed_reason == "Promise timed out after 300 milliseconds"
    assert [type(exc) for exc in failures] == [JobTimeoutError] * 3
    assert str(failures[0]) == "timed out after 0.3 s"


class Custom(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


async def _raises_cancelled(job: Job[Any]) -> None:
    raise asyncio.CancelledError("not ours")


async def _raises_custom(job: Job[Any]) -> None:
    raise Custom("custom base exception")


def _raises_custom_in_thread(job: JobHandle[Any]) -> None:
    raise Custom("custom base exception")


async def _awaits_a_cancelled_task(job: Job[Any]) -> None:
    inner = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    inner.cancel()
    await inner  # raises CancelledError: the handler's task was not cancelled


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (_raises_cancelled, "not ours"),
        (_awaits_a_cancelled_task, "CancelledError"),
        (_raises_custom, "custom base exception"),
        (_raises_custom_in_thread, "custom base exception"),
    ],
    ids=["cancelled", "inner-task-cancelled", "base-exception", "base-exception-thread"],
)
async def test_a_base_exception_from_a_handler_is_a_failed_attempt(
    redis_url: str, queue_name: str, handler: Any, reason: str
) -> None:
    finals: list[bool] = []
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({}, attempts=2, backoff=Backoff(type="fixed", delay=50))
        after = await queue.add({}, name="next")
        worker = Worker(queue, {"*": handler, "next": lambda job: "ok"}, options=FAST)
        worker.on("failed", lambda job, exc, final: finals.append(final))
        async with worker:
            with pytest.raises(JobFailedError, match=reason):
                await job.finished(timeout=10)
            assert await after.finished(timeout=10) == "ok"  # the worker lives on
        stored = await queue.get_job(job.id)
        assert stored is not None
        assert stored.attempts_made == 2
        assert stored.failed_reason == reason
        assert len(stored.stacktrace) == 2
    assert finals == [False, True]


async def test_start_after_close_raises_and_runs_no_hook(redis_url: str, queue_name: str) -> None:
    calls: list[str] = []
    worker = Worker(queue_name, lambda job: None, redis_url=redis_url, options=FAST,
                    on_startup=lambda ctx: calls.append("startup"))
    await worker.start()
    await worker.close()
    with pytest.raises(QueueClosedError, match="closed"):
        await worker.start()
    with pytest.raises(QueueClosedError):
        async with worker:
            pass
    assert calls == ["startup"]

