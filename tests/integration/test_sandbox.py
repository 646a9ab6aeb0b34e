"""Sandboxed processors: handlers in child processes, with crashes contained per job."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration import sandbox_handlers as h

from pyqueue import JobFailedError, Queue, SandboxError, Worker, WorkerOptions
from pyqueue._engine.sandbox import SandboxPool

ROOT = Path(__file__).resolve().parents[2]
MakeWorker = Callable[..., Worker]


@pytest.fixture(autouse=True)
def importable_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spawned children import ``tests.integration.sandbox_handlers`` from sys.path,
    which pytest's importlib mode leaves without the repository root."""
    monkeypatch.syspath_prepend(str(ROOT))


@pytest.fixture
async def queue(redis_url: str, queue_name: str) -> AsyncIterator[Queue[Any]]:
    q: Queue[Any]
    async with Queue(queue_name, redis_url) as q:
        yield q


@pytest.fixture
async def make_worker(redis_url: str, queue_name: str) -> AsyncIterator[MakeWorker]:
    workers: list[Worker] = []

    def make(handler: Any, concurrency: int = 2) -> Worker:
        options = WorkerOptions(concurrency=concurrency, sandbox=True, drain_delay=1)
        worker = Worker(queue_name, handler, redis_url=redis_url, options=options)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.close(timeout=5)


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_result_comes_from_a_child_process(
    queue: Queue[Any], make_worker: MakeWorker
) -> None:
    worker = make_worker(h.echo)
    await worker.start()
    job = await queue.add({"x": 1}, name="greet")
    result = await job.finished(timeout=20)
    assert result["id"] == job.id
    assert result["name"] == "greet"
    assert result["data"] == {"x": 1}
    assert result["pid"] != os.getpid()
    await worker.close()
    assert not _alive(result["pid"])


async def test_handler_error_fails_job_with_child_traceback(
    queue: Queue[Any], make_worker: MakeWorker
) -> None:
    await make_worker(h.boom).start()
    job = await queue.add({"x": 7}, attempts=2)
    with pytest.raises(JobFailedError, match="bad value 7"):
        await job.finished(timeout=20)
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert stored.attempts_made == 2
    assert "SandboxError: bad value 7" in stored.stacktrace[-1]
    # The child's own frames, not just the parent's re-raise.
    assert "sandbox_handlers.py" in stored.stacktrace[-1]
    assert "ValueError: bad value 7" in stored.stacktrace[-1]


async def test_unrecoverable_error_skips_remaining_attempts(
    queue: Queue[Any], make_worker: MakeWorker
) -> None:
    await make_worker(h.unrecoverable).start()
    job = await queue.add({}, attempts=3)
    with pytest.raises(JobFailedError, match="give up now"):
        await job.finished(timeout=20)
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert stored.attempts_made == 1
    assert await stored.get_state() == "failed"


@pytest.mark.parametrize(
    ("mode", "code"),
    [("exit", 3), ("kill", -9), ("segv", -11)],
    ids=["os._exit", "sigkill", "segfault"],
)
async def test_crash_fails_only_its_own_job(
    queue: Queue[Any], make_worker: MakeWorker, mode: str, code: int
) -> None:
    worker = make_worker(h.crash_or_echo)
    await worker.start()
    sibling = await queue.add({"sleep": 1.0})
    await asyncio.sleep(0.3)  # the sibling is running in the other child
    crasher = await queue.add({"crash": mode})
    with pytest.raises(JobFailedError) as failed:
        await crasher.finished(timeout=20)
    assert failed.value.reason == (
        f"sandboxed process exited with code {code} while running job {crasher.id}"
    )
    assert (await sibling.finished(timeout=20))["data"] == {"sleep": 1.0}
    # The worker is still up, with both slots working again.
    later = [await queue.add({"n": i}) for i in range(4)]
    results = await asyncio.gather(*(job.finished(timeout=20) for job in later))
    assert [r["data"] for r in results] == [{"n": i} for i in range(4)]
    assert await queue.get_failed_count() == 1


async def test_cpu_bound_jobs_run_in_parallel_children(
    queue: Queue[Any], make_worker: MakeWorker
) -> None:
    await make_worker(h.fib).start()
    jobs = [await queue.add({"n": 24}) for _ in range(4)]
    assert await asyncio.gather(*(j.finished(timeout=30) for j in jobs)) == [46368] * 4


async def test_async_handler_runs_with_asyncio_run(
    queue: Queue[Any], make_worker: MakeWorker
) -> None:
    await make_worker(h.async_echo).start()
    job = await queue.add({"a": [1, 2]})
    assert await job.finished(timeout=20) == {"async": True, "data": {"a": [1, 2]}}
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert stored.progress_value == 10


async def test_progress_and_log_from_the_child_reach_redis(
    queue: Queue[Any], make_worker: MakeWorker
) -> None:
    await make_worker(h.report).start()
    job = await queue.add({})
    assert await job.finished(timeout=20) == "reported"
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert stored.progress_value == {"stage": "end"}
    assert await queue.get_job_logs(job.id) == (["half way", "done"], 2)


async def test_timeout_kills_the_child_and_replaces_it(
    queue: Queue[Any], make_worker: MakeWorker
) -> None:
    await make_worker(h.sleepy, concurrency=1).start()
    slow = await queue.add({"sleep": 30}, timeout=500)
    with pytest.raises(JobFailedError, match=r"^Promise timed out after 500 milliseconds$"):
        await slow.finished(timeout=20)
    (pid_line,), _ = await queue.get_job_logs(slow.id)
    killed = int(pid_line.removeprefix("pid "))
    fast = await queue.add({"sleep": 0})
    result = await fast.finished(timeout=20)
    assert result["pid"] != killed
    assert not _alive(killed)


async def test_close_kills_a_running_child_and_releases_its_job(
    queue: Queue[Any], make_worker: MakeWorker
) -> None:
    worker = make_worker(h.sleepy, concurrency=1)
    await worker.start()
    job = await queue.add({"sleep": 30})
    for _ in range(400):  # the child logs its pid once it is running the job
        (lines, _) = await queue.get_job_logs(job.id)
        if lines:
            break
        await asyncio.sleep(0.05)
    (pid_line,) = lines
    await worker.close(timeout=0.5)
    assert not _alive(int(pid_line.removeprefix("pid ")))
    assert await job.get_state() == "waiting"


def _closure_handler() -> Callable[[Any], Any]:
    def inner(job: Any) -> Any:
        return job.data

    return inner


@pytest.mark.parametrize(
    "handler", [lambda job: job.data, _closure_handler()], ids=["lambda", "closure"]
)
def test_handlers_a_child_cannot_import_are_refused(
    redis_url: str, queue_name: str, handler: Any
) -> None:
    with pytest.raises(TypeError, match="must be a module-level function"):
        Worker(queue_name, handler, redis_url=redis_url, options=WorkerOptions(sandbox=True))
    with pytest.raises(TypeError, match="must be a module-level function"):
        Worker(
            queue_name, {"a": h.echo, "b": handler}, redis_url=redis_url,
            options=WorkerOptions(sandbox=True),
        )


async def test_pool_with_forkserver_without_redis() -> None:
    pool = SandboxPool(1, mp_context="forkserver")
    await pool.start()
    try:
        snapshot = {"id": "7", "name": "n", "data": {"x": 2}, "opts": {}, "attempts_made": 0,
                    "timestamp": 0}
        seen: list[tuple[str, Any]] = []

        async def record(kind: str, value: Any) -> int:
            seen.append((kind, value))
            return len(seen)  # the child's job.log() returns what the parent answers

        assert await pool.run(h.report, snapshot, None, on_message=record) == "reported"
        assert seen[-1] == ("progress", {"stage": "end"})
        with pytest.raises(SandboxError, match="while running job 7") as crashed:
            await pool.run(h.crash_or_echo, {**snapshot, "data": {"crash": "kill"}}, None)
        assert "code -9" in str(crashed.value)
        assert (await pool.run(h.echo, snapshot, None))["data"] == {"x": 2}
    finally:
        await pool.close()


def test_pool_rejects_fork_context() -> None:
    with pytest.raises(ValueError, match="mp_context"):
        SandboxPool(1, mp_context="fork")
