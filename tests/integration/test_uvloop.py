"""pyqueue under uvloop, the event loop uvicorn and many services run on.

uvloop's transports do not subclass asyncio's, so nothing on the connection
path may insist that they do. Each test runs its own loop, so it is a plain def.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvloop  # in the test extra: a missing install fails here instead of skipping

from pyqueue import BulkJob, Queue, Worker, WorkerOptions

FAST = WorkerOptions(lock_duration=1000, stalled_interval=500, guard_interval=200,
                     drain_delay=0.2, shutdown_grace=2.0)


def _run(coro: Any) -> Any:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def test_a_worker_on_uvloop_completes_jobs_and_fails_them(
    redis_url: str, queue_name: str
) -> None:
    async def scenario() -> tuple[list[int], list[str], dict[str, int], str]:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        done: list[int] = []
        failed: list[str] = []
        finished = asyncio.Event()

        async def handler(job: Any) -> int:
            if job.data["i"] == 3:
                raise ValueError("three is bad")
            return int(job.data["i"]) * 2

        async with Queue(queue_name, redis_url) as queue:
            await queue.add_bulk([BulkJob({"i": i}) for i in range(5)])
            waited = await queue.add({"i": 10})
            worker = Worker(queue, handler, options=FAST, concurrency=2)

            def on_completed(job: Any, result: Any) -> None:
                done.append(result)
                if len(done) + len(failed) == 6:
                    finished.set()

            def on_failed(job: Any, exc: BaseException, final: bool) -> None:
                failed.append(str(exc))
                if len(done) + len(failed) == 6:
                    finished.set()

            worker.on("completed", on_completed)
            worker.on("failed", on_failed)
            await worker.start()
            try:
                await asyncio.wait_for(finished.wait(), 10)
                result = await asyncio.wait_for(queue.wait_until_finished(waited.id), 5)
            finally:
                await worker.close()
            counts = await queue.get_job_counts()
        return sorted(done), failed, counts, str(result)

    done, failed, counts, result = _run(scenario())
    assert done == [0, 2, 4, 8, 20]
    assert failed == ["three is bad"]
    assert (counts["completed"], counts["failed"], counts["waiting"]) == (5, 1, 0)
    assert result == "20"


def test_a_blocked_worker_on_uvloop_takes_a_job_added_later(
    redis_url: str, queue_name: str
) -> None:
    async def scenario() -> Any:
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def handler(job: Any) -> None:
            if not got.done():
                got.set_result(job.data)

        async with Queue(queue_name, redis_url) as queue, Worker(queue, handler, options=FAST):
            await asyncio.sleep(0.3)  # long enough for the fetch to block on wait
            await queue.add({"late": True})
            return await asyncio.wait_for(got, 5)

    assert _run(scenario()) == {"late": True}
