"""The three handler kinds (async, sync thread, sandboxed process) can report through their job.

Each writes progress, log lines and new data; the test reads them back from Redis.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from tests.integration import sandbox_handlers as h

from pyqueue import InvalidOptionsError, Job, JobHandle, Queue, Worker, WorkerOptions

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = WorkerOptions(drain_delay=0.2, shutdown_grace=2.0)


async def uses_its_job_async(job: Job[Any]) -> dict[str, Any]:
    await job.progress(40)
    first = await job.log("step one")
    second = await job.log("step two")
    await job.update({**job.data, "seen": True})
    await job.progress({"stage": "done"})
    return {"lines": [first, second], "data": job.data, "attempts": job.opts.attempts,
            "kind": type(job).__name__, "is_handle": isinstance(job, JobHandle)}


@pytest.mark.parametrize(
    ("handler", "sandbox", "kind"),
    [
        (uses_its_job_async, False, "Job"),
        (h.uses_its_job, False, "ThreadJob"),
        (h.uses_its_job, True, "SandboxedJob"),
    ],
    ids=["async", "thread", "sandbox"],
)
async def test_each_handler_kind_reports_through_its_job(
    redis_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch,
    handler: Any, sandbox: bool, kind: str,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # spawned children import sandbox_handlers
    progress_events: list[Any] = []
    async with Queue(queue_name, redis_url) as queue:
        queue.on("progress", lambda job, value: progress_events.append(value))
        job = await queue.add({"n": 1}, attempts=3)
        options = dataclasses.replace(OPTIONS, sandbox=sandbox)
        async with Worker(queue, handler, options=options):
            result = await job.finished(timeout=20)
        assert result == {"lines": [1, 2], "data": {"n": 1, "seen": True}, "attempts": 3,
                          "kind": kind, "is_handle": kind != "Job"}
        stored = await queue.get_job(job.id)
        assert stored is not None
        assert stored.progress_value == {"stage": "done"}
        assert stored.data == {"n": 1, "seen": True}
        logs = await queue.get_job_logs(job.id)
        assert logs[0] == ["step one", "step two"]
        # Local progress events fire for every kind, in order.
        assert progress_events == [40, {"stage": "done"}]


def _blocking_on_the_loop(job: JobHandle[Any]) -> Any:
    # A sync function that hands back a coroutine runs that coroutine on the loop,
    # where a blocking call would deadlock: it must be refused, clearly.
    async def report() -> str:
        try:
            job.progress(1)
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    return report()


async def test_blocking_call_on_the_loop_is_refused(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        async with Worker(queue, _blocking_on_the_loop, options=OPTIONS):
            assert "await handle.job.progress()" in await job.finished(timeout=10)


def _update_with_bad_data(job: JobHandle[Any]) -> str:
    try:
        job.update({"not json": {1, 2}})
    except InvalidOptionsError as exc:
        return f"InvalidOptionsError: {exc}"
    return "no error"


async def test_thread_handle_raises_what_the_job_raises(redis_url: str, queue_name: str) -> None:
    async with Queue(queue_name, redis_url) as queue:
        job = await queue.add({})
        async with Worker(queue, _update_with_bad_data, options=OPTIONS):
            assert (await job.finished(timeout=10)).startswith("InvalidOptionsError: data")
