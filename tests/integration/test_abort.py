"""Aborting jobs: running (async, sync thread, sandboxed), waiting, and finished (item 8)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.integration import sandbox_handlers as h

from pyqueue import (
    Job,
    JobAbortedError,
    JobFailedError,
    JobHandle,
    JobNotFound,
    JobStateError,
    Queue,
    Worker,
    WorkerOptions,
)

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = WorkerOptions(drain_delay=0.2, shutdown_grace=2.0, lock_duration=5000)


async def _until_active(queue: Queue[Any], job: Job[Any], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while await job.get_state() != "active":
        assert time.monotonic() < deadline, "job never became active"
        await asyncio.sleep(0.02)


async def _failed_for_good(queue: Queue[Any], job: Job[Any]) -> Job[Any]:
    with pytest.raises(JobFailedError, match="aborted"):
        await job.finished(timeout=15)
    stored = await queue.get_job(job.id)
    assert stored is not None
    return stored


async def test_abort_cancels_an_async_handler(redis_url: str, queue_name: str) -> None:
    cancelled = asyncio.Event()
    failures: list[BaseException] = []

    async def handler(job: Job[Any]) -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "not aborted"

    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({}, attempts=5)
        after = await queue.add({}, name="after")
        worker = Worker(queue, {"*": handler, "after": lambda j: "next ran"}, options=OPTIONS)
        worker.on("failed", lambda j, exc: failures.append(exc))
        async with worker:
            await _until_active(queue, job)
            assert await queue.abort(job.id, "user cancelled") == "signalled"
            stored = await _failed_for_good(queue, job)
            assert cancelled.is_set()
            # The worker goes on with other jobs.
            assert await after.finished(timeout=10) == "next ran"
        assert stored.failed_reason == "aborted: user cancelled"
        assert stored.attempts_made == 1  # attempts=5, but no retry
        assert await stored.get_state() == "failed"
        assert isinstance(failures[0], JobAbortedError)
        assert await queue.client.hget(queue.keys.job(job.id), "pqAbort") is None


async def test_sync_handler_polls_the_flag(redis_url: str, queue_name: str) -> None:
    checks: list[int] = []
    checking = threading.Event()

    def handler(job: JobHandle[Any]) -> str:
        job.progress("started")
        for step in range(600):
            checks.append(step)
            checking.set()
            job.raise_if_aborted()
            time.sleep(0.05)
        return "not aborted"

    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({}, attempts=3)
        async with Worker(queue, handler, options=OPTIONS):
            await _until_active(queue, job)
            assert await asyncio.to_thread(checking.wait, 10)
            assert await job.abort() == "signalled"
            stored = await _failed_for_good(queue, job)
        assert stored.failed_reason == "aborted"
        assert stored.attempts_made == 1
        assert len(checks) < 600


async def test_sync_handler_that_ignores_the_flag_still_fails(
    redis_url: str, queue_name: str
) -> None:
    go_on = threading.Event()
    seen: list[str | None] = []

    def handler(job: JobHandle[Any]) -> str:
        job.progress("started")
        go_on.wait(10)
        seen.append(job.aborted)
        return "finished anyway"

    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        async with Worker(queue, handler, options=OPTIONS):
            await _until_active(queue, job)
            assert await queue.abort(job.id, "stop") == "signalled"
            await asyncio.sleep(0.3)  # the worker hears it while the thread runs
            go_on.set()
            stored = await _failed_for_good(queue, job)
        assert seen == ["aborted: stop"]
        assert stored.return_value is None


async def test_abort_kills_a_sandboxed_handler(
    redis_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    options = WorkerOptions(drain_delay=0.2, shutdown_grace=2.0, sandbox=True)
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        echo = await queue.add({"x": 1}, name="echo")
        worker = Worker(queue, {"*": h.sleeps_until_killed, "echo": h.echo}, options=options)
        async with worker:
            deadline = time.monotonic() + 20
            while (await queue.get_job(job.id)).progress_value != "started":  # type: ignore[union-attr]
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert await queue.abort(job.id) == "signalled"
            await _failed_for_good(queue, job)
            # The slot gets a fresh child process.
            assert (await echo.finished(timeout=20))["data"] == {"x": 1}


@pytest.mark.parametrize("state", ["waiting", "delayed", "paused", "prioritized"])
async def test_abort_a_job_that_waits_fails_it_now(
    redis_url: str, queue_name: str, state: str
) -> None:
    ran: list[str] = []
    async with Queue(queue_name, redis_url) as queue:
        if state == "paused":
            await queue.pause()
        job = await queue.add(
            {}, delay=60_000 if state == "delayed" else None,
            priority=3 if state == "prioritized" else None,
        )
        assert await queue.abort(job.id, "not needed") == "failed"
        assert await job.get_state() == "failed"
        stored = await queue.get_job(job.id)
        assert stored is not None
        assert stored.failed_reason == "aborted: not needed"
        assert stored.finished_on is not None
        counts = await queue.get_job_counts("waiting", "delayed", "paused", "failed")
        assert counts == {"waiting": 0, "delayed": 0, "paused": 0, "failed": 1}
        with pytest.raises(JobFailedError, match="aborted: not needed"):
            await job.finished(timeout=5)
        if state == "paused":
            await queue.resume()
        async with Worker(queue, lambda j: ran.append(j.id), options=OPTIONS):
            await asyncio.sleep(0.5)
        assert ran == []


async def test_abort_a_finished_or_missing_job_is_a_clear_error(
    redis_url: str, queue_name: str
) -> None:
    async with Queue(queue_name, redis_url) as queue:
        done = await queue.add({})
        async with Worker(queue, lambda j: "ok", options=OPTIONS):
            assert await done.finished(timeout=10) == "ok"
        with pytest.raises(JobStateError, match="already finished") as finished:
            await queue.abort(done.id)
        assert finished.value.code == -7
        with pytest.raises(JobNotFound, match="does not exist"):
            await queue.abort("no-such-job")
        # An aborted job is finished too.
        waiting = await queue.add({})
        await queue.abort(waiting.id)
        with pytest.raises(JobStateError, match="already finished"):
            await queue.abort(waiting.id)


async def test_abort_of_a_waiting_job_keeps_its_remove_on_fail(
    redis_url: str, queue_name: str
) -> None:
    # Failed here, the job is retained as a worker would have retained it.
    async with Queue(queue_name, redis_url) as queue:
        gone = await queue.add({}, remove_on_fail=True)
        assert await queue.abort(gone.id) == "failed"
        assert await queue.get_job(gone.id) is None
        assert await queue.get_job_counts("failed") == {"failed": 0}

        kept = [await queue.add({"n": n}, remove_on_fail=2) for n in range(3)]
        for job in kept:
            await queue.abort(job.id)
        assert await queue.get_job(kept[0].id) is None
        assert {j.id for j in await queue.get_jobs("failed")} == {kept[1].id, kept[2].id}

        plain = await queue.add({})
        await queue.abort(plain.id)
        assert await queue.get_job_counts("failed") == {"failed": 3}


async def test_flag_found_at_fetch_fails_the_job_before_it_runs(
    redis_url: str, queue_name: str
) -> None:
    """A worker died after the abort was flagged: the next fetch fails the job unrun."""
    ran: list[str] = []
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({}, attempts=3)
        raw = aioredis.Redis.from_url(redis_url)
        try:
            # As abortJob leaves an active job whose worker then vanished (stall -> wait).
            await raw.hset(queue.keys.job(job.id), "pqAbort", "aborted: flagged earlier")
        finally:
            await raw.aclose()
        async with Worker(queue, lambda j: ran.append(j.id), options=OPTIONS):
            stored = await _failed_for_good(queue, job)
        assert ran == []
        assert stored.failed_reason == "aborted: flagged earlier"
        # Cleared, so a retry runs the job again.
        await stored.retry()
        async with Worker(queue, lambda j: "ran", options=OPTIONS):
            assert await job.finished(timeout=10) == "ran"


async def test_abort_heard_while_resubscribing_is_found_by_the_recheck(
    redis_url: str, queue_name: str
) -> None:
    """A message published while the worker was not subscribed is not lost."""
    release = asyncio.Event()

    async def handler(job: Job[Any]) -> str:
        await release.wait()
        return "not aborted"

    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        worker = Worker(queue, handler, options=OPTIONS)
        async with worker:
            await _until_active(queue, job)
            # Drop the worker's subscriptions, then flag the job without a message,
            # as abortJob would while the worker is reconnecting (it waits 0.5 s).
            await queue.client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            await queue.client.hset(queue.keys.job(job.id), "pqAbort", "aborted: missed")
            stored = await _failed_for_good(queue, job)
        assert stored.failed_reason == "aborted: missed"


async def test_garbage_on_the_abort_channel_does_not_deafen_the_worker(
    redis_url: str, queue_name: str
) -> None:
    # Anyone may publish on the channel; a message that is not JSON must not end
    # the listener, or later aborts of running jobs would go unheard.
    async def handler(job: Job[Any]) -> str:
        await asyncio.sleep(60)
        return "not aborted"

    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        async with Worker(queue, handler, options=OPTIONS):
            await _until_active(queue, job)
            for garbage in (b"not json", b"\xff\xfe", b"[1, 2]", b'{"jobId": 7}'):
                await queue.client.publish(queue.keys.abort_channel, garbage)
            await asyncio.sleep(0.2)
            assert await queue.abort(job.id, "after garbage") == "signalled"
            stored = await _failed_for_good(queue, job)
        assert stored.failed_reason == "aborted: after garbage"
