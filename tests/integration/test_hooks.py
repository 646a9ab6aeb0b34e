"""Worker lifecycle hooks and the per-worker context (issue 18 item 2)."""

from __future__ import annotations

from typing import Any

import pytest

from pyqueue import Job, JobHandle, Queue, Worker, WorkerOptions
from pyqueue.hooks import Context, JobOutcome

OPTIONS = WorkerOptions(drain_delay=0.2, shutdown_grace=2.0)


class Pool:
    """Stands for a database pool: made at startup, closed at shutdown."""

    def __init__(self) -> None:
        self.closed = False
        self.queries: list[str] = []


async def test_startup_context_reaches_async_and_sync_handlers(
    redis_url: str, queue_name: str
) -> None:
    calls: list[str] = []

    async def startup(ctx: Context) -> None:
        calls.append("startup")
        ctx["db"] = Pool()

    def shutdown(ctx: Context) -> None:  # a plain function works too
        calls.append("shutdown")
        ctx["db"].closed = True

    async def async_handler(job: Job[Any]) -> str:
        job.context["db"].queries.append(f"async {job.data}")
        return "a"

    def sync_handler(job: JobHandle[Any]) -> str:
        job.context["db"].queries.append(f"sync {job.data}")
        return "s"

    async with Queue(queue_name, redis_url) as queue:
        first = await queue.add(1, name="a")
        second = await queue.add(2, name="s")
        worker = Worker(queue, {"a": async_handler, "s": sync_handler}, options=OPTIONS,
                        on_startup=startup, on_shutdown=shutdown)
        async with worker:
            assert calls == ["startup"]
            assert await first.finished(timeout=10) == "a"
            assert await second.finished(timeout=10) == "s"
        assert calls == ["startup", "shutdown"]
        pool = worker.context["db"]
        assert pool.closed
        assert sorted(pool.queries) == ["async 1", "sync 2"]


async def test_given_context_is_shared_not_copied(redis_url: str, queue_name: str) -> None:
    shared: Context = {"client": object()}
    seen: list[Any] = []

    async def handler(job: Job[Any]) -> None:
        seen.append(job.context["client"])

    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        async with Worker(queue, handler, options=OPTIONS, context=shared) as worker:
            await job.finished(timeout=10)
            assert worker.context is shared
    assert seen == [shared["client"]]


async def test_failing_startup_fails_start_and_takes_no_job(
    redis_url: str, queue_name: str
) -> None:
    def startup(ctx: Context) -> None:
        raise RuntimeError("no database")

    async def handler(job: Job[Any]) -> None:
        raise AssertionError("must not run")

    async with Queue(queue_name, redis_url) as queue:
        await queue.add({})
        worker = Worker(queue, handler, options=OPTIONS, on_startup=startup)
        with pytest.raises(RuntimeError, match="no database"):
            await worker.start()
        assert not worker.running
        await worker.close()
        assert (await queue.get_job_counts("waiting"))["waiting"] == 1


async def test_before_and_after_process_see_each_attempt(
    redis_url: str, queue_name: str
) -> None:
    events: list[tuple[Any, ...]] = []

    async def before(job: Job[Any]) -> None:
        events.append(("before", job.data["n"], job.attempts_made))

    def after(job: Job[Any], outcome: JobOutcome) -> None:
        error = None if outcome.error is None else str(outcome.error)
        events.append(("after", job.data["n"], outcome.result, error, outcome.final,
                       outcome.ok))

    async def handler(job: Job[Any]) -> int:
        if job.data["n"] == 2 and job.attempts_made == 0:
            raise ValueError("first try fails")
        if job.data["n"] == 3:
            raise ValueError("always fails")
        return int(job.data["n"]) * 10

    async with Queue(queue_name, redis_url) as queue:
        jobs = [await queue.add({"n": n}, attempts=2) for n in (1, 2, 3)]
        async with Worker(queue, handler, options=OPTIONS, before_process=before,
                          after_process=after):
            assert await jobs[0].finished(timeout=10) == 10
            assert await jobs[1].finished(timeout=10) == 20
            with pytest.raises(Exception, match="always fails"):
                await jobs[2].finished(timeout=10)
    by_job = {n: [e for e in events if e[1] == n] for n in (1, 2, 3)}
    assert by_job[1] == [("before", 1, 0), ("after", 1, 10, None, True, True)]
    assert by_job[2] == [
        ("before", 2, 0), ("after", 2, None, "first try fails", False, False),
        ("before", 2, 1), ("after", 2, 20, None, True, True),
    ]
    assert by_job[3] == [
        ("before", 3, 0), ("after", 3, None, "always fails", False, False),
        ("before", 3, 1), ("after", 3, None, "always fails", True, False),
    ]


async def test_before_process_error_fails_the_attempt_and_after_errors_are_reported(
    redis_url: str, queue_name: str
) -> None:
    ran: list[str] = []
    errors: list[BaseException] = []

    def before(job: Job[Any]) -> None:
        if job.name == "refused":
            raise PermissionError("not today")

    def after(job: Job[Any], outcome: JobOutcome) -> None:
        raise RuntimeError("after hook broke")

    def handler(job: JobHandle[Any]) -> str:
        ran.append(job.name)
        return "done"

    async with Queue(queue_name, redis_url) as queue:
        refused = await queue.add({}, name="refused")
        fine = await queue.add({}, name="fine")
        worker = Worker(queue, handler, options=OPTIONS, before_process=before,
                        after_process=after)
        worker.on("error", errors.append)
        async with worker:
            with pytest.raises(Exception, match="not today"):
                await refused.finished(timeout=10)
            # The after hook's error changes nothing: the job still completed.
            assert await fine.finished(timeout=10) == "done"
    assert ran == ["fine"]
    assert [str(e) for e in errors].count("after hook broke") == 2


async def test_after_process_sees_a_result_that_could_not_be_stored(
    redis_url: str, queue_name: str
) -> None:
    outcomes: list[JobOutcome] = []

    async def handler(job: Job[Any]) -> Any:
        return {1, 2}  # not JSON

    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        async with Worker(queue, handler, options=OPTIONS,
                          after_process=lambda job, outcome: outcomes.append(outcome)):
            with pytest.raises(Exception, match="JSON"):
                await job.finished(timeout=10)
    assert len(outcomes) == 1
    assert not outcomes[0].ok
    assert outcomes[0].final
    assert outcomes[0].result is None
